"""Decode only the sampled frames of a video with decord, from a local path or from bytes (URIs).

Failures raise ``DecodeError`` with a short ``reason``: ``missing``, ``empty`` (zero bytes),
``unreadable`` (no decodable video stream: not a video, truncated or corrupt header) or
``corrupt`` (the container opens but the sampled frames do not decode).

Resize on decode: with ``short_side > 0`` the container header is probed (PyAV, no decoding) and
decord scales frames to that short side while converting colour (never upscales).
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from videomamba.data import storage
from videomamba.data.transforms import resize_frames

logger = logging.getLogger(__name__)

REASONS = ("missing", "empty", "unreadable", "corrupt", "unsupported")
DEFAULT_FPS = 30.0


class DecodeError(Exception):
    """A video that cannot be used; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int  # as stored in the file
    height: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def load_source(path: str) -> str | bytes:
    """A local path (checked) or the bytes behind a URI."""
    if storage.is_uri(path):
        try:
            data = storage.read_bytes(path)
        except FileNotFoundError as err:
            raise DecodeError("missing", str(err)) from None
        except storage.UnsupportedURIError as err:  # https://, ftp://...: no filesystem reads it
            raise DecodeError("unsupported", str(err)) from None
        except OSError as err:
            raise DecodeError("missing", f"{type(err).__name__}: {err}") from None
        if not data:
            raise DecodeError("empty", "zero bytes")
        return data
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise DecodeError("missing", str(err)) from None
    if size == 0:
        raise DecodeError("empty", "zero bytes")
    return path


def _stream(source: str | bytes):
    return io.BytesIO(source) if isinstance(source, bytes) else source


def probe(source: str | bytes) -> tuple[int, int]:
    """(width, height) from the container header (PyAV)."""
    import av

    try:
        with av.open(_stream(source), options={"analyzeduration": "0"}) as container:
            if not container.streams.video:
                raise DecodeError("unreadable", "no video stream")
            ctx = container.streams.video[0].codec_context
            width, height = int(ctx.width), int(ctx.height)
    except DecodeError:
        raise
    except Exception as err:  # av.error.* for anything that is not a readable container
        raise DecodeError("unreadable", f"{type(err).__name__}: {err}") from None
    if width <= 0 or height <= 0:
        raise DecodeError("unreadable", f"bad frame size {width}x{height}")
    return width, height


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side scaled to ``short_side``, long side ``int(long * short_side / short)``
    (as the eval short-side resize); unchanged if already that small or ``short_side`` is 0."""
    if short_side <= 0 or min(width, height) <= short_side:
        return width, height
    if width <= height:
        return short_side, max(1, int(height * short_side / width))
    return max(1, int(width * short_side / height)), short_side


def _open_reader(source: str | bytes, width: int = -1, height: int = -1, num_threads: int = 1):
    import decord

    try:
        return decord.VideoReader(_stream(source), width=width, height=height, num_threads=num_threads)
    except Exception as err:  # RuntimeError / DECORDError / AssertionError (0 frames)
        raise DecodeError("unreadable", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def _get_batch(reader, indices: np.ndarray) -> np.ndarray:
    """decord ``get_batch`` -> uint8 (n, h, w, 3); ``None`` when decord returns a malformed frame
    buffer (decord2 3.4 bug on some small widths, e.g. 96 or 48 px)."""
    import decord

    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except decord.DECORDError as err:
        if "size must exactly match" in str(err):
            return None
        raise DecodeError("corrupt", str(err).splitlines()[0][:200]) from None
    except Exception as err:
        raise DecodeError("corrupt", f"{type(err).__name__}: {err}") from None
    return frames if frames.ndim == 4 and frames.shape[-1] == 3 else None


def _pyav_frames(source: str | bytes, indices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sequential PyAV decode of ``indices`` (sorted, unique) -> uint8 (n, h, w, 3); the fallback."""
    import av

    wanted, out, width, height = set(indices.tolist()), {}, *size
    try:
        with av.open(_stream(source)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out[i] = frame.to_ndarray(format="rgb24", width=width, height=height)
                if i >= indices[-1]:
                    break
    except Exception as err:
        raise DecodeError("corrupt", f"{type(err).__name__}: {err}") from None
    if len(out) < len(wanted):  # fewer frames than the header said: repeat the last decoded one
        if not out:
            raise DecodeError("corrupt", "no frame decoded")
        last = out[max(out)]
        out.update({i: last for i in wanted if i not in out})
    return np.stack([out[i] for i in indices.tolist()])


def decode_clips(
    path: str,
    pick: Callable[[VideoInfo], np.ndarray],
    *,
    short_side: int = 0,
    num_threads: int = 1,
) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames ``pick(info)`` chooses, each once.

    ``pick`` gets the video's ``VideoInfo`` and returns int indices of any shape ``S``; the result is
    uint8 ``S + (h, w, 3)`` (e.g. ``(N, T, h, w, 3)`` for N temporal clips), ``h, w`` scaled so
    that the short side is ``short_side`` when it was larger.
    """
    source = load_source(path)
    width, height = probe(source) if short_side > 0 else (-1, -1)
    out_w, out_h = scaled_size(width, height, short_side) if short_side > 0 else (-1, -1)
    resize = (out_w, out_h) != (width, height)
    reader = _open_reader(source, *((out_w, out_h) if resize else (-1, -1)), num_threads=num_threads)
    fps = float(reader.get_avg_fps() or 0.0)
    if not math.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
    if width < 0:  # not probed: take the size from the first decoded batch below
        width = height = 0
    info = VideoInfo(num_frames=len(reader), fps=fps, width=width, height=height)
    indices = np.asarray(pick(info), dtype=np.int64)
    unique, inverse = np.unique(indices.ravel(), return_inverse=True)
    frames = _get_batch(reader, unique)
    if frames is None and resize:  # decord cannot produce this output size: decode native
        frames = _get_batch(_open_reader(source, num_threads=num_threads), unique)
        if frames is not None:
            frames = resize_frames(frames, out_h, out_w)
    if frames is None:
        logger.debug("decord returned malformed frames for %s; decoding with PyAV", path)
        if width <= 0:
            width, height = probe(source)
            out_w, out_h = width, height
        frames = _pyav_frames(source, unique, (out_w, out_h) if resize else (width, height))
    if info.width == 0:
        info = VideoInfo(info.num_frames, info.fps, frames.shape[2], frames.shape[1])
    return frames[inverse.reshape(indices.shape)], info


def read_info(path: str, *, num_threads: int = 1) -> VideoInfo:
    """Header-level info of a video (opens it with decord; decodes nothing)."""
    source = load_source(path)
    width, height = probe(source)
    reader = _open_reader(source, num_threads=num_threads)
    fps = float(reader.get_avg_fps() or 0.0)
    return VideoInfo(len(reader), fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS, width, height)
