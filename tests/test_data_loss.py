"""Issue 13: training never loses data silently.

Skips are counted on the path ``videomamba train`` takes (a train and a val dataset share one skip
ledger scope: building the second one used to kill the ledger, so every skip went uncounted), per
reason, into MLflow and the run summary; too many skips, an epoch without clips and a checkpoint
metric nobody produces stop the run FAILED; ``tune`` checks its data before Ray Tune or MLflow;
``data check`` prints full paths; ``evaluate`` maps classes by name; ``predict`` takes a URL it
cannot read as a per-file error; ``--resume`` logs changed values; an unreachable tracking server
fails before Ray starts. The CLI training runs go to a real ``mlflow server`` over HTTP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from videomamba import cli

TINY_MODEL = {"name": "videomamba_tiny", "overrides": {"embed_dim": 32, "depth": 2, "kernel_size": 2, "patch_size": 8},
              "drop_path_rate": 0.0}
TINY_DATA = {"num_frames": 4, "img_size": 16, "decode_short_side": 0, "randaugment": None, "hflip": False,
             "train_scale": [1.0, 1.0], "train_ratio": [1.0, 1.0], "val_num_clips": 1, "test_num_clips": 1,
             "test_num_crops": 1}


def _write_manifest(path: Path, rows: list[tuple[str, object]]) -> str:
    path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Synthetic videos plus bad files: train = 8 good + 1 random-bytes + 1 missing (20% bad),
    val = 4 good + 1 zero-byte (20%), allbad = 4 random-bytes files."""
    from videomamba.data import make_synthetic_dataset

    root = tmp_path_factory.mktemp("dataloss")
    syn = make_synthetic_dataset(str(root / "syn"), classes=2, videos_per_class=4, val_videos_per_class=2,
                                 frames=8, size=16)
    rng = np.random.default_rng(0)

    def rows(manifest):
        lines = Path(manifest).read_text().splitlines()[1:]
        return [(str(Path(manifest).parent / line.split(",")[0]), line.split(",")[1]) for line in lines]

    for i in range(5):
        (root / f"noise{i}.mp4").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (root / "empty.mp4").write_bytes(b"")
    train = _write_manifest(root / "train.csv", rows(syn.train_manifest) + [(str(root / "noise0.mp4"), 0),
                                                                             (str(root / "gone.mp4"), 1)])
    val = _write_manifest(root / "val.csv", rows(syn.val_manifest) + [(str(root / "empty.mp4"), 0)])
    allbad = _write_manifest(root / "allbad.csv", [(str(root / f"noise{i}.mp4"), i % 2) for i in range(1, 5)])
    return {"root": root, "train": train, "val": val, "allbad": allbad, "classes": syn.classes_file}


