"""Counting skipped (unusable) and padded (too short, frames repeated) videos across decode tasks.

Decode tasks report each bad video to one named Ray actor per ``scope`` (created by
``build_dataset`` in the process that builds the datasets, and living as long as it does). Counts
are per (split, epoch) and per manifest row, so a video is counted once per epoch however many
views or task retries touch it. ``skip_report`` reads them from anywhere in the same Ray job
(driver or training worker). Use a distinct ``scope`` per concurrent run in one job (Tune trials).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

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


class _SkipLedger:
    """Actor state: {(split, epoch): {index: (path, reason)}} plus padded row sets."""

    def __init__(self):
        self.skipped: dict[tuple[str, int], dict[int, tuple[str, str]]] = {}
        self.padded: dict[tuple[str, int], set[int]] = {}

    def record(self, split: str, epoch: int, index: int, path: str, reason: str) -> None:
        table = self.padded if reason in KEPT_REASONS else self.skipped
        if reason in KEPT_REASONS:
            table.setdefault((split, epoch), set()).add(index)
        else:
            table.setdefault((split, epoch), {}).setdefault(index, (path, reason))

    def report(self, split: str, epoch: int | None) -> SkipReport:
        def keys(table):
            return [k for k in table if k[0] == split and (epoch is None or k[1] == epoch)]

        rep = SkipReport(split=split, epoch=epoch)
        reasons: Counter = Counter()
        for key in sorted(keys(self.skipped)):
            for path, reason in self.skipped[key].values():
                reasons[reason] += 1
                if len(rep.examples) < MAX_EXAMPLES and (path, reason) not in rep.examples:
                    rep.examples.append((path, reason))
        rep.skipped = sum(reasons.values())
        rep.by_reason = dict(sorted(reasons.items()))
        rep.padded = sum(len(self.padded[k]) for k in keys(self.padded))
        rep.epochs = sorted({k[1] for k in [*self.skipped, *self.padded] if k[0] == split})
        return rep

    def reset(self) -> None:
        self.skipped.clear()
        self.padded.clear()


def _actor_name(scope: str) -> str:
    return _ACTOR_PREFIX + scope


_HANDLES: dict[tuple[str, str], object] = {}


def ensure_ledger(scope: str = "default"):
    """Create (or get) the scope's ledger actor; call where the datasets are built. The handle is
    kept here so the actor lives as long as this process (a named actor dies with its last handle)."""
    import ray

    actor_cls = ray.remote(num_cpus=0, max_restarts=0)(_SkipLedger)
    handle = actor_cls.options(name=_actor_name(scope), get_if_exists=True).remote()
    _HANDLES[(scope, ray.get_runtime_context().get_job_id())] = handle
    return handle


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


def record_skip(scope: str, split: str, epoch: int, index: int, path: str, reason: str, detail: str = "") -> None:
    """Log and count one bad video (blocking, so counts are complete when its batch is consumed).
    A reason in ``KEPT_REASONS`` counts a padded (kept) video instead of a skipped one."""
    import ray

    if reason in KEPT_REASONS:
        logger.info("keeping %s video %s (%s)", reason, path, detail or "frames repeated")
    else:
        logger.warning("skipping video %s: %s%s", path, reason, f" ({detail})" if detail else "")
    try:
        ledger = _ledger(scope)
        if ledger is None:
            logger.warning("no skip ledger for scope %r; skip not counted", scope)
            return
        ray.get(ledger.record.remote(split, epoch, index, path, reason))
    except Exception as err:  # counting is best effort: never fail the decode task over it
        logger.warning("could not count skip of %s: %s", path, err)


def skip_report(split: str, *, epoch: int | None = None, scope: str = "default") -> SkipReport:
    """Skip counts for ``split``: one (effective) ``epoch``, or summed over all epochs seen."""
    import ray

    ledger = _ledger(scope)
    if ledger is None:
        return SkipReport(split=split, epoch=epoch)
    return ray.get(ledger.report.remote(split, epoch))


def reset_skips(scope: str = "default") -> None:
    """Forget all counts of ``scope``."""
    import ray

    ledger = _ledger(scope)
    if ledger is not None:
        ray.get(ledger.reset.remote())
