"""``data prepare``: transcoding, keyframes, resize, trim, bad input, resume, the Ray Data job."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from support.bad_videos import add_bad_entries

from videomamba.data.decode import decode_clips
from videomamba.data.manifest import read_manifest
from videomamba.data.prepare import PrepareSettings, output_name, prepare_dataset, prepare_one, transcode
from videomamba.data.synth import render_video, write_mp4

av = pytest.importorskip("av")
pytestmark = pytest.mark.skipif("libx264" not in av.codecs_available, reason="PyAV without libx264")


def _video(path, frames=40, size=64, fps=8, label=0, seed=0):
    rng = np.random.default_rng(seed)
    write_mp4(str(path), render_video(label, frames, size, 2, rng), fps=fps)
    return str(path)


def _stream_info(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        keys = [f.key_frame for f in c.decode(s)]  # display order
        return s.codec_context.width, s.codec_context.height, keys, [x.type for x in c.streams]


def _row(src, out, start=None, end=None):
    return {"source": src, "out": out, "start_sec": start, "end_sec": end}


def test_transcode_resizes_sets_keyframes_and_never_upscales(tmp_path):
    src = _video(tmp_path / "a.mp4", frames=40, size=64)
    info = transcode(src, str(tmp_path / "o.mp4"), PrepareSettings(short_side=32, keyint=4))
    w, h, keys, streams = _stream_info(str(tmp_path / "o.mp4"))
    assert (w, h) == (32, 32) and info["out_frames"] == 40 and streams == ["video"]
    at = [i for i, k in enumerate(keys) if k]
    assert set(range(0, 40, 4)) <= set(at)  # a keyframe at least every 4 frames (x264 may add one at a cut)
    transcode(src, str(tmp_path / "big.mp4"), PrepareSettings(short_side=128, keyint=8))
    assert _stream_info(str(tmp_path / "big.mp4"))[:2] == (64, 64)  # never upscaled
    frames, vinfo = decode_clips(str(tmp_path / "o.mp4"), lambda i: np.arange(i.num_frames))
    assert frames.shape == (40, 32, 32, 3) and vinfo.num_frames == 40


def _x264_info(path) -> bytes:
    """The encoder settings x264 writes into the stream (an SEI text: "... cabac=1 ... bframes=3 ...")."""
    data = open(path, "rb").read()
    at = data.find(b"x264 - core")
    assert at >= 0, "no x264 settings string in the file"
    return data[at:at + 2000]


def test_transcode_defaults_fastdecode_without_b_frames(tmp_path):
    """The defaults chosen by benchmarks/prepare_per_core.md: tune fastdecode (no CABAC, no
    deblocking), no B-frames; tune/bframes None keep x264's defaults (and the old fingerprint)."""
    src = _video(tmp_path / "a.mp4", frames=24, size=64)
    transcode(src, str(tmp_path / "fast.mp4"), PrepareSettings(short_side=32))
    info = _x264_info(str(tmp_path / "fast.mp4"))
    assert b"cabac=0" in info and b"deblock=0" in info and b"bframes=0" in info
    transcode(src, str(tmp_path / "plain.mp4"), PrepareSettings(short_side=32, tune=None, bframes=None))
    info = _x264_info(str(tmp_path / "plain.mp4"))
    assert b"cabac=1" in info and b"bframes=0" not in info
    old = PrepareSettings(tune=None, bframes=None).fingerprint()
    assert "tune" not in old and "bframes" not in old  # outputs of earlier versions are kept on resume
    assert '"tune": "fastdecode"' in PrepareSettings().fingerprint()


def test_transcode_trim_and_fps_cap(tmp_path):
    src = _video(tmp_path / "a.mp4", frames=80, size=32, fps=20)  # 4 s at 20 fps
    info = transcode(src, str(tmp_path / "o.mp4"), PrepareSettings(short_side=0, keyint=4, max_fps=10),
                     start=1.0, end=3.0)
    assert info["out_fps"] == 10 and info["out_frames"] == 20  # 2 s at 10 fps
    assert info["out_duration"] == pytest.approx(2.0)
    # the content is the window: the first written frame is source frame 20
    src_frames, _ = decode_clips(src, lambda i: np.array([20, 22]))
    out_frames, _ = decode_clips(str(tmp_path / "o.mp4"), lambda i: np.array([0, 1]))
    assert np.abs(src_frames.astype(int) - out_frames.astype(int)).mean() < 8


