"""`videomamba submit` without a cluster: entrypoints, addresses, the runtime_env, and what Ray's own
packaging would upload from this checkout with it (the job-level tests are in test_cluster_jobs.py)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from videomamba.cluster.submit import build_runtime_env, find_checkout, resolve_address, to_entrypoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command, expected",
    [
        (["--", "train", "--config", "configs/demo.yaml"], "python -m videomamba.cli train --config configs/demo.yaml"),
        (["videomamba", "tune", "--space", "s.yaml"], "python -m videomamba.cli tune --space s.yaml"),
        (["python", "pipelines/tune.py", "--set", "a=b c"], "python pipelines/tune.py --set 'a=b c'"),
        (["pipelines/tune.py", "-h"], "python pipelines/tune.py -h"),
        ("bash -c 'echo hi'", "bash -c 'echo hi'"),
    ],
)
def test_entrypoints(command, expected):
    assert to_entrypoint(command) == expected


def test_empty_command_is_an_error():
    with pytest.raises(ValueError, match="nothing to run"):
        to_entrypoint(["--"])


def test_address_resolution(monkeypatch):
    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_address() == "http://127.0.0.1:8265"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:8265")
    assert resolve_address() == "http://10.0.0.5:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "https://ray.example/")
    assert resolve_address() == "https://ray.example"
    assert resolve_address("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_runtime_env(tmp_path):
    env = build_runtime_env(ROOT, env=["MLFLOW_TRACKING_URI=http://10.0.0.5:5000", "A=1=2"],
                            base={"env_vars": {"PYTHONPATH": "extra", "B": "x"}, "pip": ["einops"]})
    assert env["working_dir"] == str(ROOT)
    assert env["env_vars"] == {"PYTHONPATH": f"platform{os.pathsep}extra", "B": "x",
                               "MLFLOW_TRACKING_URI": "http://10.0.0.5:5000", "A": "1=2"}
    assert env["pip"] == ["einops"]
    installed = build_runtime_env(ROOT, ship_package=False)
    assert "/platform/" in installed["excludes"] and "env_vars" not in installed
    with pytest.raises(FileNotFoundError, match="not a videomamba checkout"):
        build_runtime_env(tmp_path)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        build_runtime_env(ROOT, env=["novalue"])
    assert find_checkout(ROOT / "platform" / "videomamba" / "data") == ROOT


def test_the_upload_holds_the_package_and_none_of_the_local_state(tmp_path):
    """Ray's own packaging with our excludes, on a copy of the layout with local state in it."""
    from ray._private.runtime_env.packaging import create_package

    repo = tmp_path / "repo"
    files = [
        "platform/videomamba/__init__.py", "platform/videomamba/data/pipeline.py",  # package (incl. data/)
        "pipelines/train.py", "configs/demo.yaml", "pyproject.toml",
        "runs/mlflow.db", "mlruns/0/meta.yaml", "data/k400/a.mp4", ".venv/bin/python", ".git/HEAD",
        ".cuda_ext/big.tar.xz", "dist-cuda-sm90/x.whl", "platform/videomamba/__pycache__/x.pyc",
        "platform/videomamba_platform.egg-info/PKG-INFO",
    ]
    for f in files:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        (repo / f).write_text("x")
    env = build_runtime_env(repo)
    create_package(str(repo), tmp_path / "pkg.zip", include_gitignore=True, excludes=env["excludes"])
    shipped = {n for n in zipfile.ZipFile(tmp_path / "pkg.zip").namelist() if not n.endswith("/")}
    assert shipped == {"platform/videomamba/__init__.py", "platform/videomamba/data/pipeline.py",
                       "pipelines/train.py", "configs/demo.yaml", "pyproject.toml"}


def test_cli_parses_the_command_after_double_dash():
    from videomamba.cli import build_parser

    args = build_parser().parse_args(["submit", "--address", "http://127.0.0.1:1", "--env", "A=1", "--no-wait", "--",
                                      "train", "--config", "c.yaml", "--set", "x=1"])
    assert args.address == "http://127.0.0.1:1" and args.no_wait and args.env == ["A=1"]
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    assert command == ["train", "--config", "c.yaml", "--set", "x=1"]


def test_secrets_are_never_uploaded_even_when_not_git_ignored(tmp_path, monkeypatch, caplog):
    """.env, keys, .netrc, credentials folders: left out of the upload (Ray's own packaging), at any
    depth, although .gitignore does not list them; submit says what it left out."""
    from ray._private.runtime_env.packaging import create_package

    from videomamba.cluster import submit as submit_mod

    repo = tmp_path / "repo"
    keep = ["platform/videomamba/__init__.py", "platform/videomamba/keys.py", "configs/demo.yaml",
            "configs/env.yaml", "docs/credentials.md", ".gitignore"]
    secrets = [".env", "configs/.env.prod", "deploy/prod.env", "certs/server.pem", "certs/server.key", ".netrc",
               "pipelines/id_ed25519", "credentials/gcp.json", "credentials/aws/config",
               "platform/videomamba/.netrc", "sa-credentials.json"]
    for f in keep + secrets:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        (repo / f).write_text("x")
    (repo / ".gitignore").write_text("*.pyc\n")  # the secrets are not git-ignored
    env = build_runtime_env(repo)
    create_package(str(repo), tmp_path / "pkg.zip", include_gitignore=True, excludes=env["excludes"])
    shipped = {n for n in zipfile.ZipFile(tmp_path / "pkg.zip").namelist() if not n.endswith("/")}
    assert shipped == set(keep)

    assert submit_mod.secret_files(repo) == [
        ".env", ".netrc", "certs/server.key", "certs/server.pem", "configs/.env.prod", "credentials/ (2 files)",
        "deploy/prod.env", "pipelines/id_ed25519", "platform/videomamba/.netrc", "sa-credentials.json"]

    class _Client:  # the Jobs API, not reached: what submit sends is what counts
        def submit_job(self, **kwargs):
            self.kwargs = kwargs
            return "raysubmit_1"

    client = _Client()
    monkeypatch.setattr(submit_mod, "_client", lambda address: client)
    with caplog.at_level("WARNING", logger="videomamba.cluster.submit"):
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")  # `--env KEY`: the value from this environment
        outcome = submit_mod.submit(["train", "--config", "configs/demo.yaml"], working_dir=repo, wait=False,
                                    env=["MLFLOW_TRACKING_USERNAME=alice", "MLFLOW_TRACKING_PASSWORD"])
    assert "certs/server.pem" in outcome.left_out and set(submit_mod.SECRET_EXCLUDES) <= set(client.kwargs["runtime_env"]["excludes"])
    line = [r.getMessage() for r in caplog.records if "not uploaded" in r.getMessage()]
    assert len(line) == 1 and ".env, .netrc, certs/server.key" in line[0] and "credentials/ (2 files)" in line[0]
    # credentials travel as job environment variables, not files
    env_vars = client.kwargs["runtime_env"]["env_vars"]
    assert env_vars["MLFLOW_TRACKING_USERNAME"] == "alice" and env_vars["MLFLOW_TRACKING_PASSWORD"] == "pw"
