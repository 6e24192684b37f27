"""Training config: validation names the dotted field and fails before any Ray worker starts."""

from __future__ import annotations

import textwrap
import time

import pytest

from videomamba.train.config import ConfigError, flatten, load_config, parse_overrides

BASE = {"data": {"train_manifest": "/nonexistent/train.csv"}}


def _error(overrides, base=BASE) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides, base=base)
    return str(info.value)


def test_defaults_follow_the_published_recipe():
    cfg = load_config(None, [], base=BASE)
    assert cfg.objective.name == "supervised"
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas) == (2e-4, 0.1, (0.9, 0.999))
    assert {"A_log", "D", "A_b_log", "D_b", "pos_embed", "cls_token"} <= set(cfg.optim.no_weight_decay)


def test_overrides_are_parsed_as_yaml():
    assert parse_overrides(["a.b=1", "c=[1, 2]", "d=null", "e=x y"]) == [
        ("a.b", 1), ("c", [1, 2]), ("d", None), ("e", "x y")
    ]
    cfg = load_config(None, ["train.epochs=3", "model.overrides={depth: 2}", "train.ema={decay: 0.99}"], base=BASE)
    assert cfg.train.epochs == 3 and cfg.model.overrides.model_dump() == {"depth": 2} and cfg.train.ema.decay == 0.99


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.batchsize=8", "train.batchsize: unknown key"),
        ("train.batch_size=eight", "train.batch_size: Input should be a valid integer"),
        ("train.precision=fp8", "train.precision: Input should be 'auto', 'bf16', 'fp16' or 'fp32'"),
        ("objective.name=captioning", "expected tags: 'supervised'"),
        ("objective.label_smoothing=2", "objective.supervised.label_smoothing"),
        ("data.num_frame=8", "data.num_frames" if False else "data.num_frame: unknown key"),
        ("scaling.num_workers=0", "scaling.num_workers: Input should be greater than or equal to 1"),
    ],
)
def test_bad_values_name_the_field(override, expected):
    assert expected in _error([override])


def test_every_error_is_reported_at_once():
    msg = _error(["train.epochs=-1", "optim.lr=zero"])
    assert "train.epochs" in msg and "optim.lr" in msg


def test_malformed_override():
    assert "expected dotted.key=value" in _error(["train.epochs"])


def test_flatten_for_mlflow_params():
    flat = flatten(load_config(None, [], base=BASE))
    assert flat["optim.lr"] == 2e-4 and flat["data.train_manifest"] == "/nonexistent/train.csv"
    assert all(not isinstance(v, dict) or v == {} for v in flat.values())


