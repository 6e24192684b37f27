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
    assert cfg.train.epochs == 3 and cfg.model.overrides == {"depth": 2} and cfg.train.ema.decay == 0.99


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
