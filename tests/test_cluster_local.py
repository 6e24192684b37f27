"""LocalHead's port allocation (no Ray started)."""

from __future__ import annotations


def test_local_head_never_gives_two_components_the_same_port(monkeypatch, tmp_path):
    from support import local_head as local

    # the OS may hand back a just-released port: free_port() returning repeats must not reach Ray
    ports = iter([5000, 5000, 5001, 5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009, 5010, 5011])
    monkeypatch.setattr(local, "free_port", lambda: next(ports))
    head = local.LocalHead(num_cpus=1, temp_dir=tmp_path)
    started = []
    monkeypatch.setattr(local.subprocess, "Popen", lambda cmd, **kw: started.append(cmd))
    head._start(["--head"], "head")
    given = [head.gcs_port, head.dashboard_port] + [int(a.split("=")[1]) for a in started[0] if a.endswith(
        tuple(str(p) for p in range(5000, 5012))) and a.startswith("--") and "port" in a]
    assert head.gcs_port == 5000 and head.dashboard_port == 5001
    assert len(given) == 2 + len(local._PORT_FLAGS) and len(set(given)) == len(given)