def test_cli_fails_fast_without_starting_ray(tmp_path, capsys):
    import ray

    from videomamba.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(textwrap.dedent("""
        data: {train_manifest: x.csv}
        train: {epochs: 2, learning_rate: 0.1}
    """))
    was_initialized = ray.is_initialized()
    start = time.perf_counter()
    assert main(["train", "--config", str(cfg), "--set", "optim.layer_decay=1.5"]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert "train.learning_rate: unknown key" in err and "optim.layer_decay" in err
    assert ray.is_initialized() == was_initialized


def test_shipped_recipes_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    names = ["demo.yaml", "k400_videomamba_tiny_f8.yaml", "ssv2_videomamba_small_f8.yaml", "longform_videomamba_tiny_f64.yaml"]
    for name in names:
        cfg = load_config(root / name)
        assert cfg.data.num_frames >= 8, name


# -- the typed model section (issue 16) ---------------------------------------------------------
def test_model_section_types_scan_order_backend_and_checkpointing():
    from videomamba.models.scan_order import SCAN_ORDERS
    from videomamba.ops import BACKENDS

    cfg = load_config(None, ["model.scan_order=temporal_first", "model.backend=torch", "model.checkpoint_blocks=2",
                             "model.overrides={depth: 2, embed_dim: 16}"], base=BASE)
    spec = cfg.model.spec(cfg.data, num_classes=3)
    assert spec.name == "videomamba_tiny"
    assert {k: spec.kwargs[k] for k in ("scan_order", "backend", "use_checkpoint", "checkpoint_num", "depth",
                                         "num_classes")} == {"scan_order": "temporal_first", "backend": "torch",
                                                             "use_checkpoint": True, "checkpoint_num": 2, "depth": 2,
                                                             "num_classes": 3}
    assert flatten(cfg)["model.scan_order"] == "temporal_first" and "model.overrides.d_state" not in flatten(cfg)
    assert "use_checkpoint" not in load_config(None, [], base=BASE).model.spec(None, 3).kwargs  # off by default
    msg = _error(["model.scan_order=diagonal", "model.backend=cuda", "model.overrides.dept=2"])
    assert "model.scan_order: Input should be" in msg and all(s in msg for s in SCAN_ORDERS)
    assert "model.backend: Input should be" in msg and all(b in msg for b in BACKENDS)
    assert "model.overrides.dept: unknown key (did you mean depth?)" in msg
    assert "model.overrides.depth: Input should be a valid integer" in _error(["model.overrides.depth=deep"])
    assert "model.backnd: unknown key (did you mean backend?)" in _error(["model.backnd=torch"])
    assert "optim.lrr: unknown key (did you mean lr?)" in _error(["optim.lrr=1"])


def test_old_model_overrides_spelling_moves_to_the_typed_keys(caplog):
    """Configs (and checkpoints' recorded configs) written before the typed keys still load: each
    old key moves to its new place with a warning naming it; disagreeing spellings are refused."""
    old = {**BASE, "model": {"overrides": {"embed_dim": 16, "scan_order": "temporal_first", "backend": "torch",
                                           "use_checkpoint": True, "checkpoint_num": 3}}}
    with caplog.at_level("WARNING"):
        cfg = load_config(None, [], base=old)
    assert (cfg.model.scan_order, cfg.model.backend, cfg.model.checkpoint_blocks) == ("temporal_first", "torch", 3)
    assert cfg.model.overrides.model_dump() == {"embed_dim": 16}
    assert "model.overrides.scan_order is now model.scan_order" in caplog.text
    assert "model.overrides.backend is now model.backend" in caplog.text
    assert "model.overrides.use_checkpoint, model.overrides.checkpoint_num is now model.checkpoint_blocks" in caplog.text
    assert load_config(None, ["model.overrides.backend=triton"], base=BASE).model.backend == "triton"  # --set too
    off = {**BASE, "model": {"overrides": {"use_checkpoint": False, "checkpoint_num": 3}}}
    assert load_config(None, [], base=off).model.checkpoint_blocks == 0
    msg = _error(["model.backend=torch", "model.overrides.backend=triton"])
    assert "model.overrides.backend: the old spelling of model.backend ('triton') disagrees" in msg


def test_model_spec_builds_and_reads_old_checkpoint_metadata():
    import torch

    from videomamba.models.spec import ModelSpec

    kwargs = {"embed_dim": 16, "depth": 2, "img_size": 16, "patch_size": 8, "num_frames": 4, "num_classes": 2}
    old_meta = {"model": {"name": "videomamba_tiny", "kwargs": {**kwargs, "scan_order": "temporal_first"}},
                "class_names": ["a", "b"]}  # as checkpoints written before ModelSpec record it
    spec = ModelSpec.from_meta(old_meta)
    assert spec == ModelSpec.from_meta(old_meta["model"]) and spec.to_meta() == old_meta["model"]
    model = spec.build()
    assert model.scan_order == "temporal_first" and model.depth == 2
    torch.manual_seed(0)
    again = spec.build(model.state_dict(), strict=True)
    assert torch.equal(again.head.weight, model.head.weight)
    assert spec.replace(depth=3).kwargs["depth"] == 3 and spec.kwargs["depth"] == 2  # a value: copies
    with pytest.raises(ValueError, match="no model name"):
        ModelSpec.from_meta({"config": {}})


def test_resuming_a_run_logged_with_the_old_spelling_is_not_a_change():
    from videomamba.train.launcher import resume_changes

    old = {"model.overrides.scan_order": "temporal_first", "train.epochs": "2"}
    assert resume_changes(old, {"model.scan_order": "temporal_first", "train.epochs": 2}) == {}
    assert resume_changes(old, {"model.scan_order": "spatial_first"}) == {"model.scan_order": (None, "spatial_first")}
