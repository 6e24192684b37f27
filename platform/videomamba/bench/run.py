"""The whole GPU benchmark run: VideoMamba (every backend) against a FlashAttention ViT baseline.

What one run measures, per (model, backend, frames, mode), at a fixed batch per frame count
(the same for every model at that frame count; default ``256 // frames``), 224 px, random
normal clips: see :mod:`videomamba.bench.measure` (one step, failures, memory) and
:mod:`videomamba.bench.timing` (warm-up, CUDA-event timing, median). A per-config time budget
bounds warm-up + repeats; a config slower than ``max_step_s`` stops the larger frame counts
of its series; a backend that is not available gives rows with status ``"unavailable"``.

Isolation: each section (environment probe, checks, one backend's bench group, memory-fit,
profiles) runs in a worker subprocess (:mod:`videomamba.bench.worker`) that streams JSON lines
back, so a CUDA fault in one backend cannot poison the others, and a run killed at its time
limit still leaves every finished row on disk.

The physical floor each row is compared with (``floor_ms``, ``floor_x`` = measured / floor) is
documented in :mod:`videomamba.bench.floor`:
``t_floor = max(3F/P_mma, scan_bytes/BW_hbm, n_exp/SFU_rate)`` per clip for training.

Outputs (``Options.out``): ``results.json`` (everything), ``results.md`` (tables), ``bench.png``
(throughput and memory vs frames), ``profile_*.txt``, ``logs/``. The command line is
``videomamba bench`` (:mod:`videomamba.commands.bench`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from . import report
from .spec import BACKEND_ORDER, Emit, Options, Spec, base_row, bench_specs, memory_fit_specs, parse_profile
from .worker import execute

log = logging.getLogger(__name__)

WORKER_MODULE = "videomamba.bench.worker"  # run as ``python -m WORKER_MODULE [-v] TASK.json``
WORKER_GRACE_S = 15.0  # a worker past its deadline by this much is killed


def package_root() -> str:
    """The directory holding the ``videomamba`` package (put on the workers' PYTHONPATH)."""
    return str(Path(__file__).resolve().parents[2])


class Runner:
    """Runs tasks in-process or in worker subprocesses, streaming records to ``on_record``."""

    def __init__(self, opts: Options, on_record: Emit):
        self.opts, self.on_record = opts, on_record
        self.logs = Path(opts.out) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, task: dict) -> dict:
        """Returns ``{"rc", "log_tail", "records"}``; rc is None when killed at the deadline."""
        task = {"options": self.opts.to_dict(), **task}
        records: list[dict] = []

        def emit(rec: dict) -> None:
            records.append(rec)
            self.on_record(rec)

        if not self.opts.isolate:
            try:
                execute(task, emit)
                return {"rc": 0, "log_tail": "", "records": records}
            except Exception as err:  # noqa: BLE001 - reported like a crashed worker
                log.exception("task %s failed", name)
                return {"rc": 1, "log_tail": f"{type(err).__name__}: {err}", "records": records}
        return self._run_subprocess(name, task, emit, records)

    def _run_subprocess(self, name: str, task: dict, emit: Emit, records: list) -> dict:
        results, log_path = self.logs / f"{name}.jsonl", self.logs / f"{name}.log"
        results.write_text("")
        task_path = self.logs / f"{name}.task.json"
        task_path.write_text(json.dumps({**task, "results": str(results)}, default=str))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root(), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", WORKER_MODULE, *(["-v"] if log.isEnabledFor(logging.DEBUG) else []), str(task_path)]
        deadline = task.get("deadline")
        with open(log_path, "w") as log_fh:
            proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
            rc, pos, buf = None, 0, ""
            while True:
                done = proc.poll() is not None
                with open(results) as fh:
                    fh.seek(pos)
                    buf += fh.read()
                    pos = fh.tell()
                *lines, buf = buf.split("\n")
                for line in lines:
                    if line.strip():
                        emit(json.loads(line))
                if done:
                    rc = proc.returncode
                    break
                if deadline is not None and time.time() > deadline + WORKER_GRACE_S:
                    log.warning("worker %s past its deadline: killing pid %d", name, proc.pid)
                    proc.kill()
                    proc.wait()
                    break
                time.sleep(0.25)
        tail = log_path.read_text(errors="replace")[-2000:]
        if rc not in (0, None):
            log.warning("worker %s exited rc=%s; log tail:\n%s", name, rc, tail[-800:])
        return {"rc": rc, "log_tail": tail, "records": records}


def fill_missing(specs: list[Spec], got: dict[int, dict], outcome: dict) -> list[dict]:
    """Rows for specs a worker never reported (crash or kill), in spec order."""
    rows = []
    for i, spec in enumerate(specs):
        if i in got:
            rows.append(got[i])
            continue
        if outcome["rc"] is None:
            why = "skipped: time limit (worker killed)"
        else:
            last = outcome["log_tail"].strip().splitlines()[-1:] or ["no output"]
            why = f"worker exited rc={outcome['rc']} before this config: {last[0][:300]}"
        rows.append({**base_row(spec), "status": "skipped" if outcome["rc"] is None else "error", "error": why})
    return rows


