"""Awkward inputs of real datasets (issue 13): damaged files, variable frame rate windows,
rotation metadata, windows beyond the video, manifest encodings, UCF101 split files.
Every input is a tiny video written here (PyAV); nothing starts Ray."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest

from videomamba.data import pipeline
from videomamba.data.check import check_row
from videomamba.data.config import DataConfig
from videomamba.data.decode import DecodeError, decode_clips, read_info
from videomamba.data.manifest import ManifestError, load_classes, read_manifest, to_columns
from videomamba.data.synth import pick_codec


def _write(path, frames, fps=30, pts=None, time_base=None, options=None):
    import av

    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream(pick_codec(), rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        if time_base is not None:
            s.time_base = s.codec_context.time_base = time_base
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], time_base
            c.mux(s.encode(f))
        c.mux(s.encode())
    return str(path)


def _grey(value, w=64, h=48):
    return np.full((h, w, 3), value, np.uint8)


@pytest.fixture
def skips(monkeypatch):
    """What the pipeline records (reason per (epoch, manifest row)), without a Ray ledger."""
    seen = []
    monkeypatch.setattr(pipeline, "record_skip", lambda scope, split, epoch, index, path, reason, detail="":
                        seen.append((epoch, index, reason)))
    return seen


def _rows(manifest, **kw):
    return to_columns(read_manifest(str(manifest), **kw))


# ---- 1. damaged (truncated) files: the same treatment every time ---------------------------------
@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    root = tmp_path_factory.mktemp("trunc")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(90)]  # noisy: big frames
    ok = _write(root / "ok.mp4", frames, options={"movflags": "+faststart"})  # index first, like a download
    data = open(ok, "rb").read()
    (root / "trunc.mp4").write_bytes(data[: int(len(data) * 0.45)])
    (root / "m.csv").write_text("path,label\ntrunc.mp4,0\n")
    return root


def test_truncated_file_decodes_up_to_its_last_good_frame_whatever_is_picked(truncated):
    path = str(truncated / "trunc.mp4")
    infos = []
    for picked in ([4, 14, 24, 33], [0, 20, 39], [39], [30, 35]):  # head only, or reaching the damage
        frames, info = decode_clips(path, lambda i, p=picked: np.minimum(p, i.num_frames - 1))
        assert frames.shape[1:] == (48, 64, 3)
        infos.append((info.num_frames, info.truncated))
    assert len(set(infos)) == 1  # today: 40 frames (head picks) or DecodeError 'corrupt' (tail picks)
    good, lost = infos[0]
    assert 0 < good < 90 and good + lost == 90  # the index announces 90 frames


def test_truncated_file_is_kept_and_counted_in_every_epoch(truncated, skips):
    cfg = DataConfig(train_manifest=str(truncated / "m.csv"), num_frames=8, img_size=32, randaugment=None,
                     decode_short_side=0, hflip=False)
    columns = _rows(truncated / "m.csv")
    for epoch in range(6):
        out = pipeline.decode_batch(pipeline.take_rows(columns, np.arange(1), epoch), cfg=cfg, split="train",
                                    seed=0, scope="t")
        assert len(out["video"]) == 1, f"epoch {epoch}: row dropped"
    assert skips == [(e, 0, "truncated") for e in range(6)]


def test_predict_warns_on_a_damaged_file(truncated, monkeypatch):
    import torch

    from videomamba.inference import predict

    class Mean(torch.nn.Module):  # stands in for a trained model: logits from the clip's mean colour
        num_classes = 2

        def forward(self, video):  # (B, 3, T, S, S)
            return video.mean(dim=(2, 3, 4))[:, :2]

    data = dict(num_frames=4, img_size=32, randaugment=None, test_num_clips=1, test_num_crops=1)
    meta = {"config": {"data": data}, "class_names": ["a", "b"]}
    monkeypatch.setattr(predict, "load_trained_model", lambda ckpt, device, **kw: (Mean(), meta))
    ok, trunc = predict.predict_videos("ckpt", [str(truncated / "ok.mp4"), str(truncated / "trunc.mp4")], device="cpu")
    assert ok.top is not None and ok.warning is None
    assert trunc.top is not None and "damaged file" in trunc.warning and "of the 90 frames" in trunc.warning


# ---- 2. variable frame rate: the window is chosen by the frames' own timestamps -------------------
def test_vfr_window_selects_by_timestamps(tmp_path, skips):
    # frames 0-9 every 200 ms (0.0 .. 1.8 s), frames 10-69 every 33 ms (2.0 .. 3.97 s); frame i is grey 20 + 3i
    pts = [200 * i for i in range(10)] + [2000 + round(1000 * k / 30) for k in range(60)]
    _write(tmp_path / "vfr.mp4", [_grey(20 + 3 * i) for i in range(70)], pts=pts, time_base=Fraction(1, 1000))
    (tmp_path / "m.csv").write_text("path,label,start_sec,end_sec\nvfr.mp4,0,2.0,3.0\n")
    cfg = DataConfig(val_manifest=str(tmp_path / "m.csv"), num_frames=8, img_size=32, randaugment=None,
                     mean=(0, 0, 0), std=(1 / 255,) * 3, val_num_clips=1, val_num_crops=1)
    out = pipeline.decode_batch(pipeline.take_rows(_rows(tmp_path / "m.csv"), np.arange(1), 0), cfg=cfg,
                                split="val", seed=0, scope="t")
    source = (out["video"][0, 0, :, 16, 16] - 20) / 3  # source frame index of each clip frame
    assert np.all((source > 9.5) & (source < 39.5)), source  # inside [2.0 s, 3.0 s): frames 10..39
    assert source[-1] - source[0] > 20  # spread over the window
    assert skips == []


# ---- 3. rotation metadata: frames in display orientation ------------------------------------------
def _rotated(tmp_path, width, height, degrees):
    """Left half red, right half blue, top half with green; display matrix rotating ``degrees``
    clockwise in the track header (what phones write)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2, 0] = 255
    img[:, width // 2 :, 2] = 255
    img[: height // 2, :, 1] = 128
    plain = _write(tmp_path / f"p{width}.mp4", [img] * 8, fps=8)
    data = bytearray(open(plain, "rb").read())
    i = data.find(b"tkhd")
    off = i - 4 + (48 if data[i + 4] == 0 else 60)
    c, s = round(math.cos(math.radians(degrees))), round(math.sin(math.radians(degrees)))
    data[off : off + 36] = struct.pack(">9i", c << 16, s << 16, 0, -s << 16, c << 16, 0, 0, 0, 1 << 30)
    path = tmp_path / f"r{width}_{degrees}.mp4"
    path.write_bytes(bytes(data))
    return str(path), img


@pytest.mark.parametrize("size", [(128, 64), (64, 32)])  # decord path; decord2 small-width bug -> PyAV path
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_video_decodes_in_display_orientation(tmp_path, size, degrees):
    path, img = _rotated(tmp_path, *size, degrees)
    expected = np.rot90(img, k=-degrees // 90)  # clockwise
    for short_side in (0, 16):
        frames, info = decode_clips(path, lambda i: np.array([0, 3]), short_side=short_side)
        h, w = expected.shape[:2]
        if short_side:
            h, w = (16, w * 16 // h) if h <= w else (h * 16 // w, 16)
        assert frames.shape == (2, h, w, 3)
        small = np.asarray(__import__("PIL.Image").Image.fromarray(expected).resize((w, h)))
        assert np.abs(frames[0].astype(int) - small.astype(int)).mean() < 20
    info = read_info(path)
    assert info.rotation == degrees and (info.width, info.height) == expected.shape[1::-1]


def test_data_check_reports_rotation(tmp_path):
    path, _ = _rotated(tmp_path, 128, 64, 90)
    out = check_row({"line": np.array([2]), "path": np.array([path], dtype=object)}, full=False)
    assert out["ok"][0] and out["rotation"][0] == 90 and (out["width"][0], out["height"][0]) == (64, 128)


# ---- 4. a window beyond the end of the video ------------------------------------------------------
def test_window_beyond_the_video_is_skipped_as_window_and_flagged_by_check(tmp_path, skips):
    _write(tmp_path / "clip.mp4", [_grey(20 + 10 * i) for i in range(16)], fps=8)  # 2 s
    (tmp_path / "m.csv").write_text("path,label,start_sec,end_sec\nclip.mp4,0,14.0,24.0\nclip.mp4,1,0.5,1.5\n")
    columns = _rows(tmp_path / "m.csv")
    for split in ("train", "val"):
        skips.clear()
        cfg = DataConfig(train_manifest=str(tmp_path / "m.csv"), val_manifest=str(tmp_path / "m.csv"),
                         num_frames=4, img_size=32, randaugment=None, val_num_clips=1, val_num_crops=1)
        out = pipeline.decode_batch(pipeline.take_rows(columns, np.arange(2), 3), cfg=cfg, split=split,
                                    seed=0, scope="t")
        assert out["index"].tolist() == [1]  # today: row 0 becomes 4 copies of the last frame
        assert skips == [(3, 0, "window")]
    rows = {"line": np.array([2, 3]), "path": columns["path"], "start_sec": columns["start_sec"],
            "end_sec": columns["end_sec"]}
    out = check_row(rows, full=False)
    assert out["ok"].tolist() == [False, True] and out["reason"][0] == "window"
    assert "14-24 s" in out["detail"][0] and "2.00 s" in out["detail"][0]


# ---- 5. manifest encodings --------------------------------------------------------------------------
CLASSES = ["piñata smashing", 'opening "the" door, slowly', "défilé"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_manifest_with_byte_order_mark_is_read(tmp_path, encoding):
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding=encoding)
    rows = 'path,label\r\n"v 1.mp4","opening ""the"" door, slowly"\r\n"v 1.mp4",défilé\r\n'
    (tmp_path / "m.csv").write_bytes(rows.encode(encoding))
    records = read_manifest(str(tmp_path / "m.csv"), classes_file=str(tmp_path / "classes.txt"))
    assert [r.label for r in records] == [1, 2] and records[0].path.endswith("v 1.mp4")
    assert load_classes(str(tmp_path / "classes.txt")) == CLASSES


def test_manifest_in_a_legacy_encoding_fails_in_one_line_naming_file_and_fix(tmp_path):
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (tmp_path / "m.csv").write_bytes("path,label\r\nv.mp4,défilé\r\n".encode("cp1252"))
    with pytest.raises(ManifestError) as info:
        read_manifest(str(tmp_path / "m.csv"), classes_file=str(tmp_path / "classes.txt"))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'm.csv'}:2:") and "UTF-8" in message
    (tmp_path / "c2.txt").write_bytes("défilé\n".encode("cp1252"))
    with pytest.raises(ManifestError, match="c2.txt:1: not valid UTF-8"):
        load_classes(str(tmp_path / "c2.txt"))


def test_cli_reports_a_manifest_encoding_error_in_one_line(tmp_path, monkeypatch, capsys):
    from videomamba.cli import main
    from videomamba.commands import data as data_command

    monkeypatch.setattr(data_command, "init_ray", lambda **kw: None)
    (tmp_path / "m.csv").write_bytes("path,label\r\nv.mp4,défilé\r\n".encode("cp1252"))
    assert main(["data", "check", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and f"{tmp_path / 'm.csv'}:2: not valid UTF-8" in err and "\n" not in err


# ---- 6. UCF101 split files: classInd.txt "1 ApplyEyeMakeup", 1-based list labels -----------------
NAMES = ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]


@pytest.fixture
def ucf(tmp_path):
    (tmp_path / "classInd.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(NAMES, 1)))
    (tmp_path / "names.txt").write_text("".join(f"{n}\n" for n in NAMES))
    (tmp_path / "all.txt").write_text("".join(f"{n}/v_{n}_g01_c01.avi {i}\n" for i, n in enumerate(NAMES, 1)))
    (tmp_path / "sub.txt").write_text("".join(f"{n}/v_{n}_g01_c01.avi {i}\n" for i, n in enumerate(NAMES[:2], 1)))
    (tmp_path / "test.txt").write_text("".join(f"{n}/v_{n}_g02_c01.avi\n" for n in NAMES))
    return tmp_path


def test_ucf101_class_index_and_one_based_labels_map_by_number(ucf):
    assert load_classes(str(ucf / "classInd.txt")) == NAMES
    for name in ("all.txt", "sub.txt", "test.txt"):  # testlist: no label, the class is the directory
        records = read_manifest(str(ucf / name), classes_file=str(ucf / "classInd.txt"))
        assert [NAMES[r.label] for r in records] == [r.path.split("/")[-2] for r in records]


def test_one_based_labels_with_a_plain_classes_file_are_never_shifted_silently(ucf, caplog):
    with pytest.raises(ManifestError, match="label '3' out of range.*numbered classInd.txt"):
        read_manifest(str(ucf / "all.txt"), classes_file=str(ucf / "names.txt"))
    read_manifest(str(ucf / "sub.txt"), classes_file=str(ucf / "names.txt"))  # labels 1, 2 of 0..2: ambiguous
    assert "1-based" in caplog.text


def test_numbered_classes_with_gaps_are_rejected(tmp_path):
    (tmp_path / "c.txt").write_text("1 a\n3 b\n")
    with pytest.raises(ManifestError, match="c.txt:1: numbered classes must be numbered"):
        load_classes(str(tmp_path / "c.txt"))
