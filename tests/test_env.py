"""``videomamba.env``: the one probe of versions, devices, git commit and CPU/GPU model."""

from __future__ import annotations

import re

from videomamba import env


def test_git_commit_forms(monkeypatch, tmp_path):
    monkeypatch.delenv(env.COMMIT_ENV, raising=False)
    full = env.git_commit()
    if full != "unknown":  # a checkout (CI clones with .git)
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", full), full
        short = env.git_commit(short=True, dirty=False, env_var="GIT_COMMIT", unknown=None)
        assert full.startswith(short) and "-" not in short
    monkeypatch.setenv(env.COMMIT_ENV, "abc123-dirty")  # set by `videomamba submit` for jobs without .git
    assert env.git_commit() == "abc123-dirty"
    assert env.git_commit(tmp_path) == "unknown"  # an explicit path is asked, not the variable
    assert env.git_commit(tmp_path, unknown=None) is None


def test_versions_devices_and_cpu():
    versions = env.versions()
    assert versions["torch"] and versions["python"] and set(env.DISTRIBUTIONS) <= set(versions)
    assert env.module_version("torch").startswith(versions["torch"])
    assert env.module_version("no_such_module_here") is None
    dev = env.devices()
    assert dev["cpu_count"] >= 1 and isinstance(dev["gpus"], list)
    assert env.cpu_model() and env.cpu_description().endswith(" cores")
    tv = env.torch_versions()
    assert list(tv) == ["python", "torch", "cuda", "cudnn", "triton", "mamba_ssm", "causal_conv1d"]
