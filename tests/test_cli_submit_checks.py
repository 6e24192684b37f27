"""``videomamba submit`` against clusters a newcomer meets (issue 19 §7): token authentication
says what to set, a head whose ``python`` lacks the project fails before the job naming
``--python``, and the job learns the local git commit (``.git`` is not shipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from videomamba.cli import main

ROOT = Path(__file__).resolve().parents[1]


class FakeJobs:
    """The JobSubmissionClient calls ``submit`` makes; the probe job ends with ``probe_logs``."""

    def __init__(self, probe_ok: bool = True, probe_logs: str = ""):
        self.submitted: list[dict] = []
        self.probe_ok, self.probe_logs = probe_ok, probe_logs

    def submit_job(self, **kwargs):
        self.submitted.append(kwargs)
        return f"job-{len(self.submitted)}"

    def _is_probe(self, job_id):
        return "videomamba-probe-ok" in self.submitted[int(job_id.split("-")[1]) - 1]["entrypoint"]

    def get_job_status(self, job_id):
        return "SUCCEEDED" if not self._is_probe(job_id) or self.probe_ok else "FAILED"

    def get_job_logs(self, job_id):
        return self.probe_logs


def _submit(monkeypatch, client, *extra):
    from videomamba.cluster import submit

    monkeypatch.setattr(submit, "_client", lambda address: client if not callable(client) else client(address))
    monkeypatch.setattr(submit, "_PROBED", set())
    return main(["submit", "--address", "http://127.0.0.1:1", "--working-dir", str(ROOT), "--no-wait", *extra,
                 "--", "train", "--config", "configs/demo.yaml"])


def test_token_authentication_says_what_to_set(monkeypatch, capsys):
    from ray.exceptions import AuthenticationError

    def refuse(address):
        raise AuthenticationError("Authentication required: Unauthorized\n\nToken authentication is enabled ...")

    assert _submit(monkeypatch, refuse) == 2
    err = capsys.readouterr().err
    assert "requires token authentication" in err and "RAY_AUTH_TOKEN" in err and "Traceback" not in err


def test_a_head_without_the_project_environment_names_python(monkeypatch, capsys):
    client = FakeJobs(probe_ok=False, probe_logs="Traceback ...\nModuleNotFoundError: No module named 'torch'\n")
    assert _submit(monkeypatch, client, "--python", "python3") == 2
    err = capsys.readouterr().err
    assert "`python3` on the cluster cannot import 'torch'" in err and "--python /path/to/env/bin/python" in err
    assert len(client.submitted) == 1  # the real job was never submitted


def test_the_job_gets_the_git_commit_after_a_passing_probe(monkeypatch, capsys):
    from videomamba.env import git_commit

    client = FakeJobs(probe_ok=True, probe_logs="videomamba-probe-ok /env/bin/python 2.14.1 2.60.0\n")
    assert _submit(monkeypatch, client) == 0
    probe, job = client.submitted
    assert probe["entrypoint"].startswith("python -c ") and job["entrypoint"].startswith("python -m videomamba.cli train")
    commit = job["runtime_env"]["env_vars"]["VIDEOMAMBA_GIT_COMMIT"]
    assert commit == git_commit(ROOT) and job["metadata"]["git_commit"] == commit
    monkeypatch.setenv("VIDEOMAMBA_GIT_COMMIT", "abc123-dirty")  # what the job's tracking then records
    assert git_commit() == "abc123-dirty"
    assert _submit(monkeypatch, client, "--no-probe") == 0 and len(client.submitted) == 3  # no probe
