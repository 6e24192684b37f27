"""Decoding: only sampled frames, local path vs bytes through a URI, resize on decode, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from support.bad_videos import BAD_KINDS, add_bad_entries

from videomamba.data.decode import DecodeError, decode_clips, read_info, scaled_size
from videomamba.data.synth import render_video, write_mp4


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    rng = np.random.default_rng(0)
    frames = render_video(1, 16, 64, 4, rng)
    paths = {"clip": str(root / "clip.mp4"), "wide": str(root / "wide.mp4"), "odd": str(root / "odd.mp4")}
    write_mp4(paths["clip"], frames)
    write_mp4(paths["wide"], np.concatenate([frames, frames], axis=2)[:, :, :, :])  # 64x128
    write_mp4(paths["odd"], np.concatenate([frames, frames[:, :, :32]], axis=2))  # 64x96: a decord2 trouble width
    manifest = root / "m.csv"
    manifest.write_text("path,label\n")
    bad = add_bad_entries(str(manifest))
    return root, paths, frames, bad


def test_local_and_uri_bytes_decode_identically(videos):
    _, paths, frames, _ = videos
    pick = lambda info: np.array([[0, 5, 10, 15], [15, 15, 3, 0]])  # noqa: E731
    local, info = decode_clips(paths["clip"], pick)
    remote, info_uri = decode_clips("file://" + paths["clip"], pick)
    assert local.shape == (2, 4, 64, 64, 3) and local.dtype == np.uint8
    np.testing.assert_array_equal(local, remote)
    assert info == info_uri and (info.num_frames, info.fps, info.width, info.height) == (16, 8.0, 64, 64)
    # lossy codec, but close to what was encoded, frame by frame and in the requested order
    err = np.abs(local[0].astype(int) - frames[[0, 5, 10, 15]].astype(int)).mean()
    assert err < 6
    np.testing.assert_array_equal(local[1, 0], local[0, 3])


def test_resize_on_decode_keeps_aspect_and_never_upscales(videos):
    _, paths, _, _ = videos
    frames, info = decode_clips(paths["wide"], lambda i: np.arange(4), short_side=32)
    assert frames.shape == (4, 32, 64, 3) and (info.width, info.height) == (128, 64)
    frames, _ = decode_clips(paths["clip"], lambda i: np.arange(4), short_side=100)
    assert frames.shape == (4, 64, 64, 3)
    assert scaled_size(340, 256, 224) == (297, 224) and scaled_size(256, 340, 224) == (224, 297)


def test_decord_small_width_bug_falls_back(videos):
    _, paths, _, _ = videos
    frames, info = decode_clips(paths["odd"], lambda i: np.array([1, 7, 7]))
    assert frames.shape == (3, 64, 96, 3) and info.width == 96
    np.testing.assert_array_equal(frames[1], frames[2])
    small, _ = decode_clips(paths["clip"], lambda i: np.array([0, 1]), short_side=48)  # 48 px: fallback resize
    assert small.shape == (2, 48, 48, 3)


@pytest.mark.parametrize("name", [n for n, r in BAD_KINDS.items() if r != "short"])
def test_bad_inputs_raise_decode_error_with_reason(videos, name):
    root, _, _, _ = videos
    for path in (str(root / "bad" / name), f"file://{root}/bad/{name}"):
        with pytest.raises(DecodeError) as info:
            decode_clips(path, lambda i: np.arange(i.num_frames))
        assert info.value.reason == BAD_KINDS[name]


def test_short_video_is_decodable(videos):
    root, _, _, bad = videos
    assert bad["bad/short.mp4"] == "short"
    assert read_info(str(root / "bad" / "short.mp4")).num_frames == 3


def test_decord_is_imported_with_psm_signal_hijacking_off():
    """decord's FFmpeg can map libinfinipath, whose load-time constructor takes over SIGSEGV & co.
    unless IPATH_NO_BACKTRACE/HFI_NO_BACKTRACE are set before it loads (it crashed `data bench` on
    the H200 image). The switches are set before the import; a user's own value is kept."""
    import subprocess
    import sys

    code = ("import os; from videomamba.data.decode import import_decord; import_decord(); "
            "print(os.environ.get('IPATH_NO_BACKTRACE'), os.environ.get('HFI_NO_BACKTRACE'))")
    env = {k: v for k, v in os.environ.items() if k not in ("IPATH_NO_BACKTRACE", "HFI_NO_BACKTRACE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
    out = subprocess.run([sys.executable, "-c", code], env={**env, "IPATH_NO_BACKTRACE": "0"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1"]
