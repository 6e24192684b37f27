"""Nothing executes from a checkpoint file: the training state is tensors (safetensors) + plain
values (JSON); a planted pickle is refused without running; format-1 checkpoints (a pickled
``train_state.pt``) get an upgrade message, and the upgrade reads them weights-only."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import videomamba
from videomamba.cli import main
from videomamba import checkpoints as ckpt
from videomamba.train.config import OptimSection, ScheduleSection
from videomamba.train.optim import build_optimizer, build_scheduler


class _Plant:
    """A pickle that creates a file when it is unpickled (what an attacker would put in storage)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path, *, torch_save: bool = False) -> None:
    if torch_save:
        torch.save({"epoch": 3, "optimizer": _Plant(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"epoch": 3, "optimizer": _Plant(marker)}))
    # the plant works: unpickling it really creates the file
    probe = marker.with_name("probe")
    pickle.loads(pickle.dumps(_Plant(probe)))
    assert probe.exists()
    probe.unlink()


def _training_state():
    """A real training state as the loop saves it (one AdamW update, timm cosine, EMA, scaler)."""
    from timm.utils import ModelEmaV3

    torch.manual_seed(0)
    model = videomamba.create_model("videomamba_tiny", embed_dim=16, depth=2, img_size=16, patch_size=8,
                                    num_frames=4, num_classes=3, backend="torch")
    opt = build_optimizer(model, OptimSection(), lr=1e-3)
    sched = build_scheduler(opt, ScheduleSection(warmup_epochs=1), steps_per_epoch=2, epochs=2)
    ema = ModelEmaV3(model, decay=0.9)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model(torch.randn(2, 3, 4, 16, 16)).sum().backward()
    opt.step()
    sched.step_update(1)
    ema.update(model, step=1)
    state = {
        "epoch": 0, "num_updates": 1, "best": float("-inf"),
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
        "ema": ema.state_dict(), "model": {k: v.clone() for k, v in model.state_dict().items()},
        "rng": {"scheme": "seed_everything(train.seed, epoch, rank)", "seed": 0},
    }
    return state, (model, opt, sched, ema)


def _assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b and type(a) is type(b), path


def _checkpoint(tmp_path: Path, state) -> Path:
    d = tmp_path / "epoch_0000"
    ckpt.save_checkpoint(d, model_state=state["model"], meta={"epoch": 0, "model": {}}, train_state=state)
    return d


def test_training_state_round_trips_as_tensors_and_json(tmp_path):
    state, (model, opt, sched, ema) = _training_state()
    d = _checkpoint(tmp_path, state)
    assert sorted(p.name for p in d.iterdir()) == ["meta.json", "model.pt", "train_state.json", "train_state.safetensors"]
    assert ckpt.read_meta(d)["format"] == ckpt.FORMAT_VERSION
    loaded = ckpt.load_train_state(d)
    _assert_same(state, loaded)  # exact: int optimizer keys, tuples (betas), -inf, dtypes
    ckpt.check_train_state(d)
    # and it restores into fresh objects
    opt2 = build_optimizer(model, OptimSection(), lr=1e-3)
    opt2.load_state_dict(loaded["optimizer"])
    sched2 = build_scheduler(opt2, ScheduleSection(warmup_epochs=1), steps_per_epoch=2, epochs=2)
    sched2.load_state_dict(loaded["scheduler"])
    ema.load_state_dict(loaded["ema"])
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_only_tensors_and_plain_values_are_saved():
    with pytest.raises(TypeError, match=r"training state\.optimizer\.thing: BytesIO is not a tensor"):
        ckpt.encode_state({"optimizer": {"thing": io.BytesIO()}})


@pytest.mark.parametrize("torch_save", [False, True], ids=["pickle", "torch.save"])
def test_planted_pickle_as_training_state_is_refused_and_not_run(tmp_path, torch_save):
    state, _ = _training_state()
    d = _checkpoint(tmp_path, state)
    marker = tmp_path / "pwned"
    _plant(d / ckpt.STATE_TENSORS_FILE, marker, torch_save=torch_save)
    for read in (ckpt.check_train_state, ckpt.load_train_state):
        with pytest.raises(ckpt.UnsafeCheckpointError, match=r"train_state\.safetensors: it is a .*pickle.*refusing to resume"):
            read(d)
    assert not marker.exists()


def test_old_format_gets_an_upgrade_message_not_an_unsafe_load(tmp_path, capsys):
    state, _ = _training_state()
    d = _checkpoint(tmp_path, state)
    for name in (ckpt.STATE_TENSORS_FILE, ckpt.STATE_JSON_FILE):
        (d / name).unlink()
    torch.save(state, d / ckpt.LEGACY_STATE_FILE)  # what format 1 wrote
    with pytest.raises(ckpt.UnsafeCheckpointError, match=r"old checkpoint format 1 .*videomamba checkpoint upgrade"):
        ckpt.load_train_state(d)
    assert main(["checkpoint", "upgrade", str(d)]) == 0
    assert not (d / ckpt.LEGACY_STATE_FILE).exists()
    _assert_same(state, ckpt.load_train_state(d))


def test_upgrade_refuses_a_planted_old_format_pickle(tmp_path, capsys):
    d = tmp_path / "epoch_0003"
    d.mkdir()
    marker = tmp_path / "pwned"
    _plant(d / ckpt.LEGACY_STATE_FILE, marker, torch_save=True)
    with pytest.raises(ckpt.UnsafeCheckpointError, match="old checkpoint format 1"):
        ckpt.load_train_state(d)  # the legacy file is not even opened
    assert main(["checkpoint", "upgrade", str(d)]) == 1
    assert "refused: it holds more than tensors and plain values" in capsys.readouterr().err
    assert not marker.exists() and not (d / ckpt.STATE_JSON_FILE).exists()


def test_tampered_json_is_refused(tmp_path):
    state, _ = _training_state()
    d = _checkpoint(tmp_path, state)
    (d / ckpt.STATE_JSON_FILE).write_text('{"kind": "videomamba-train-state", "version": 2, "state": {"x": {"__tensor__": "nope"}}}')
    with pytest.raises(ckpt.UnsafeCheckpointError, match="not in the tensor file"):
        ckpt.load_train_state(d)


def test_package_has_no_unsafe_load_or_pickle_serialization():
    """The issue's done-criterion as a test: no weights_only=False, no pickle (de)serialization."""
    root = Path(videomamba.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ("weights_only=False" in code or "import pickle" in code or "cloudpickle" in code
                    or 'serialization_format="pickle"' in code or "mlflow.pytorch.log_model" in code):
                offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