def test_prepare_one_bad_sources_fail_without_leaving_files(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,caption\n")
    bad = add_bad_entries(str(manifest))
    out_dir = tmp_path / "out"
    for rel, reason in bad.items():
        res = prepare_one(_row(str(tmp_path / rel), f"videos/{os.path.basename(rel)}"), out_dir=str(out_dir),
                          settings=PrepareSettings(short_side=32))
        if reason == "short":
            assert res["status"] == "written"
            continue
        assert res["status"] == "failed", rel
        assert res["reason"] in {"missing", "empty", "unreadable", "corrupt"}, res
        leftovers = [p for p in (out_dir / "videos").glob("*")] if (out_dir / "videos").exists() else []
        assert not [p for p in leftovers if os.path.basename(rel) in p.name], leftovers


def test_prepare_one_resumes_and_redoes_on_new_settings(tmp_path):
    src = _video(tmp_path / "a.mp4")
    s = PrepareSettings(short_side=32, keyint=4)
    first = prepare_one(_row(src, "videos/a.mp4"), out_dir=str(tmp_path / "o"), settings=s)
    mtime = os.stat(tmp_path / "o/videos/a.mp4").st_mtime_ns
    again = prepare_one(_row(src, "videos/a.mp4"), out_dir=str(tmp_path / "o"), settings=s)
    assert (first["status"], again["status"]) == ("written", "kept")
    assert os.stat(tmp_path / "o/videos/a.mp4").st_mtime_ns == mtime
    assert again["out_bytes"] == first["out_bytes"]
    other = prepare_one(_row(src, "videos/a.mp4"), out_dir=str(tmp_path / "o"), settings=PrepareSettings(short_side=48))
    assert other["status"] == "written" and _stream_info(str(tmp_path / "o/videos/a.mp4"))[:2] == (48, 48)
    # an output without its sidecar (a run killed between the two renames) is not trusted
    os.remove(tmp_path / "o/videos/a.mp4.json")
    assert prepare_one(_row(src, "videos/a.mp4"), out_dir=str(tmp_path / "o"), settings=s)["status"] == "written"


def test_prepare_one_failure_mid_write_leaves_no_finished_file(tmp_path, monkeypatch):
    import videomamba.data.prepare as prep

    src = _video(tmp_path / "a.mp4")

    def broken(source, dst, settings, start=None, end=None):
        with open(dst, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(prep, "transcode", broken)
    res = prepare_one(_row(src, "videos/a.mp4"), out_dir=str(tmp_path / "o"), settings=PrepareSettings())
    assert res["status"] == "failed" and "disk full" in res["detail"]
    assert os.listdir(tmp_path / "o/videos") == []


def test_output_names_keep_dirs_and_never_collide(tmp_path):
    a = output_name(str(tmp_path / "cls/x.avi"), None, None, str(tmp_path))
    b = output_name(str(tmp_path / "cls/x.mp4"), None, None, str(tmp_path))
    c = output_name(str(tmp_path / "cls/x.mp4"), 1.0, 2.5, str(tmp_path))
    assert a.startswith("videos/cls/x.") and a.endswith(".mp4") and len({a, b, c}) == 3
    assert "_1-2.5." in c


@pytest.mark.slow
def test_prepare_dataset_ray_job(tmp_path, ray_local):
    root = tmp_path / "src"
    (root / "cls").mkdir(parents=True)
    rows = [("cls/a.mp4", "walk", "", "", "a person walks|walking"), ("cls/b.mp4", "run", "1", "3", "runs"),
            ("cls/b.mp4", "run", "", "", "b whole")]
    _video(root / "cls/a.mp4", frames=24, size=64, seed=1)
    _video(root / "cls/b.mp4", frames=40, size=64, seed=2)
    (root / "classes.txt").write_text("walk\nrun\n")
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "start_sec", "end_sec", "caption"])
        w.writerows(rows)
        w.writerow(["cls/missing.mp4", "walk", "", "", "gone"])
    out = tmp_path / "prepared"
    settings = PrepareSettings(short_side=32, keyint=4)
    rep = prepare_dataset(str(root / "train.csv"), str(out), settings, classes_file=str(root / "classes.txt"),
                          progress=False)
    assert (rep.videos, rep.written, rep.failed, rep.rows, rep.rows_kept) == (4, 3, 1, 4, 3)
    assert rep.failures[0]["reason"] == "missing" and rep.failures[0]["lines"] == [5]
    assert json.loads((out / "prepare_report.json").read_text())["failed"] == 1
    assert "missing.mp4" in (out / "prepare_report.md").read_text()
    new = read_manifest(str(out / "train.csv"), classes_file=str(out / "classes.txt"))
    old = read_manifest(str(root / "train.csv"), classes_file=str(root / "classes.txt"))[:3]
    assert [(r.label, r.captions) for r in new] == [(r.label, r.captions) for r in old]
    assert all(r.start_sec is None and r.end_sec is None for r in new)  # trimmed: windows are in the files
    assert all(p.startswith(str(out / "videos/cls/")) for p in (r.path for r in new))
    _, info = decode_clips(new[1].path, lambda i: np.array([0]))
    assert info.num_frames == 16 and (info.width, info.height) == (32, 32)  # 2 s of 8 fps
    again = prepare_dataset(str(root / "train.csv"), str(out), settings, classes_file=str(root / "classes.txt"),
                            progress=False)
    assert (again.written, again.kept, again.failed) == (0, 3, 1)
    with pytest.raises(RuntimeError, match="1 of 4 videos failed"):
        prepare_dataset(str(root / "train.csv"), str(out), settings, classes_file=str(root / "classes.txt"),
                        progress=False, max_failed_frac=0.1)
