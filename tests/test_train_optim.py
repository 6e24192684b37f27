"""Optimizer param groups (weight-decay exclusions, layer-wise lr decay) and the schedule."""

from __future__ import annotations

import math

import pytest
import torch

import videomamba
from videomamba.objectives import SupervisedConfig, build_objective
from videomamba.train.config import OptimSection, ScheduleSection
from videomamba.train.optim import build_optimizer, build_scheduler, layer_id, param_groups

DEPTH = 3


@pytest.fixture(scope="module")
def model():
    return videomamba.create_model(
        "videomamba_tiny", embed_dim=32, depth=DEPTH, img_size=32, num_frames=2, num_classes=5, backend="torch"
    )


def _by_name(groups):
    return {n: g for g in groups for n in g["param_names"]}


def test_exclusions(model):
    groups = _by_name(param_groups(model, 0.1))
    for name in ("pos_embed", "cls_token", "temporal_pos_embedding", "norm_f.weight", "head.bias",
                 "patch_embed.proj.bias", "layers.0.norm.weight", "layers.1.mixer.A_log", "layers.1.mixer.D",
                 "layers.2.mixer.A_b_log", "layers.2.mixer.D_b", "layers.0.mixer.conv1d.bias"):
        assert groups[name]["weight_decay"] == 0.0, name
    for name in ("patch_embed.proj.weight", "head.weight", "layers.0.mixer.in_proj.weight",
                 "layers.2.mixer.x_proj_b.weight", "layers.1.mixer.out_proj.weight"):
        assert groups[name]["weight_decay"] == 0.1, name
    assert len(groups) == sum(1 for _ in model.parameters())


def test_layer_decay(model):
    decay = 0.5
    groups = _by_name(param_groups(model, 0.1, layer_decay=decay))
    top = DEPTH + 1
    assert groups["head.weight"]["lr_scale"] == 1.0 and groups["norm_f.weight"]["lr_scale"] == 1.0
    assert groups["cls_token"]["lr_scale"] == decay**top and groups["patch_embed.proj.weight"]["lr_scale"] == decay**top
    for i in range(DEPTH):
        assert groups[f"layers.{i}.mixer.in_proj.weight"]["lr_scale"] == pytest.approx(decay ** (top - i - 1))
    assert layer_id("layers.11.mixer.D", 24) == 12 and layer_id("model.layers.3.norm.weight", 24) == 4


def test_objective_prefix_and_scheduler(model):
    objective = build_objective(SupervisedConfig(), model)
    cfg = OptimSection(lr=1e-3, layer_decay=0.5, reference_batch_size=None)
    opt = build_optimizer(objective, cfg, lr=cfg.lr, model_prefix="model.")
    groups = _by_name(opt.param_groups)
    assert groups["model.layers.0.mixer.A_log"]["weight_decay"] == 0.0
    assert groups["model.head.weight"]["lr_scale"] == 1.0
    sched = build_scheduler(opt, ScheduleSection(warmup_epochs=1, warmup_lr=0.0, min_lr=0.0), steps_per_epoch=10, epochs=5)
    head = groups["model.head.weight"]
    lrs = []
    for step in range(1, 51):
        sched.step_update(step)
        lrs.append(head["lr"])
    assert lrs[4] == pytest.approx(0.5e-3)  # linear warm-up over 10 updates
    assert max(lrs) == pytest.approx(1e-3, rel=1e-6) and lrs[-1] == pytest.approx(0.0, abs=1e-9)
    # cosine after warm-up; embeddings at layer_decay**(depth+1) of the head's lr
    assert lrs[29] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 20 / 40)), rel=1e-6)
    assert groups["model.cls_token"]["lr"] == pytest.approx(head["lr"] * 0.5 ** (DEPTH + 1))


def test_precision_choice():
    from videomamba.precision import resolve_precision

    cpu = resolve_precision("auto", torch.device("cpu"))
    assert cpu.name == "fp32" and not cpu.scaler.is_enabled()
    assert resolve_precision("fp16", torch.device("cpu")).name == "fp32"
