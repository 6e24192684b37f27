"""Self-distillation objective: loss by hand, schedule, frozen teacher, clean export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import videomamba
from videomamba.objectives import DistillConfig, DistillObjective, build_objective

ARCH = dict(img_size=32, num_frames=4, num_classes=4, depth=2, drop_path_rate=0.0)


def _student():
    torch.manual_seed(0)
    return videomamba.create_model("videomamba_tiny", embed_dim=32, **ARCH)


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(1)
    teacher = videomamba.create_model("videomamba_tiny", embed_dim=16, **ARCH)
    path = tmp_path / "teacher.pt"
    torch.save({"model": teacher.state_dict()}, path)  # wrapped, as published
    return str(path), teacher


def _cfg(path, **kw):
    return DistillConfig(
        teacher={"kind": "videomamba", "checkpoint": path, "model": "videomamba_tiny", "overrides": {"embed_dim": 16, **ARCH}},
        label_smoothing=0.0,
        **kw,
    )


def _batch():
    g = torch.Generator().manual_seed(3)
    return {"video": torch.randn(2, 3, 4, 32, 32, generator=g), "label": torch.tensor([0, 3])}


def test_teacher_from_a_training_checkpoint_dir_takes_its_recorded_architecture(tmp_path):
    """The teacher's architecture comes from the checkpoint's meta.json (a ModelSpec, in the format
    every checkpoint so far records: scan order and backend inside the kwargs); config overrides win."""
    from videomamba.objectives.teachers import VideoMambaTeacherConfig, build_teacher
    from videomamba.checkpoints import save_checkpoint

    kwargs = {"embed_dim": 16, **ARCH, "scan_order": "temporal_first", "backend": "torch"}
    torch.manual_seed(1)
    trained = videomamba.create_model("videomamba_small", **kwargs)
    save_checkpoint(tmp_path, model_state=trained.state_dict(),
                    meta={"model": {"name": "videomamba_small", "kwargs": kwargs}, "class_names": list("abcd")})
    teacher = build_teacher(VideoMambaTeacherConfig(checkpoint=str(tmp_path), overrides={"scan_order": "spatial_first"}))
    assert (teacher.model.embed_dim, teacher.model.depth, teacher.model.scan_order) == (16, 2, "spatial_first")
    assert torch.equal(teacher.model.head.weight, trained.head.weight) and not teacher.model.training


def test_teacher_loaded_from_checkpoint(teacher_ckpt):
    path, teacher = teacher_ckpt
    obj = build_objective(_cfg(path), _student())
    assert isinstance(obj, DistillObjective)
    for k, v in teacher.state_dict().items():
        assert torch.equal(obj.teacher.model.state_dict()[k], v)


@pytest.mark.parametrize("align", ["tokens", "cls"])
def test_loss_matches_hand_computation(teacher_ckpt, align):
    path, teacher = teacher_ckpt
    obj = build_objective(_cfg(path, distill_weight=0.7, align=align), _student()).train()
    batch = _batch()
    loss, metrics = obj(batch)

    model = obj.model
    with torch.no_grad():
        s = model.forward_tokens(batch["video"])  # (B, 1 + L, 32)
        t = teacher.eval().forward_tokens(batch["video"])  # (B, 1 + L, 16)
        ce = F.cross_entropy(model.head(s[:, 0]), batch["label"])
        p = obj.proj[1](obj.proj[0](s))  # RMSNorm then Linear
        if align == "cls":
            p, t = p[:, :1], t[:, :1]
        cos = (p / p.norm(dim=-1, keepdim=True) * t / t.norm(dim=-1, keepdim=True)).sum(-1)  # (B, N)
        align_hand = (2 - 2 * cos).mean()
    assert metrics["ce_loss"].item() == pytest.approx(ce.item(), rel=1e-5)
    assert metrics["align_loss"].item() == pytest.approx(align_hand.item(), rel=1e-5)
    assert loss.item() == pytest.approx(ce.item() + 0.7 * align_hand.item(), rel=1e-5)


def test_cosine_weight_schedule(teacher_ckpt):
    obj = build_objective(_cfg(teacher_ckpt[0], distill_weight=2.0, weight_schedule="cosine", distill_weight_end=0.5), _student())
    ws = []
    for p in (0.0, 0.5, 1.0):
        obj.set_progress(p)
        ws.append(obj.weight())
    assert ws == pytest.approx([2.0, 1.25, 0.5])
    obj.set_progress(0.5)
    assert obj(_batch())[1]["distill_weight"].item() == pytest.approx(1.25)


def test_gradients_do_not_reach_the_teacher(teacher_ckpt):
    obj = build_objective(_cfg(teacher_ckpt[0]), _student())
    obj.train()
    assert not obj.teacher.training  # frozen teacher stays in eval mode
    loss, _ = obj(_batch())
    loss.backward()
    teacher_params = list(obj.teacher.parameters())
    assert teacher_params and all(p.grad is None and not p.requires_grad for p in teacher_params)
    assert obj.proj[1].weight.grad is not None and obj.model.layers[0].mixer.in_proj.weight.grad is not None
    own = {id(p) for p in obj.parameters()}
    assert not any(id(p) in own for p in teacher_params)  # not in the optimizer / DDP


def test_export_has_only_the_student(teacher_ckpt):
    obj = build_objective(_cfg(teacher_ckpt[0]), _student())
    keys = set(obj.state_dict())
    assert not any(k.startswith("teacher") for k in keys)
    assert set(obj.extra_state_dict()) == {"proj.0.weight", "proj.1.weight", "proj.1.bias"}
    exported = obj.model.state_dict()
    assert not any(k.startswith(("proj", "teacher", "decoder")) for k in exported)
    fresh = videomamba.create_model("videomamba_tiny", embed_dim=32, **ARCH)
    fresh.load_state_dict(exported, strict=True)  # loads strictly into create_model


def test_teacher_follows_device_moves(teacher_ckpt):
    obj = build_objective(_cfg(teacher_ckpt[0]), _student()).to(torch.float64)
    assert next(obj.teacher.parameters()).dtype == torch.float64


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher.checkpoint"):
        build_objective(_cfg(str(tmp_path / "nope.pt")), _student())
