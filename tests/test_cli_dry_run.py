"""``videomamba train --dry-run`` runs the real run's preflight without Ray (issue 19 §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from test_cli_errors import synth, tiny_train_config  # noqa: F401 - fixture
from videomamba.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path, synth, monkeypatch):  # noqa: F811
    monkeypatch.chdir(synth.parent)  # the config's relative paths: data/...
    path = tmp_path / "c.yaml"

    def write(**changes) -> str:
        raw = tiny_train_config("data")
        for dotted, value in changes.items():
            node = raw
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    return write


def _dry_run(path: str, capsys, *extra: str) -> tuple[int, str, str]:
    from unittest import mock

    import ray

    # Ray must not start (another test of this process may have started it already: patch, not ask)
    with mock.patch.object(ray, "init", side_effect=AssertionError("--dry-run started Ray")):
        code = main(["train", "--config", path, "--dry-run", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_dry_run_passes_a_good_config(config, capsys):
    code, out, err = _dry_run(config(), capsys)
    assert code == 0, err
    assert "preflight passed" in out and "train: 2 videos" in out and "parameters" in out
    assert yaml.safe_load(out)["data"]["classes_file"].startswith("/")  # printed as the run records it


@pytest.mark.parametrize("change, expected", [
    ({"model.overrides.embed_dm": 32}, "model.overrides.embed_dm: unknown key (did you mean embed_dim?)"),
    ({"model.scan_order": "diagonal"}, "model.scan_order: Input should be 'spatial_first', 'temporal_first'"),
    ({"model.backend": "cuda"}, "model.backend: Input should be 'auto', 'torch', 'triton'"),
    ({"model.overrides.scan_order": "diagonal"}, "model.scan_order: Input should be"),  # old spelling: moved, checked
    ({"model.overrides.patch_size": 7}, "not divisible by patch_size"),
    ({"data.val_manifest": "data/nope.csv"}, "data.val_manifest: data/nope.csv: file not found"),
    ({"data.path_prefix": "/nowhere"}, "data.train_manifest: "),
    ({"model.pretrained": "data/weights.pth"}, "model.pretrained: data/weights.pth: no such file"),
])
def test_dry_run_fails_like_the_real_run(config, capsys, change, expected):
    code, _, err = _dry_run(config(**change), capsys)
    assert code == 2 and expected in err and "Traceback" not in err, err


def test_dry_run_refuses_recipe_placeholders(capsys):
    code, _, err = _dry_run(str(ROOT / "configs" / "k400_videomamba_tiny_f8.yaml"), capsys)
    assert code == 2
    assert "data.train_manifest: '/path/to/kinetics400/train.csv' is a placeholder" in err
    assert "model.pretrained: '/path/to/" in err


def test_real_run_uses_the_same_preflight(config, monkeypatch):
    """run_training refuses the same config before Ray starts."""
    import ray

    from videomamba.train.config import ConfigError, load_config
    from videomamba.train.launcher import run_training

    cfg = load_config(config(**{"model.overrides.patch_size": 7, "run.root": "runs-test"}))
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started before the preflight"))
    with pytest.raises(ConfigError, match="not divisible by patch_size"):
        run_training(cfg)
