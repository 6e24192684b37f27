"""Counting skipped (unusable) and padded (too short, frames repeated) videos across decode tasks.

Decode tasks report each bad video to one named Ray actor per ``scope`` (created by
``build_dataset`` in the process that builds the datasets, and living as long as it does). Counts
are per (split, epoch) and per manifest row, so a video is counted once per epoch however many
views or task retries touch it. ``skip_report`` reads them from anywhere in the same Ray job
(driver or training worker). Use a distinct ``scope`` per concurrent run in one job (Tune trials).

Lifetime: a named actor lives as long as the handle returned by its *creation*; handles obtained
later by name (``get_actor``, ``get_if_exists``) do not keep it alive. So this module keeps the
first handle of a scope for the life of the process (building a second dataset of the same scope
must not replace it: that killed the ledger of every ``videomamba train`` run with a val split).
A decode task that finds no ledger raises ``SkipLedgerMissing``: a skip is never dropped uncounted.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

_ACTOR_PREFIX = "videomamba-data-skips-"
#: reasons recorded for rows that are KEPT (counted as padded, not skipped): ``short`` (frames
#: repeated) and ``truncated`` (a damaged file decoded up to its last good frame)
KEPT_REASONS = ("short", "truncated")
MAX_EXAMPLES = 20


@dataclass
class SkipReport:
    """Skip counts for one split (one epoch, or all epochs summed)."""

    split: str
    epoch: int | None
    skipped: int = 0  # manifest rows dropped
    padded: int = 0  # rows kept with repeated frames (shorter than the clip)
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), first few
    epochs: list[int] = field(default_factory=list)  # epochs seen so far

    def as_metrics(self, prefix: str = "data") -> dict[str, float]:
        """MLflow-ready: ``{prefix}/skipped``, ``{prefix}/padded``, ``{prefix}/skipped_<reason>``."""
        out = {f"{prefix}/skipped": float(self.skipped), f"{prefix}/padded": float(self.padded)}
        out.update({f"{prefix}/skipped_{r}": float(n) for r, n in self.by_reason.items()})
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready ``{"skipped", "padded", "by_reason", "examples"}``."""
        return {"skipped": self.skipped, "padded": self.padded, "by_reason": dict(self.by_reason),
                "examples": [list(e) for e in self.examples]}

    def describe(self, total: int | None = None, examples: int = 5) -> str:
        """``"3 of 12 videos (25.0%) skipped: corrupt 2, missing 1; e.g. /a.mp4 (corrupt), ..."``."""
        share = f" of {total} videos ({self.skipped / total:.1%})" if total else " videos"
        text = f"{self.skipped}{share} skipped"
        if self.by_reason:
            text += ": " + ", ".join(f"{r} {n}" for r, n in self.by_reason.items())
        if self.examples and examples:
            text += "; e.g. " + ", ".join(f"{p} ({r})" for p, r in self.examples[:examples])
        return text


class SkipLimitError(RuntimeError):
    """Too many videos of a split were skipped (``data.max_skip_fraction``), or none was usable."""


class SkipLedgerMissing(RuntimeError):
    """A decode task found no skip ledger for its scope: its skips could not be counted."""


class _SkipLedger:
    """Actor state: {(split, epoch): {index: (path, reason, seq)}} plus padded row sets; ``seq``
    numbers records in arrival order so that a caller can ask for "what came since ``mark()``"."""

    def __init__(self):
        self.skipped: dict[tuple[str, int], dict[int, tuple[str, str, int]]] = {}
        self.padded: dict[tuple[str, int], dict[int, int]] = {}
        self.seq = 0

    def record(self, split: str, epoch: int, index: int, path: str, reason: str, kept: bool | None = None) -> None:
        self.seq += 1
        if reason in KEPT_REASONS if kept is None else kept:
            self.padded.setdefault((split, epoch), {}).setdefault(index, self.seq)
        else:
            self.skipped.setdefault((split, epoch), {}).setdefault(index, (path, reason, self.seq))

    def mark(self) -> int:
        return self.seq

    def report(self, split: str, epoch: int | None, since: int = 0) -> SkipReport:
        def keys(table):
            return [k for k in table if k[0] == split and (epoch is None or k[1] == epoch)]

        rep = SkipReport(split=split, epoch=epoch)
        reasons: Counter = Counter()
        for key in sorted(keys(self.skipped)):
            for path, reason, seq in self.skipped[key].values():
                if seq <= since:
                    continue
                reasons[reason] += 1
                if len(rep.examples) < MAX_EXAMPLES and (path, reason) not in rep.examples:
                    rep.examples.append((path, reason))
        rep.skipped = sum(reasons.values())
        rep.by_reason = dict(sorted(reasons.items()))
        rep.padded = sum(seq > since for k in keys(self.padded) for seq in self.padded[k].values())
        rep.epochs = sorted({k[1] for k in [*self.skipped, *self.padded] if k[0] == split})
        return rep


def _actor_name(scope: str) -> str:
    return _ACTOR_PREFIX + scope