def _config(tmp_path: Path, files: dict, **sections) -> str:
    cfg = {
        "model": TINY_MODEL,
        "data": {**TINY_DATA, "train_manifest": files["train"], "val_manifest": files["val"],
                 "classes_file": files["classes"]},
        "optim": {"lr": 1e-3, "reference_batch_size": None},
        "train": {"epochs": 1, "batch_size": 2},
        "scaling": {"num_workers": 1},
        "eval": {"at_end": False},
        "mlflow": {"experiment": "dataloss", "log_model": False},
        "run": {"root": str(tmp_path / "runs")},
    }
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# ------------------------------------------------------------------------------------------------
# the CLI path, against a real tracking server
@pytest.mark.slow
def test_cli_train_counts_skips_per_reason_into_a_tracking_server(ray_local, mlflow_server, data, tmp_path, capsys):
    cfg = _config(tmp_path, data, data={"max_skip_fraction": 0.5},
                  mlflow={"tracking_uri": mlflow_server.uri, "experiment": "dataloss", "log_model": True,
                          "register_model": "dataloss-tiny"})
    assert cli.main(["train", "-c", cfg, "--set", "run.name=skips"]) == 0
    out = capsys.readouterr().out
    # the run summary the CLI prints: counts by reason per split
    assert "train: 2 skipped (missing 1, unreadable 1)" in out, out
    assert "val: 1 skipped (empty 1)" in out, out
    assert str(data["root"] / "gone.mp4") in out

    # everything reads back over the server's REST API
    exp = mlflow_server.get("experiments/get-by-name", experiment_name="dataloss")["experiment"]
    runs = mlflow_server.post("runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    (run,) = [r for r in runs if r["info"]["run_name"] == "skips"]
    assert run["info"]["status"] == "FINISHED"
    run_id = run["info"]["run_id"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["data/train/skipped"] == 2 and metrics["data/train/skipped_missing"] == 1
    assert metrics["data/train/skipped_unreadable"] == 1
    assert metrics["data/val/skipped"] == 1 and metrics["data/val/skipped_empty"] == 1
    assert metrics["data/train/skipped_frac"] == pytest.approx(0.2)
    assert "val/top1" in metrics and "train/loss_epoch" in metrics
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["data.max_skip_fraction"] == "0.5" and params["train.epochs"] == "1"
    history = mlflow_server.get("metrics/get-history", run_id=run_id, metric_key="train/loss_epoch")["metrics"]
    assert len(history) == 1

    listed = {f["path"] for f in mlflow_server.get("artifacts/list", run_id=run_id).get("files", [])}
    assert {"config", "best_checkpoint"} <= listed, listed
    artifact_root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:")
    resolved = yaml.safe_load(mlflow_server.download(f"{artifact_root}/config/resolved.yaml"))
    assert resolved["data"]["max_skip_fraction"] == 0.5
    meta = json.loads(mlflow_server.download(f"{artifact_root}/best_checkpoint/meta.json"))
    assert meta["mlflow"]["run_id"] == run_id

    model = mlflow_server.get("registered-models/get", name="dataloss-tiny")["registered_model"]
    (version,) = model["latest_versions"]
    assert version["run_id"] == run_id and version["status"] == "READY"
    # stored under the server's artifact root, not in a local mlruns/
    assert any((mlflow_server.root / "artifacts").rglob("MLmodel"))


@pytest.mark.slow
def test_cli_train_on_an_all_corrupt_manifest_fails_with_the_counts(ray_local, data, tmp_path, capsys):
    cfg = _config(tmp_path, data, data={"train_manifest": data["allbad"]})
    assert cli.main(["train", "-c", cfg, "--set", "run.name=allbad"]) == 1
    err = capsys.readouterr().err
    assert "epoch 0 yielded no training clips" in err
    assert "4 of 4 videos (100.0%) skipped: unreadable 4" in err
    assert str(data["root"] / "noise1.mp4") in err or str(data["root"] / "noise2.mp4") in err
    assert "Last good checkpoint: none" in err
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("dataloss").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["stop_reason"] == "data_loss"
    assert run.data.metrics["data/train/skipped_unreadable"] == 4


@pytest.mark.slow
def test_an_empty_streamed_epoch_counts_only_its_own_videos(ray_local, data, tmp_path, capsys):
    """2 epochs streamed through one execution: an empty epoch 0 drains epoch 1's rows too; they
    must not count against epoch 0 (they once did: "8 of 4 videos (200.0%)")."""
    cfg = _config(tmp_path, data, data={"train_manifest": data["allbad"]})
    assert cli.main(["train", "-c", cfg, "--set", "run.name=allbad2", "--set", "train.epochs=2"]) == 1
    err = capsys.readouterr().err
    assert "epoch 0 yielded no training clips" in err
    assert "4 of 4 videos (100.0%) skipped: unreadable 4" in err


@pytest.mark.slow
def test_the_ledger_survives_a_second_dataset_of_its_scope(ray_local, data):
    """The mechanism behind the uncounted skips: ``build_dataset`` of val after train (one scope)."""
    from videomamba.data import DataConfig, build_dataset, skip_report

    cfg = DataConfig(**{**TINY_DATA, "train_manifest": data["train"], "val_manifest": data["val"],
                        "classes_file": data["classes"]})
    build_dataset(cfg, "train", scope="two-datasets")
    val = build_dataset(cfg, "val", scope="two-datasets")
    assert sum(len(b["label"]) for b in val.iter_batches(batch_size=None)) == 4
    rep = skip_report("val", scope="two-datasets")
    assert (rep.skipped, rep.by_reason) == (1, {"empty": 1})


# ------------------------------------------------------------------------------------------------
# evaluate / predict with a tiny checkpoint that always answers class 0
@pytest.fixture(scope="module")
def biased_checkpoint(tmp_path_factory, data):
    import torch

    import videomamba
    from videomamba.checkpoints import save_checkpoint

    root = tmp_path_factory.mktemp("ckpt")
    names = ["walking", "running", "jumping"]
    (root / "classes_train_order.txt").write_text("\n".join(names) + "\n")
    (root / "classes_sorted.txt").write_text("\n".join(sorted(names)) + "\n")
    (root / "classes_other.txt").write_text("walking\nrunning\nswimming\n")
    videos = [line.split(",")[0] for line in Path(data["val"]).read_text().splitlines()[1:]]
    labels = ["walking", "walking", "walking", "running", "walking"]  # the last one is the empty file
    _write_manifest(root / "eval.csv", list(zip(videos, labels)))
    kw = dict(embed_dim=32, depth=2, num_frames=4, img_size=16, patch_size=8, num_classes=3, kernel_size=1, backend="torch")
    model = videomamba.create_model("videomamba_tiny", **kw)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))  # always 'walking'
    cfg = {**TINY_DATA, "classes_file": str(root / "classes_train_order.txt"), "test_manifest": str(root / "eval.csv")}
    save_checkpoint(root / "ckpt", model_state=model.state_dict(),
                    meta={"config": {"data": cfg}, "class_names": names, "model": {"name": "videomamba_tiny", "kwargs": kw}})
    return root


