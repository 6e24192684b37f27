"""The logged MLflow model is code plus weights: a pyfunc model whose artifacts are safetensors +
JSON metadata, rebuilt with ``videomamba.create_model`` on load (no pickle anywhere). Loaded in a
fresh process through its ``models:/`` URI it returns the checkpoint's logits; signature and
registration survive; ``predict`` accepts the URI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import torch

import videomamba
from videomamba import checkpoints as ckpt
from videomamba.train import tracking
from videomamba.train.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
KWARGS = {"embed_dim": 16, "depth": 2, "img_size": 16, "patch_size": 8, "num_frames": 4, "kernel_size": 2,
          "num_classes": 2, "backend": "torch"}


def _checkpoint(tmp_path: Path, data) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = videomamba.create_model("videomamba_tiny", **KWARGS).eval()
    for p in model.parameters():  # distinctive weights (a fresh head is zeros)
        p.data.add_(torch.randn_like(p) * 0.05)
    cfg = validate_config({"data": {"train_manifest": data.train_manifest, "val_manifest": data.val_manifest,
                                    "classes_file": data.classes_file, "num_frames": 4, "img_size": 16,
                                    "decode_short_side": 0, "test_num_clips": 2, "test_num_crops": 1}})
    meta = {"model": {"name": "videomamba_tiny", "kwargs": KWARGS}, "class_names": ["left", "right"], "epoch": 0,
            "config": cfg.model_dump(mode="json"), "weights": "model"}
    d = ckpt.save_checkpoint(tmp_path / "epoch_0000", model_state=model.state_dict(), meta=meta)
    return d, model


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_pyfunc_model_round_trip_in_a_fresh_process(tmp_path):
    from videomamba.data import make_synthetic_dataset
    from videomamba.train.launcher import log_model
    from videomamba.inference.predict import predict_videos

    data = make_synthetic_dataset(str(tmp_path / "data"), classes=2, videos_per_class=1, val_videos_per_class=1,
                                  frames=8, size=16)
    d, model = _checkpoint(tmp_path, data)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = tracking.start_run(uri, "pyfunc-test", run_name="r")
    info = log_model(tracker, d, registered_name="vm-pyfunc")

    # what lies in the artifact store: MLmodel (YAML), env files, safetensors + JSON; no pickle
    with tracking.mlflow_uri(uri):
        local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "dl")))
        model_info = mlflow.models.get_model_info("models:/vm-pyfunc/1")
    files = _files(local)
    assert {"MLmodel", "data/videomamba/model.safetensors", "data/videomamba/meta.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".pt", ".pth", ".py"))], files
    assert "loader_module: videomamba.train.mlflow_model" in (local / "MLmodel").read_text()
    spec = model_info.signature.inputs.to_dict()[0]
    assert spec["name"] == "video" and list(spec["tensor-spec"]["shape"]) == [-1, 3, 4, 16, 16]
    assert model_info.metadata["class_names"] == ["left", "right"]

    # a fresh process loads it by models:/ URI and predicts: the checkpoint's logits
    x = torch.randn(3, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    np.save(tmp_path / "x.npy", x.numpy())
    script = (
        "import sys, numpy as np, mlflow\n"
        "m = mlflow.pyfunc.load_model('models:/vm-pyfunc/1')\n"
        "np.save(sys.argv[2], m.predict(np.load(sys.argv[1])))\n"
        "print(sorted(m for m in sys.modules if m.startswith('videomamba')))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT / "platform")}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "y.npy")
    with torch.inference_mode():
        want = model(x).numpy()
    assert got.dtype == np.float32 and got.shape == (3, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert "videomamba.train.mlflow_model" in proc.stdout  # rebuilt by the installed package's loader

    # predict accepts the models:/ URI and gives what the checkpoint gives
    video = str(Path(data.val_manifest).parent / "val" / "00000.mp4")
    from_ckpt = predict_videos(d, [video], top_k=2)[0]
    from_uri = predict_videos("models:/vm-pyfunc/1", [video], top_k=2, tracking_uri=uri)[0]
    assert from_uri.error is None and from_uri.num_views == 2
    assert [n for n, _ in from_uri.top] == [n for n, _ in from_ckpt.top]
    np.testing.assert_allclose([p for _, p in from_uri.top], [p for _, p in from_ckpt.top], rtol=1e-5)
    loaded, meta = ckpt.load_trained_model(f"runs:/{tracker.run_id}/model", tracking_uri=uri)
    assert meta["class_names"] == ["left", "right"] and json.dumps(meta["model"]["kwargs"]) == json.dumps(KWARGS)