_HANDLES: dict[tuple[str, str], object] = {}  # looked-up handles (any process)
_OWNED: dict[tuple[str, str], object] = {}  # creation handles: the actors' lifetime (this process)


def ensure_ledger(scope: str = "default"):
    """Create (or get) the scope's ledger actor; call where the datasets are built. The creating
    handle is kept for the life of this process, so the actor lives as long as it does."""
    import ray

    key = (scope, ray.get_runtime_context().get_job_id())
    if key in _OWNED:
        return _OWNED[key]
    actor_cls = ray.remote(num_cpus=0, max_restarts=0)(_SkipLedger)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # on the driver's node: a lost worker node must not take the run's skip counts with it. Hard
    # affinity: with soft=True Ray 2.60 places a num_cpus=0 actor on a node WITH CPUs when the
    # driver's node has none (cluster.yaml's head: CPU 0), so losing that worker node killed the
    # ledger and the resumed run failed (tests/test_cluster_multinode.py). A 0-CPU actor always
    # fits, and the run cannot outlive its driver's node anyway.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    handle = actor_cls.options(name=_actor_name(scope), get_if_exists=True, scheduling_strategy=here).remote()
    _OWNED[key] = handle  # never replaced: dropping the creation handle would kill the actor
    _HANDLES.setdefault(key, handle)
    return handle


def release_ledger(scope: str) -> None:
    """Drop this process's handles of the scope's ledger (the actor ends once unused); call when
    every dataset of the scope has been consumed and its counts read."""
    import ray

    key = (scope, ray.get_runtime_context().get_job_id())
    _OWNED.pop(key, None)
    _HANDLES.pop(key, None)


def _ledger(scope: str):
    """The scope's actor handle (cached per Ray job), or None if no dataset created it."""
    import ray

    key = (scope, ray.get_runtime_context().get_job_id())
    if key not in _HANDLES:
        try:
            _HANDLES[key] = ray.get_actor(_actor_name(scope))
        except ValueError:
            return None
    return _HANDLES[key]


def record_skip(scope: str, split: str, epoch: int, index: int, path: str, reason: str, detail: str = "",
                *, kept: bool | None = None, what: str = "video") -> None:
    """Log and count one bad video (blocking, so counts are complete when its batch is consumed).
    A padded (kept) row when ``kept``, else a skipped one; ``kept=None``: kept for a reason in
    ``KEPT_REASONS`` (a truncated VIDEO keeps its good frames; a truncated image, ``kept=False``,
    is dropped). ``what`` names the row in the log (``video``, ``image``)."""
    import ray

    kept = reason in KEPT_REASONS if kept is None else kept
    if kept:
        logger.info("keeping %s %s %s (%s)", reason, what, path, detail or "frames repeated")
    else:
        logger.warning("skipping %s %s: %s%s", what, path, reason, f" ({detail})" if detail else "")
    ledger = _ledger(scope)
    if ledger is None:
        raise SkipLedgerMissing(
            f"no skip ledger for scope {scope!r} (the process that built the dataset is gone?): "
            f"cannot count the skip of {path} ({reason})"
        )
    try:
        ray.get(ledger.record.remote(split, epoch, index, path, reason, kept))
    except ray.exceptions.RayActorError as err:
        raise SkipLedgerMissing(f"skip ledger of scope {scope!r} died: cannot count the skip of {path}: {err}") from err


def skip_report(split: str, *, epoch: int | None = None, scope: str = "default", since: int = 0) -> SkipReport:
    """Skip counts for ``split``: one (effective) ``epoch``, or summed over all epochs seen;
    with ``since`` (a ``skip_mark``) only what was recorded after that mark."""
    import ray

    ledger = _ledger(scope)
    if ledger is None:
        return SkipReport(split=split, epoch=epoch)
    return ray.get(ledger.report.remote(split, epoch, since))


def skip_metrics(split: str, scope: str = "default") -> dict[str, float]:
    """``data/<split>/skipped`` etc. summed over the epochs seen (empty if unavailable: counts are
    best effort, never a reason to fail training)."""
    try:
        return skip_report(split, scope=scope).as_metrics(f"data/{split}")
    except Exception as err:  # noqa: BLE001
        logger.debug("no skip report for %s: %s", split, err)
        return {}


def skip_mark(scope: str = "default") -> int:
    """A position in the scope's record stream (pass to ``skip_report(since=)``); 0 without a ledger."""
    import ray

    ledger = _ledger(scope)
    return 0 if ledger is None else int(ray.get(ledger.mark.remote()))


def check_skips(rep: SkipReport, total: int, max_fraction: float, what: str) -> None:
    """Raise ``SkipLimitError`` when ``rep.skipped / total`` exceeds ``max_fraction``.
    ``what`` names the pass, e.g. ``"train split, epoch 3"``."""
    if total > 0 and rep.skipped / total > max_fraction:
        raise SkipLimitError(
            f"{what}: {rep.describe(total)}. That is more than data.max_skip_fraction={max_fraction:g} "
            "(run `videomamba data check MANIFEST` to list every bad file; raise the limit to accept the loss)"
        )