@pytest.mark.slow
def test_evaluate_maps_a_reordered_classes_file_by_name_and_counts_skips(ray_local, biased_checkpoint, capsys):
    root = biased_checkpoint
    args = ["evaluate", "--checkpoint", str(root / "ckpt"), "--manifest", str(root / "eval.csv"),
            "--set", "data.max_skip_fraction=0.5"]
    assert cli.main([*args, "--set", f"data.classes_file={root / 'classes_sorted.txt'}"]) == 0
    out = capsys.readouterr().out
    assert "top-1 0.7500" in out, out  # 3 of the 4 readable videos are 'walking', as with the training order
    assert "skipped videos: 1 (empty 1)" in out, out
    # names the checkpoint does not know: refused with both lists, before any Ray work
    assert cli.main([*args, "--set", f"data.classes_file={root / 'classes_other.txt'}"]) == 2
    err = capsys.readouterr().err
    assert "swimming" in err and "['walking', 'running', 'jumping']" in err


def test_class_label_map():
    from videomamba.inference.evaluate import class_label_map

    assert class_label_map(["a", "b"], ["a", "b"]) is None
    assert class_label_map(["c", "a", "b"], ["a", "b", "c"]).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="checkpoint"):
        class_label_map(["a", "x"], ["a", "b"])


def test_predict_reports_an_unreadable_url_per_file_and_predicts_the_rest(biased_checkpoint, data, capsys):
    video = Path(data["val"]).read_text().splitlines()[1].split(",")[0]
    code = cli.main(["predict", "--checkpoint", str(biased_checkpoint / "ckpt"), "--device", "cpu", "--top-k", "1",
                     "https://example.invalid/clip.mp4", video])
    out = capsys.readouterr().out
    assert code == 1
    assert "https://example.invalid/clip.mp4: ERROR DecodeError: unsupported" in out, out
    assert f"{video} (1 views):" in out and "walking" in out
    assert "1 of 2 videos not predicted (unsupported 1)" in out


