"""Same config, same seed, same result: ordered data delivery, seeded training, fixed summation
order in evaluation, each trial's seed recorded by searches."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from videomamba.metrics import average_views, classification_metrics, sort_views


# -- fast -----------------------------------------------------------------------------------------
def test_view_averaging_does_not_depend_on_arrival_order():
    rng = np.random.default_rng(0)
    videos, views, classes = 50, 12, 7
    n = videos * views
    # logits of very different magnitudes: their float sums depend on the order of the terms
    cols = {"index": np.repeat(np.arange(videos), views), "view": np.tile(np.arange(views), videos),
            "label": np.repeat(rng.integers(0, classes, videos), views),
            "logits": rng.standard_normal((n, classes)) * 10.0 ** rng.integers(-8, 9, (n, 1))}
    arrivals = [np.arange(n)] + [np.random.default_rng(s).permutation(n) for s in range(4)]
    means, unsorted, metrics = [], [], []
    for perm in arrivals:
        arrived = {k: v[perm] for k, v in cols.items()}
        unsorted.append(average_views(arrived["index"], arrived["logits"])[1])
        rows = sort_views(arrived)
        means.append(average_views(rows["index"], rows["logits"])[1])
        metrics.append(classification_metrics(rows["logits"], rows["label"], index=rows["index"]))
    assert all(np.array_equal(m, means[0]) for m in means)  # bit-identical per-video means
    assert not all(np.array_equal(u, unsorted[0]) for u in unsorted)  # arrival order alone: last bits differ
    assert all(m["top1"] == metrics[0]["top1"] and np.array_equal(m["confusion"], metrics[0]["confusion"])
               for m in metrics)


def test_trial_seed_is_recorded(tmp_path):
    from videomamba.tune import report
    from videomamba.tune.space import parse_space
    from videomamba.tune.trial import TAG_SEED, TrialContext, child_tags, trial_seed

    def ctx(space_text: str, base: dict) -> TrialContext:
        return TrialContext(base=base, space=parse_space(space_text), search_name="s", train_storage=str(tmp_path),
                            tracking_uri="", experiment="e", parent_run_id="p", metrics=("val/top1",))

    lr = "parameters:\n  optim.lr: {type: choice, values: [0.1, 0.2]}\n"
    assert child_tags(ctx(lr, {"train": {"seed": 7}}), "t1", {"optim.lr": 0.1})[TAG_SEED] == "7"
    assert trial_seed(ctx(lr, {}), {"optim.lr": 0.1}) == 0  # the schema default
    seeds = "parameters:\n  train.seed: {type: choice, values: [1, 2, 3]}\n"
    assert child_tags(ctx(seeds, {"train": {"seed": 7}}), "t1", {"train.seed": 3})[TAG_SEED] == "3"
    row = {"trial_id": "t1", "status": report.COMPLETED, "params": {"optim.lr": 0.1}, "seed": 7,
           "metrics": {"val/top1": 0.5}, "epochs": 2}
    table = report.markdown_table([row], ["optim.lr"], ["val/top1"])
    assert "| trial | status | epochs | seed |" in table and "| t1 | COMPLETED | 2 | 7 | 0.1 |" in table


def test_deterministic_algorithms_switch_and_atomic_backends(monkeypatch):
    from videomamba.train import determinism

    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda on: calls.append(on))
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    determinism.use_deterministic_algorithms(False)
    assert calls == []
    determinism.use_deterministic_algorithms(True)
    assert calls == [True] and torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    torch.backends.cudnn.deterministic = False
    assert determinism.check_scan_backend("auto", "cpu") == "torch"
    monkeypatch.setattr("videomamba.ops.resolve_backend", lambda backend, device: "mamba_ssm")
    with pytest.raises(RuntimeError, match=r"train.deterministic_algorithms: the 'mamba_ssm'.*backend=triton or torch"):
        determinism.check_scan_backend("auto", "cuda")
    # the Triton backward is deterministic (no atomics) unless its atomic dB/dC path is forced
    monkeypatch.setattr("videomamba.ops.resolve_backend", lambda backend, device: "triton")
    monkeypatch.delenv("VIDEOMAMBA_TRITON_BWD_ATOMIC", raising=False)
    assert determinism.check_scan_backend("auto", "cuda") == "triton"
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BWD_ATOMIC", "1")
    with pytest.raises(RuntimeError, match=r"the 'triton' selective-scan backward"):
        determinism.check_scan_backend("auto", "cuda")


# -- end to end (one Ray session, three short training runs) --------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from videomamba.data import make_synthetic_dataset

    out = tmp_path_factory.mktemp("determinism")
    ds = make_synthetic_dataset(str(out), classes=2, videos_per_class=8, val_videos_per_class=4, frames=8, size=16)
    return {"train": ds.train_manifest, "val": ds.val_manifest, "classes": ds.classes_file}


def _base(data: dict, root: Path) -> dict:
    return {
        "model": {"overrides": {"embed_dim": 16, "depth": 2, "patch_size": 8, "kernel_size": 2}, "drop_path_rate": 0.1},
        "data": {
            "train_manifest": data["train"], "val_manifest": data["val"], "classes_file": data["classes"],
            "num_frames": 4, "img_size": 16, "decode_short_side": 0, "randaugment": None, "hflip": True,
            "train_scale": [0.5, 1.0], "rows_per_block": 2, "decode_batch_size": 1, "decode_num_cpus": 0.25,
        },
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "schedule": {"warmup_epochs": 0.5},
        "train": {"epochs": 2, "batch_size": 4, "log_every": 1},
        "scaling": {"num_workers": 2},
        "eval": {"at_end": False},
        "mlflow": {"experiment": "determinism", "log_model": False},
        "run": {"root": str(root)},
    }


def _steps(run, key: str = "train/loss") -> list[float]:
    history = mlflow.MlflowClient(run.tracking_uri).get_metric_history(run.mlflow_run_id, key)
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def _weights(run) -> dict[str, torch.Tensor]:
    return torch.load(Path(run.result.checkpoint.path) / "model.pt", weights_only=True)


def _metrics(run) -> dict:
    """The run's last reported metrics without the timings (seconds, clips/s, data wait)."""
    return {k: v for k, v in run.result.metrics.items()
            if not (k.endswith("_s") or "per_s" in k or "data_wait" in k)}


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_run(ray_local, tiny_data, tmp_path):
    """Two trials of one sampled config and seed, one with a single decode task and one with
    three racing over 1-clip batches, train to the same per-step losses, validation metrics and
    final weights (bit for bit on CPU); another seed gives another run."""
    from videomamba.train.config import validate_config
    from videomamba.train.launcher import run_training
    from videomamba.tune.space import parse_space
    from videomamba.tune.trial import TrialContext, trial_config

    space = parse_space("parameters:\n  optim.lr: {type: choice, values: [1.0e-3, 3.0e-3]}\n")
    sampled = {"optim.lr": 3.0e-3}

    def trial(trial_id: str, seed: int, concurrency: int):
        base = _base(tiny_data, tmp_path)
        base["train"]["seed"] = seed
        base["data"]["decode_concurrency"] = concurrency
        ctx = TrialContext(base=base, space=space, search_name="det", train_storage=str(tmp_path / "ray"),
                           tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="determinism",
                           parent_run_id="", metrics=("val/top1",))
        cfg = validate_config(trial_config(ctx, sampled, trial_id))
        assert cfg.data.deterministic  # the default
        return run_training(cfg)

    a = trial("a", seed=0, concurrency=1)
    b = trial("b", seed=0, concurrency=3)
    c = trial("c", seed=1, concurrency=3)

    losses = [_steps(r) for r in (a, b, c)]
    assert len(losses[0]) == 4  # 2 epochs x 2 updates (16 clips, 2 workers x batch 4)
    assert losses[0] == losses[1], losses
    assert losses[2] != losses[0]
    assert _steps(a, "val/top1") == _steps(b, "val/top1")
    assert _metrics(a) == _metrics(b)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert json.loads((Path(a.result.checkpoint.path) / "meta.json").read_text())["config"]["optim"]["lr"] == 3.0e-3
