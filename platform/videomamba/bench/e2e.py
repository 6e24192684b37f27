"""``videomamba bench e2e``: the whole training job measured, data pipeline included.

Each case is a real ``videomamba train`` run (``run_training``: Ray Data decoding on CPU tasks
streaming into Ray Train workers, one per GPU, DDP, the config's objective, augmentation and
optimiser) for a few epochs, with validation, checkpoint ranking and the final evaluation off.
Per epoch it reads back what training logged to MLflow: clips/s, ``train/data_wait_frac`` (the
share of the epoch the workers waited for their next batch) and ``train/first_batch_s`` (the
epoch's start-up wait), and samples GPU utilisation (NVML, every 0.2 s) over the epoch's window.
The first ``warmup_epochs`` epochs (Ray worker start, Triton compilation) are reported but left
out of the summary.

The model-only case is the same run with ``debug.replay_first_batch``: every step reuses the
first batch, so it measures the identical training step without any data wait. The summary
gives each case's clips/s as a fraction of that (target: >= 0.95 with ``data_wait_frac`` <= 0.05).

Outputs (``out``): ``e2e.json`` (every epoch of every case, environment) and ``e2e.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EPOCH_KEYS = ("train/clips_per_s_epoch", "train/data_wait_frac", "train/epoch_s", "train/first_batch_s")


@dataclass
class Case:
    """One measured run: ``manifest`` (a name from the options' manifests), ``clips_per_video``,
    ``stream_epochs`` (the pipeline kept across epochs), ``model_only`` (replayed first batch)."""

    name: str
    manifest: str
    clips_per_video: int = 1
    stream_epochs: bool = True
    model_only: bool = False
    overrides: list[str] = field(default_factory=list)  # extra `--set KEY=VALUE`s of this case


@dataclass
class CaseResult:
    case: Case
    epochs: list[dict[str, float]] = field(default_factory=list)
    clips_per_s: float = 0.0  # measured epochs: clips / seconds
    data_wait_frac: float = 0.0  # time-weighted over the measured epochs
    first_batch_s: float = 0.0  # mean start-up wait of the measured epochs
    gpu_util: float | None = None  # mean NVML utilisation (%) over the measured epochs' windows, all GPUs
    vs_model_only: float | None = None
    wall_s: float = 0.0
    error: str | None = None


def parse_case(text: str) -> Case:
    """``MANIFEST_NAME:CLIPS_PER_VIDEO[:nostream][:KEY=VALUE...]`` (e.g. ``prepared:2``,
    ``raw:1:data.decode_concurrency=16``) or ``model`` (model only)."""
    if text == "model":
        return Case("model-only", "", 1, True, True)
    parts = text.split(":")
    name, cpv = parts[0], int(parts[1]) if len(parts) > 1 else 1
    extra = parts[2:]
    stream = "nostream" not in extra
    return Case(text, name, cpv, stream, False, [x for x in extra if x != "nostream"])


class GpuSampler:
    """NVML utilisation of every visible GPU every ``period`` s in a thread: ``[(time, [util %])]``."""

    def __init__(self, period: float = 0.2):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._thread = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception as err:  # noqa: BLE001 - no NVML (CPU machine): no utilisation
            logger.info("no GPU utilisation (NVML unavailable: %s)", err)
            self._handles = []

    def __enter__(self):
        if self._handles:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            utils = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self._handles]
            self.samples.append((time.time(), utils))
            self._stop.wait(self.period)

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mean(self, start: float, end: float) -> float | None:
        values = [sum(u) / len(u) for t, u in self.samples if start <= t <= end and u]
        return sum(values) / len(values) if values else None


def _epoch_history(tracking_uri: str, run_id: str) -> list[dict[str, float]]:
    """Per epoch (ordered): the EPOCH_KEYS values and ``end`` (wall time the epoch was logged)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    epochs: dict[int, dict[str, float]] = {}
    for m in client.get_metric_history(run_id, "epoch"):
        epochs.setdefault(m.step, {})["epoch"] = m.value
    for key in EPOCH_KEYS:
        for m in client.get_metric_history(run_id, key):
            row = epochs.setdefault(m.step, {})
            row[key.split("/", 1)[1]] = m.value
            row["end"] = m.timestamp / 1000
    return [epochs[s] for s in sorted(epochs) if "epoch_s" in epochs[s]]


def run_case(base_cfg, case: Case, manifests: dict[str, str], *, epochs: int, warmup_epochs: int,
             root: str, sampler: GpuSampler) -> CaseResult:
    from videomamba.train.config import TrainConfig
    from videomamba.train.launcher import run_training

    raw = base_cfg.model_dump(mode="json")
    manifest = manifests[case.manifest] if case.manifest else next(iter(manifests.values()))
    raw["data"].update(train_manifest=manifest, val_manifest=None, test_manifest=None,
                       clips_per_video=case.clips_per_video, stream_epochs=case.stream_epochs)
    raw["train"].update(epochs=epochs, val_split=None, checkpoint_every=10**6, checkpoint_metric="train/loss_epoch",
                        checkpoint_mode="min", log_every=10**6)
    raw["eval"]["at_end"] = False
    raw["mlflow"].update(log_model=False, register_model=None, experiment="bench-e2e")
    raw["run"].update(root=root, storage_path=None,
                      name=f"e2e-{re.sub(r'[^A-Za-z0-9_-]+', '-', case.name)}-{time.strftime('%H%M%S')}")
    raw["debug"]["replay_first_batch"] = case.model_only
    from videomamba.train.config import parse_overrides, set_dotted

    for key, value in parse_overrides(case.overrides):
        set_dotted(raw, key, value)
    cfg = TrainConfig.model_validate(raw)
    result = CaseResult(case)
    t = time.perf_counter()
    try:
        run = run_training(cfg)
        result.epochs = _epoch_history(run.tracking_uri, run.mlflow_run_id)
    except Exception as err:  # noqa: BLE001 - one failed case does not lose the others
        logger.exception("case %s failed", case.name)
        result.error = f"{type(err).__name__}: {err}"[:2000]
    result.wall_s = time.perf_counter() - t
    for e in result.epochs:
        e["gpu_util"] = sampler.mean(e["end"] - e["epoch_s"], e["end"])
    measured = result.epochs[warmup_epochs:] or result.epochs[-1:]
    if measured:
        secs = sum(e["epoch_s"] for e in measured)
        result.clips_per_s = sum(e["clips_per_s_epoch"] * e["epoch_s"] for e in measured) / secs
        result.data_wait_frac = sum(e["data_wait_frac"] * e["epoch_s"] for e in measured) / secs
        result.first_batch_s = sum(e.get("first_batch_s", 0.0) for e in measured) / len(measured)
        utils = [e["gpu_util"] for e in measured if e["gpu_util"] is not None]
        result.gpu_util = sum(utils) / len(utils) if utils else None
    return result


def environment(base_cfg) -> dict[str, Any]:
    import ray
    import torch

    from videomamba.env import cpu_model

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "date": datetime.date.today().isoformat(), "time_utc": datetime.datetime.utcnow().strftime("%H:%M"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores", "ray_cpus": ray.cluster_resources().get("CPU"),
        "gpus": gpus, "torch": torch.__version__, "ray": ray.__version__,
        "model": base_cfg.model.name, "backend": base_cfg.model.backend,
        "num_frames": base_cfg.data.num_frames, "img_size": base_cfg.data.img_size,
        "batch_per_worker": base_cfg.train.batch_size, "num_workers": base_cfg.scaling.num_workers,
        "cpus_per_worker": base_cfg.scaling.cpus_per_worker, "randaugment": base_cfg.data.randaugment,
        "objective": base_cfg.objective.name,
    }


def run(base_cfg, cases: list[Case], manifests: dict[str, str], *, epochs: int = 3, warmup_epochs: int = 1,
        out: str = "benchmarks/e2e", root: str | None = None) -> dict[str, Any]:
    """Run every case (model-only first when present); write ``e2e.json`` / ``e2e.md`` after each."""
    import tempfile

    from videomamba.cluster.connect import init_ray
    from videomamba.train.launcher import train_cpus

    init_ray(train_cpus(base_cfg))
    Path(out).mkdir(parents=True, exist_ok=True)
    root = root or tempfile.mkdtemp(prefix="vm-e2e-")
    report: dict[str, Any] = {"environment": environment(base_cfg), "epochs": epochs, "warmup_epochs": warmup_epochs,
                              "manifests": manifests, "cases": []}
    cases = sorted(cases, key=lambda c: not c.model_only)
    model_only = None
    with GpuSampler() as sampler:
        for case in cases:
            logger.info("bench e2e: case %s", case.name)
            res = run_case(base_cfg, case, manifests, epochs=epochs, warmup_epochs=warmup_epochs, root=root,
                           sampler=sampler)
            if case.model_only and not res.error:
                model_only = res.clips_per_s
            if model_only and not case.model_only:
                res.vs_model_only = res.clips_per_s / model_only
            report["cases"].append(asdict(res))
            _write(report, out)
            logger.info("bench e2e: %s", _row(report["cases"][-1]))
    return report


def _row(c: dict[str, Any]) -> str:
    case = c["case"]
    util = "-" if c["gpu_util"] is None else f"{c['gpu_util']:.0f}%"
    ratio = "-" if c["vs_model_only"] is None else f"{c['vs_model_only']:.2f}"
    per_epoch = ", ".join(f"{e['clips_per_s_epoch']:.0f}/{e['data_wait_frac']:.2f}/{e.get('first_batch_s', 0):.1f}s"
                          for e in c["epochs"])
    err = f" **error**: {c['error'][:200]}" if c["error"] else ""
    return (f"| {case['name']} | {case['manifest'] or '-'} | {case['clips_per_video']} "
            f"| {'yes' if case['stream_epochs'] else 'no'} | {c['clips_per_s']:.1f} | {c['data_wait_frac']:.3f} "
            f"| {c['first_batch_s']:.2f} | {util} | {ratio} | {per_epoch}{err} |")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# bench e2e ({env['date']} {env['time_utc']} UTC)",
        "",
        f"- machine: {env['cpu']}; GPUs: {', '.join(env['gpus']) or 'none'}; Ray CPUs {env['ray_cpus']}",
        f"- {env['model']} ({env['backend']}), {env['num_frames']} x {env['img_size']} px, batch {env['batch_per_worker']}"
        f" per worker x {env['num_workers']} workers ({env['cpus_per_worker']} CPU each), RandAugment "
        f"{env['randaugment']}, objective {env['objective']}; torch {env['torch']}, Ray {env['ray']}",
        f"- {report['epochs']} epochs per case, the first {report['warmup_epochs']} left out of the summary",
        "- manifests: " + ", ".join(f"{k} = `{v}`" for k, v in report["manifests"].items()),
        "",
        "| case | footage | clips/video | stream epochs | clips/s | data_wait_frac | first-batch wait (s) "
        "| GPU util | vs model-only | per epoch: clips/s / wait / first batch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(c) for c in report["cases"]]
    return "\n".join(lines) + "\n"


def _write(report: dict[str, Any], out: str) -> None:
    with open(Path(out) / "e2e.json", "w") as f:
        json.dump(report, f, indent=1)
    with open(Path(out) / "e2e.md", "w") as f:
        f.write(markdown(report))