# ------------------------------------------------------------------------------------------------
# fast checks
def test_skip_limit_and_missing_metric_messages():
    from videomamba.data.skips import SkipLimitError, SkipReport, check_skips
    from videomamba.train.loop import missing_metric_message

    rep = SkipReport("train", 0, skipped=1, by_reason={"corrupt": 1}, examples=[("/data/a.mp4", "corrupt")])
    check_skips(rep, 10, 0.1, "train split, epoch 0")  # 10% is not more than 10%
    check_skips(SkipReport("train", 0), 10, 0.0, "x")  # 0 allowed: nothing skipped is fine
    with pytest.raises(SkipLimitError, match=r"1 of 10 videos \(10.0%\) skipped: corrupt 1; e.g. /data/a.mp4"):
        check_skips(rep, 10, 0.0, "train split, epoch 0")
    assert missing_metric_message("val/top1", {"val/top1": 0.5}) is None
    msg = missing_metric_message("val/acc", {"val/top1": 0.5, "val/top5": 1.0, "epoch": 0})
    assert "'val/acc'" in msg and "val/top1, val/top5" in msg


def test_resume_logs_changed_values_under_a_prefix(tmp_path, caplog):
    from videomamba.train import tracking
    from videomamba.train.launcher import log_resume_changes

    tracker = tracking.start_run(f"sqlite:///{tmp_path / 'mlflow.db'}", "resume")
    tracker.log_params({"train.epochs": 1, "optim.lr": 0.001, "run.name": "None"})
    with caplog.at_level("WARNING"):
        changes = log_resume_changes(tracker, {"train.epochs": 2, "optim.lr": 0.0005, "run.name": "r13"}, 1)
    assert set(changes) == {"train.epochs", "optim.lr"}
    run = tracker.client.get_run(tracker.run_id)
    assert run.data.params["resume1.train.epochs"] == "2" and run.data.params["resume1.optim.lr"] == "0.0005"
    assert run.data.params["train.epochs"] == "1"  # what the first part ran with stays
    assert "train.epochs: 1 -> 2" in run.data.tags["resume1.changed"]
    assert "changed config values" in caplog.text


def _no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray must not start")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


def test_unreachable_tracking_server_fails_before_ray(monkeypatch, data, tmp_path, capsys):
    from support.mlflow_server import free_port

    _no_ray(monkeypatch)
    cfg = _config(tmp_path, data, mlflow={"tracking_uri": f"http://127.0.0.1:{free_port()}"})
    assert cli.main(["train", "-c", cfg]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the MLflow tracking server http://127.0.0.1:" in err


def test_relative_sqlite_uri_is_made_absolute(tmp_path, monkeypatch):
    from videomamba.train.tracking import resolve_tracking_uri

    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///store/mlflow.db") == f"sqlite:///{tmp_path.resolve() / 'store' / 'mlflow.db'}"


def test_tune_checks_its_data_before_ray_and_mlflow(monkeypatch, data, tmp_path, capsys):
    _no_ray(monkeypatch)
    cfg = _config(tmp_path, data, data={"classes_file": str(tmp_path / "no-classes.txt")})
    space = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
    assert cli.main(["tune", "--config", cfg, "--space", str(space)]) == 2
    assert "no-classes.txt" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no MLflow store, no Tune directory

    cfg = _config(tmp_path, data, data={"val_manifest": str(tmp_path / "no-val.csv")})
    assert cli.main(["tune", "--config", cfg, "--space", str(space)]) == 2
    assert "no-val.csv" in capsys.readouterr().err


def test_data_check_prints_every_full_path_off_a_terminal(monkeypatch, capsys, tmp_path):
    from videomamba.commands import data as data_cmd
    from videomamba.data import check

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("path,label\nv.mp4,0\n")  # read by the CLI's manifest check first

    deep = "/tmp/" + "/".join(["a-rather-long-directory-name"] * 6)
    bad = [(i + 2, f"{deep}/corrupt_video_{i:03d}.mp4", "corrupt", "moov atom not found") for i in range(60)]
    report = check.CheckReport(manifest="m.csv", rows=61, ok=1, bad=bad, reasons={"corrupt": 60})
    monkeypatch.setattr(data_cmd, "init_ray", lambda **kw: None)
    monkeypatch.setattr(check, "check_manifest", lambda *a, **k: report)
    assert cli.main(["data", "check", "m.csv"]) == 1
    out = capsys.readouterr().out
    for _, path, _, _ in bad:
        assert path in out
    assert "unreadable videos: 60 of 61 (corrupt 60)" in out