# --------------------------------------------------------------------------------------------
# the whole run


def run(opts: Options, on_update: Callable[[dict], None] | None = None) -> dict:
    """Run every enabled section (environment probe, checks, one bench group per backend,
    memory fit, profiles); returns the results dict (also written to ``opts.out``
    after each section; rows stream into ``logs/<section>.jsonl`` as they finish). See
    :mod:`videomamba.bench.report` for the layout."""
    t_start = time.time()
    t_end = t_start + opts.time_limit_s if opts.time_limit_s else None
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    results = report.new_results(opts)

    def save() -> None:
        report.finalize(results)
        report.write(results, out, plot=False)
        if on_update:
            on_update(results)

    def on_record(rec: dict) -> None:
        if rec.get("type") == "row":
            r = rec
            what = f"{r['clips_per_s']:.1f} clips/s, {report.gib(r['peak_mem_bytes'])} GiB" if r["status"] == "ok" else r["error"]
            log.info("%-58s %s", Spec(**{k: r[k] for k in Spec.__dataclass_fields__}).label(), what)
        elif rec.get("type") == "check":
            log.info("check %s", report.check_line(rec))

    runner = Runner(opts, on_record)

    def section_deadline(reserve_s: float, cap_s: float | None = None) -> float | None:
        d = None if t_end is None else t_end - reserve_s
        if cap_s is not None:
            d = time.time() + cap_s if d is None else min(d, time.time() + cap_s)
        return d

    env_out = runner.run("env", {"kind": "env"})
    env = next((r for r in env_out["records"] if r.get("type") == "env"), None)
    if env is None:
        raise RuntimeError(f"environment probe failed (rc={env_out['rc']}):\n{env_out['log_tail']}")
    env.pop("type")
    results["env"] = env
    avail = env["backends"]
    wanted = avail if "all" in opts.backends else opts.backends
    backends = [b for b in BACKEND_ORDER if b in wanted] + [b for b in wanted if b not in BACKEND_ORDER]
    runnable = [b for b in backends if b in avail]
    log.info("device %s; backends available %s, benchmarking %s", env["device"], avail, backends)
    save()

    prof_specs = [s for text in opts.profile for s in parse_profile(text, opts, runnable)]
    reserve_profile = 10.0 + 15.0 * len(prof_specs) if prof_specs else 0.0
    reserve_after_bench = (60.0 if opts.memory_fit else 0.0) + reserve_profile
    if opts.check:
        out_c = runner.run("check", {"kind": "check", "backends": runnable,
                                     "deadline": section_deadline(reserve_after_bench + 60.0, cap_s=100.0)})
        results["checks"] = report.collect_checks(out_c)
        save()

    if opts.bench:
        specs = bench_specs(opts, backends)
        groups: dict[str, list[Spec]] = {}
        for s in specs:
            groups.setdefault(s.backend, []).append(s)
        order = [b for b in ("sdpa", *backends) if b in groups]
        for k, backend in enumerate(order):
            group = groups[backend]
            if backend != "sdpa" and backend not in avail:
                why = env.get("backends_error") or f"backend {backend!r} not available here (available: {avail})"
                results["rows"].extend({**base_row(s), "status": "unavailable", "error": why} for s in group)
                save()
                continue
            deadline = section_deadline(reserve_after_bench)
            if deadline is not None:  # equal share of what is left among the remaining groups
                deadline = time.time() + (deadline - time.time()) / (len(order) - k)
            outcome = runner.run(f"bench_{backend}", {"kind": "bench", "specs": [asdict(s) for s in group],
                                                      "deadline": deadline})
            got = {r["index"]: _strip(r) for r in outcome["records"] if r.get("type") == "row"}
            results["rows"].extend(fill_missing(group, got, outcome))
            save()

    if opts.memory_fit:
        specs = memory_fit_specs(opts, runnable)
        outcome = runner.run("memory_fit", {"kind": "bench", "specs": [asdict(s) for s in specs],
                                            "deadline": section_deadline(reserve_profile)})
        got = {r["index"]: _strip(r) for r in outcome["records"] if r.get("type") == "row"}
        results["memory_fit"] = fill_missing(specs, got, outcome)
        save()

    if prof_specs:
        outcome = runner.run("profile", {"kind": "profile", "specs": [asdict(s) for s in prof_specs],
                                         "deadline": section_deadline(0.0)})
        results["profiles"] = [_strip(r) for r in outcome["records"] if r.get("type") == "profile"]
        if outcome["rc"] not in (0,):
            results["profiles"].append({"error": f"profile worker rc={outcome['rc']}: {outcome['log_tail'][-500:]}"})
        save()

    results["meta"]["wall_s"] = time.time() - t_start
    report.finalize(results)
    report.write(results, out, plot=True)
    return results


def _strip(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("type", "index")}


__all__ = ["Runner", "WORKER_GRACE_S", "WORKER_MODULE", "fill_missing", "run"]
