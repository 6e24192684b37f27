"""The demo path end to end at tiny size: synthetic data -> Ray Train -> multi-view evaluation on
Ray Data -> MLflow (read back through the client), then `videomamba predict` on a real mp4."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch

from videomamba.mlflow_store import mlflow_uri

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _artifacts(client, run_id, path=None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_demo_end_to_end(ray_local, tmp_path, monkeypatch, capsys):
    from videomamba.cli import main

    monkeypatch.chdir(tmp_path)  # the demo config's relative paths (runs/...) land here
    code = main([
        "demo", "--config", str(ROOT / "configs" / "demo.yaml"),
        "--classes", "2", "--videos-per-class", "8", "--val-videos-per-class", "4", "--frames", "8",
        "--set", "model.overrides={embed_dim: 16, depth: 2, patch_size: 8, kernel_size: 2}",
        "--set", "data.img_size=16", "--set", "data.num_frames=4",
        "--set", "train.epochs=2", "--set", "train.batch_size=4", "--set", "train.eval_every=1",
        "--set", "train.checkpoint_every=1",
        "--set", "objective.mixup={mixup_alpha: 0.8, cutmix_alpha: 1.0}",
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "DEMO RESULT: top-1" in out and "videomamba ui" in out

    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.overrides.embed_dim"] == "16" and params["train.epochs"] == "2"
    assert params["objective.name"] == "supervised" and int(params["derived.num_params"]) > 0
    metrics = run.data.metrics
    for key in ("train/loss", "train/lr", "train/clips_per_s", "train/loss_epoch", "val/top1", "test/top1",
                "test/top5", "data/train/skipped"):
        assert key in metrics, key
    assert not [k for k in metrics if k.startswith("best/")]  # summary values: tags, not one-point charts
    tags = run.data.tags
    assert "best/val/top1" in tags
    assert client.get_experiment_by_name("demo").tags["mlflow.experimentKind"] == "custom_model_development"
    assert {"git_commit", "scan_order", "backend", "device", "best_checkpoint"} <= set(tags)
    artifacts = _artifacts(client, run.info.run_id)
    assert {"config/resolved.yaml", "plots/curves.png", "plots/test_confusion_matrix.png",
            "plots/val_confusion_matrix.png", "best_checkpoint/meta.json", "eval/test_metrics.json"} <= artifacts

    version = client.get_model_version("videomamba-demo", "1")
    assert version.run_id == run.info.run_id
    with mlflow_uri(uri):  # models:/ URIs resolve through the fluent API's store
        model_info = mlflow.models.get_model_info(version.source)
    assert list(model_info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 3, 4, 16, 16]

    best = Path(tags["best_checkpoint"])
    state = torch.load(best / "model.pt", weights_only=True)
    assert "layers.0.mixer.A_log" in state and "head.weight" in state
    video = tmp_path / "runs" / "demo_data" / "val" / "00000.mp4"
    assert main(["predict", "--checkpoint", str(best), "--top-k", "2", str(video)]) == 0
    printed = capsys.readouterr().out
    assert "00000.mp4 (2 views)" in printed and ("left" in printed and "right" in printed)
    assert main(["predict", "--checkpoint", "models:/videomamba-demo/1", "--tracking-uri", uri, "--top-k", "2",
                 str(video)]) == 0
    assert capsys.readouterr().out == printed  # the registered model is the best checkpoint

    # multi-view evaluation of the checkpoint on Ray (Ray Data actor pool), as a user would run it
    report = tmp_path / "eval.json"
    manifest = tmp_path / "runs" / "demo_data" / "val.csv"
    # (through the registered MLflow model: pyfunc of safetensors + meta, no pickle)
    assert main(["evaluate", "--checkpoint", "models:/videomamba-demo/1", "--tracking-uri", uri,
                 "--manifest", str(manifest), "--output", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["num_videos"] == 8 and result["num_views"] == 16 and 0 <= result["top1"] <= 1
    assert result["top1"] == pytest.approx(metrics["test/top1"])  # same checkpoint, same views
