"""Objective interface (student as .model, extra heads, frozen teachers kept out) and the
checkpoint format (model.pt is a plain published-format state dict)."""

from __future__ import annotations

import torch
from torch import nn

import videomamba
from videomamba.objectives import MixupConfig, Objective, SupervisedConfig, build_objective
from videomamba import checkpoints as ckpt


def _model(num_classes=4):
    return videomamba.create_model(
        "videomamba_tiny", embed_dim=16, depth=2, img_size=16, patch_size=8, num_frames=4,
        num_classes=num_classes, backend="torch",
    )


class _WithHead(Objective):
    """What distillation-style objectives look like: an extra head and a frozen teacher."""

    name = "test_head"

    def __init__(self, cfg, model):
        super().__init__(cfg, model)
        self.proj = nn.Linear(model.embed_dim, 8)
        self.register_frozen("teacher", nn.Linear(model.embed_dim, 8))

    def forward(self, batch):
        feats = self.model.forward_features(batch["video"])
        loss = (self.proj(feats) - self.teacher(feats)).pow(2).mean()
        return loss, {"loss": loss.detach()}


def test_supervised_step_and_mixup():
    torch.manual_seed(0)
    batch = {"video": torch.randn(4, 3, 4, 16, 16), "label": torch.tensor([0, 1, 2, 3])}
    for cfg in (SupervisedConfig(), SupervisedConfig(mixup=MixupConfig(mixup_alpha=0.8, cutmix_alpha=1.0))):
        objective = build_objective(cfg, _model()).train()
        loss, metrics = objective(batch)
        loss.backward()
        assert loss.ndim == 0 and torch.isfinite(loss) and set(metrics) == {"loss", "acc"}
        assert objective.model.head.weight.grad is not None


def test_heads_and_frozen_teacher():
    objective = _WithHead(SupervisedConfig(), _model())
    names = [n for n, _ in objective.named_parameters()]
    assert "proj.weight" in names and not any(n.startswith("teacher") for n in names)
    assert set(objective.extra_state_dict()) == {"proj.weight", "proj.bias"}
    assert not any(k.startswith("teacher") for k in objective.state_dict())
    objective.train()
    assert not objective.teacher.training and not objective.teacher.weight.requires_grad
    objective.to(torch.float64)  # frozen modules follow .to()
    assert objective.teacher.weight.dtype == torch.float64
    other = _WithHead(SupervisedConfig(), _model()).to(torch.float64)
    other.load_extra_state_dict(objective.extra_state_dict())
    assert torch.equal(other.proj.weight, objective.proj.weight)


def test_model_pt_is_a_published_format_state_dict(tmp_path):
    model = _model()
    objective = build_objective(SupervisedConfig(), model)
    meta = {"model": {"name": "videomamba_tiny", "kwargs": {"embed_dim": 16, "depth": 2, "img_size": 16, "patch_size": 8,
                                                            "num_frames": 4, "num_classes": 4, "backend": "torch"}},
            "class_names": list("abcd"), "config": {}}
    ckpt.save_checkpoint(tmp_path, model_state=objective.model.state_dict(), meta=meta,
                         heads_state=objective.extra_state_dict(), train_state={"epoch": 0})
    state = torch.load(tmp_path / ckpt.MODEL_FILE, weights_only=True)
    assert {"cls_token", "pos_embed", "temporal_pos_embedding", "norm_f.weight", "head.weight",
            "layers.1.mixer.A_log", "layers.1.mixer.D_b"} <= set(state)
    assert not any(k.startswith(("model.", "module.")) for k in state)
    assert not (tmp_path / ckpt.HEADS_FILE).exists()  # supervised has no extra heads
    fresh = _model()
    videomamba.load_checkpoint(fresh, str(tmp_path / ckpt.MODEL_FILE))
    assert torch.equal(fresh.head.weight, model.head.weight)
    loaded, meta2 = ckpt.load_trained_model(tmp_path)
    assert meta2["class_names"] == list("abcd") and torch.equal(loaded.pos_embed, model.pos_embed)


def test_finetune_from_an_image_checkpoint(tmp_path):
    """model.pretrained: a 2-D (image) checkpoint with another head is inflated into the video model."""
    from videomamba.train.loop import build_model

    image = videomamba.create_model("videomamba_tiny", embed_dim=16, depth=2, img_size=16, patch_size=8,
                                    num_frames=1, num_classes=10, backend="torch")
    state = image.state_dict()
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"][:, :, 0]  # (D, 3, 8, 8) as published
    torch.save({"model": state}, tmp_path / "in1k.pth")
    spec = {"name": "videomamba_tiny", "kwargs": {"embed_dim": 16, "depth": 2, "img_size": 16, "patch_size": 8,
                                                  "num_frames": 4, "num_classes": 3, "backend": "torch"}}
    video = build_model(spec, str(tmp_path / "in1k.pth"), inflate="center")
    assert video.patch_embed.proj.weight.shape[2] == 1  # tubelet 1: the kernel is the image kernel
    assert torch.equal(video.patch_embed.proj.weight[:, :, 0], state["patch_embed.proj.weight"])
    assert torch.equal(video.layers[1].mixer.A_log, image.layers[1].mixer.A_log)
    assert video.head.out_features == 3
