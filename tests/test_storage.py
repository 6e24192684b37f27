"""``videomamba.storage`` (local paths and URIs in one place), the run-directory layout read through it
(``videomamba.checkpoints.latest_checkpoint``) and the one Ray start-up (``cluster.connect.init_ray``)."""

from __future__ import annotations

import pytest

from videomamba import storage


@pytest.fixture(params=["local", "file-uri"])
def root(request, tmp_path):
    return str(tmp_path) if request.param == "local" else f"file://{tmp_path}"


def test_round_trip_bytes_json_exists_and_listing(root, tmp_path):
    path = storage.join(root, "a", "b", "x.bin")
    assert not storage.exists(path) and storage.read_json_or_none(storage.join(root, "none.json")) is None
    assert storage.write_bytes(path, b"\x00\x01video") == path  # parents created
    assert storage.read_bytes(path) == b"\x00\x01video" and storage.exists(path) and storage.is_file(path)
    assert (tmp_path / "a" / "b" / "x.bin").read_bytes() == b"\x00\x01video"  # where a local reader finds it
    info = {"created": 1.5, "names": ["a", "b"], "nested": {"k": None}}
    storage.write_json(storage.join(root, "run", "info.json"), info)
    assert storage.read_json(storage.join(root, "run", "info.json")) == info
    assert storage.read_json_or_none(storage.join(root, "run", "info.json")) == info
    assert storage.exists(storage.join(root, "run")) and not storage.is_file(storage.join(root, "run"))
    assert storage.child_dirs(root) == ["a", "run"] and storage.child_dirs(storage.join(root, "missing")) == []
    storage.write_bytes(storage.join(root, "t.txt"), "\ufeffname\n".encode())
    assert storage.read_text(storage.join(root, "t.txt")) == "name\n"  # a byte-order mark dropped


def test_latest_child_by_creation_time_among_matches(root):
    for name, created, kind in [("exp-a", 3.0, "x"), ("exp-b", 5.0, "y"), ("exp-c", 4.0, "x"), ("other", 9.0, "x")]:
        storage.write_json(storage.join(root, name, "info.json"), {"created": created, "kind": kind})
    storage.write_bytes(storage.join(root, "no-info", "f"), b"")  # a directory without info: ignored
    assert storage.latest_child(root, "info.json") == "other"
    assert storage.latest_child(root, "info.json", lambda name, info: name.startswith("exp-")) == "exp-b"
    assert storage.latest_child(root, "info.json", lambda name, info: info["kind"] == "x" and name != "other") == "exp-c"
    assert storage.latest_child(storage.join(root, "missing"), "info.json") is None


def test_normalize_and_unsupported_schemes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.normalize("runs/ray") == (tmp_path / "runs" / "ray").as_posix()
    assert storage.normalize(f"file://{tmp_path}/x") == (tmp_path / "x").as_posix()
    assert storage.normalize("s3://bucket/runs") == "s3://bucket/runs"
    assert storage.join_prefix("s3://bucket/videos", "a.mp4") == "s3://bucket/videos/a.mp4"
    assert storage.join_prefix("/data", "/abs/a.mp4") == "/abs/a.mp4"
    with pytest.raises(storage.UnsupportedURIError, match="https://"):
        storage.read_bytes("https://example.com/a.mp4")


def test_latest_checkpoint_of_a_run_directory(root):
    from videomamba import checkpoints

    run = storage.join(root, "run")
    assert checkpoints.latest_checkpoint(run) is None
    for epoch in (0, 1, 2):
        storage.write_json(storage.join(run, checkpoints.checkpoint_dir_name(epoch), checkpoints.META_FILE), {"epoch": epoch})
    storage.write_bytes(storage.join(run, checkpoints.checkpoint_dir_name(3), checkpoints.MODEL_FILE), b"")  # incomplete
    epoch, path = checkpoints.latest_checkpoint(run)
    assert (epoch, path) == (2, storage.join(run, "epoch_0002"))


@pytest.mark.parametrize("address", [None, "ray://head:10001"])
def test_init_ray_starts_or_joins_once(monkeypatch, address):
    import ray

    from videomamba.cluster.connect import init_ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    if address:
        monkeypatch.setenv("RAY_ADDRESS", address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert init_ray(4.5, configure_logging=False) is True
    assert init_ray(100) is False  # connected already: nothing started behind the caller's back
    assert len(calls) == 1
    if address:
        assert calls[0]["address"] == address and "num_cpus" not in calls[0]
    else:
        assert calls[0]["num_cpus"] == 5 and calls[0]["include_dashboard"] is False
        # no dashboard, no state API: Ray Train's placement-group cleaner is quieted in every worker
        hook = calls[0]["runtime_env"]["worker_process_setup_hook"]
        module, name = hook.rsplit(".", 1)
        import importlib
        import logging

        getattr(importlib.import_module(module), name)()
        cleaner = logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner")
        assert cleaner.getEffectiveLevel() == logging.ERROR
    assert calls[0]["configure_logging"] is False
