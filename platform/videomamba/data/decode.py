"""Decode only the sampled frames of a video with decord, from a local path or from bytes (URIs).

One reader per clip: the hot path (:func:`decode_clips`, used by the Ray Data pipeline, ``predict``
and ``evaluate``) opens the file once with decord, which also gives the frame count, the average
fps and every frame's presentation timestamp from the container index (no decoding). Frames come
out in display orientation (decord applies the rotation of the container's display matrix) and
are resized to ``short_side`` after decoding (:func:`shrink`: bilinear + antialias, torch's uint8
kernel), so no header probe is needed before the reader is opened. PyAV is used only off the
hot path: reading the rotation angle for reports (:func:`read_info`, ``data check``), finding the last good frame of a damaged
file (once per file and process), and when decord returns a malformed frame buffer (decord2 3.4
bug on some small widths, e.g. 96 or 48 px, and on rotated videos of such widths).

Failures raise ``DecodeError`` with a short ``reason``: ``missing``, ``empty`` (zero bytes),
``unreadable`` (no decodable video stream: not a video, truncated or corrupt header),
``corrupt`` (the container opens but frames do not decode) or ``window`` (the row's
``start_sec,end_sec`` window holds no frame of the video).

Damaged files (a partial download: the index announces frames whose data is missing) are handled
the same way on every call: the last frame of the index is always decoded with the sampled ones;
when it fails, the decodable prefix is measured once (sequential PyAV decode, cached per process
by path, size and mtime) and the clip is sampled from that prefix only. ``VideoInfo.truncated``
then says how many announced frames were lost (the pipeline counts the row as ``truncated``).
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from videomamba import storage
from videomamba.data.sampling import EmptyWindowError
from videomamba.data.transforms import resize_frames

logger = logging.getLogger(__name__)

REASONS = ("missing", "empty", "unreadable", "corrupt", "window", "unsupported")
DEFAULT_FPS = 30.0
_GOOD_FRAMES: dict[tuple, tuple[int, int]] = {}  # (path, size, mtime) -> (decodable, announced) frames


class DecodeError(Exception):
    """A video that cannot be used; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class VideoInfo:
    """What a picker needs to choose frames, and what was found while decoding.

    ``num_frames``: usable frames (for a damaged file, the decodable prefix); ``fps``: average
    rate from the header; ``width, height``: decoded frame size in display orientation, before
    any resize (0 until frames are decoded); ``timestamps``: ``(num_frames,)`` float64 seconds from
    the first frame, presentation order (``None``: unknown, use ``fps``); ``rotation``: display
    rotation in degrees clockwise (0, 90, 180, 270; ``None``: not read, only :func:`read_info`
    reads it); ``truncated``: frames the index announces beyond the last decodable one.
    """

    num_frames: int
    fps: float
    width: int
    height: int
    timestamps: np.ndarray | None = field(default=None, compare=False, repr=False)
    rotation: int | None = None
    truncated: int = 0

    @property
    def duration(self) -> float:
        """Seconds: the last frame's timestamp plus one frame (``num_frames / fps`` without timestamps)."""
        if self.timestamps is not None and len(self.timestamps) > 1:
            ts = self.timestamps
            return float(ts[-1] + (ts[-1] - ts[0]) / (len(ts) - 1))
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


def _source_key(path: str, source: str | bytes) -> tuple:
    if isinstance(source, bytes):
        return (path, len(source), hash(source[-4096:]))
    st = os.stat(source)
    return (path, st.st_size, st.st_mtime_ns)


def probe(source: str | bytes) -> tuple[int, int, int]:
    """(coded width, coded height, display rotation in degrees clockwise) from the container
    header (PyAV; decodes nothing). Not on the decode hot path."""
    import av

    try:
        with av.open(_stream(source), options={"analyzeduration": "0"}) as container:
            if not container.streams.video:
                raise DecodeError("unreadable", "no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            width, height = int(ctx.width), int(ctx.height)
            rotation = _stream_rotation(container, stream)
    except DecodeError:
        raise
    except Exception as err:  # av.error.* for anything that is not a readable container
        raise DecodeError("unreadable", f"{type(err).__name__}: {err}") from None
    if width <= 0 or height <= 0:
        raise DecodeError("unreadable", f"bad frame size {width}x{height}")
    return width, height, rotation


def _stream_rotation(container, stream) -> int:
    """Display rotation (degrees clockwise) of a PyAV stream: its display matrix as seen on the
    first decoded frame (PyAV exposes it there), 0 if none."""
    try:
        frame = next(container.decode(stream))
        return _clockwise(getattr(frame, "rotation", 0) or 0)
    except Exception:  # no decodable frame: the decode itself reports that
        return 0


def _clockwise(pyav_rotation: float) -> int:
    """PyAV/FFmpeg's display-matrix angle (counter-clockwise, e.g. -90) -> clockwise 0/90/180/270."""
    return int(round(-pyav_rotation / 90.0)) % 4 * 90


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side scaled to ``short_side``, long side ``int(long * short_side / short)``
    (as the eval short-side resize); unchanged if already that small or ``short_side`` is 0."""
    if short_side <= 0 or min(width, height) <= short_side:
        return width, height
    if width <= height:
        return short_side, max(1, int(height * short_side / width))
    return max(1, int(width * short_side / height)), short_side


# decord's bundled FFmpeg maps libinfinipath (Intel PSM) on some GPU images; its load-time
# constructor hijacks SIGSEGV/SIGINT/... and, in the driver of `data bench`, faulted inside that
# handler (2026-12-01, H200 image; benchmarks/data_pipeline.md). Open MPI sets the same two switches
# by default (open-mpi/ompi#1781): IPATH_NO_BACKTRACE for PSM, HFI_NO_BACKTRACE for PSM2.
_PSM_SIGNAL_SWITCHES = ("IPATH_NO_BACKTRACE", "HFI_NO_BACKTRACE")


def import_decord():
    """``import decord`` with PSM's signal-handler hijacking switched off first (a user's own
    setting of either variable is kept). Every decord import in the package goes through here."""
    for name in _PSM_SIGNAL_SWITCHES:
        os.environ.setdefault(name, "1")
    import decord

    return decord


def _open_reader(source: str | bytes, num_threads: int = 1):
    decord = import_decord()

    try:
        return decord.VideoReader(_stream(source), num_threads=num_threads)
    except Exception as err:  # RuntimeError / DECORDError / AssertionError (0 frames)
        raise DecodeError("unreadable", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def _reader_info(reader) -> VideoInfo:
    """Frame count, fps and timestamps from the reader's index (nothing decoded)."""
    n = len(reader)
    fps = float(reader.get_avg_fps() or 0.0)
    if not math.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
    timestamps = None
    try:
        ts = np.asarray(reader.get_frame_timestamp(np.arange(n)), dtype=np.float64)[:, 0]
        if len(ts) == n and np.all(np.isfinite(ts)) and np.all(np.diff(ts) > 0):
            timestamps = ts - ts[0]
    except Exception:  # no usable timestamps: constant rate from fps
        timestamps = None
    return VideoInfo(num_frames=n, fps=fps, width=0, height=0, timestamps=timestamps)


def _error_line(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(err).__name__)[:200]


def _get_batch(reader, indices: np.ndarray) -> np.ndarray | None:
    """decord ``get_batch`` -> uint8 (n, h, w, 3); ``None`` when decord returns a malformed frame
    buffer (decord2 3.4 bug on some small widths, e.g. 96 or 48 px)."""
    decord = import_decord()

    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except decord.DECORDError as err:
        if "size must exactly match" in str(err):
            return None
        raise DecodeError("corrupt", _error_line(err)) from None
    except Exception as err:
        raise DecodeError("corrupt", f"{type(err).__name__}: {_error_line(err)}") from None
    return frames if frames.ndim == 4 and frames.shape[-1] == 3 else None


def _pyav_frames(source: str | bytes, indices: np.ndarray) -> np.ndarray:
    """Sequential PyAV decode of ``indices`` (sorted, unique) -> uint8 (n, h, w, 3) in display
    orientation (the frames' display matrix applied, as decord does); the fallback."""
    import av

    wanted, out = set(indices.tolist()), {}
    try:
        with av.open(_stream(source)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    img = frame.to_ndarray(format="rgb24")
                    turns = _clockwise(getattr(frame, "rotation", 0) or 0) // 90
                    out[i] = np.ascontiguousarray(np.rot90(img, k=-turns)) if turns else img
                if i >= indices[-1]:
                    break
    except Exception as err:
        if not out:
            raise DecodeError("corrupt", f"{type(err).__name__}: {err}") from None
    if len(out) < len(wanted):  # fewer frames than the index said: repeat the last decoded one
        if not out:
            raise DecodeError("corrupt", "no frame decoded")
        last = out[max(out)]
        out.update({i: last for i in wanted if i not in out})
    return np.stack([out[i] for i in indices.tolist()])


def decodable_frames(source: str | bytes, limit: int | None = None) -> tuple[int, int]:
    """(frames that decode in order from the start before the first decoder error or the end of
    the data, frames the container header announces (0: unknown)); sequential PyAV decode, at
    most ``limit`` frames. Off the hot path: damaged files only."""
    import av

    count, announced = 0, 0
    try:
        with av.open(_stream(source)) as container:
            announced = int(container.streams.video[0].frames or 0)
            for _ in container.decode(video=0):
                count += 1
                if limit is not None and count >= limit:
                    break
    except Exception:  # the first frame that does not decode ends the good prefix
        pass
    return count, announced


def _good_frames(path: str, source: str | bytes, indexed: int) -> tuple[int, int]:
    key = _source_key(path, source)
    if key not in _GOOD_FRAMES:
        if len(_GOOD_FRAMES) > 1024:
            _GOOD_FRAMES.clear()
        _GOOD_FRAMES[key] = decodable_frames(source, limit=indexed)
    return _GOOD_FRAMES[key]


def _pick(pick: Callable[[VideoInfo], np.ndarray], info: VideoInfo) -> np.ndarray:
    try:
        indices = np.asarray(pick(info), dtype=np.int64)
    except EmptyWindowError as err:
        raise DecodeError("window", str(err)) from None
    if indices.size and (indices.min() < 0 or indices.max() >= info.num_frames):
        raise ValueError(f"picked frame indices outside [0, {info.num_frames})")
    return indices


def decode_clips(
    path: str,
    pick: Callable[[VideoInfo], np.ndarray],
    *,
    short_side: int = 0,
    num_threads: int = 1,
    check_tail: bool = True,
) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames ``pick(info)`` chooses, each once, with one decord reader.

    ``pick`` gets the video's ``VideoInfo`` (``width``/``height`` still 0) and returns int indices
    of any shape ``S``; the result is uint8 ``S + (h, w, 3)`` in display orientation (e.g.
    ``(N, T, h, w, 3)`` for N clips), ``h, w`` scaled so that the short side is ``short_side``
    when it was larger (0: native). With ``check_tail`` the index's last frame is decoded too, so
    a damaged file is recognised on every call, whatever frames were picked (see the module doc);
    its cost is at most the frames from the last picked one to the end. Raises ``DecodeError``;
    a picker's ``sampling.EmptyWindowError`` becomes reason ``window``.
    """
    source = load_source(path)
    reader = _open_reader(source, num_threads)
    info = _reader_info(reader)
    indices = _pick(pick, info)
    unique, inverse = np.unique(indices.ravel(), return_inverse=True)
    decode = np.union1d(unique, [info.num_frames - 1]) if check_tail else unique
    try:
        frames = _get_batch(reader, decode)
    except DecodeError as err:
        good, announced = _good_frames(path, source, info.num_frames)
        if good == 0:
            raise
        if good >= info.num_frames:  # every frame decodes with PyAV: a decord failure, not damage
            logger.info("%s: decord failed (%s); decoding with PyAV", path, err.detail)
            frames = _pyav_frames(source, decode)
        else:  # damaged: sample again from the decodable prefix
            announced = max(announced, info.num_frames)
            logger.info("%s: %d of %d announced frames decode (%s); using those", path, good, announced, err.detail)
            ts = None if info.timestamps is None else info.timestamps[:good]
            info = replace(info, num_frames=good, timestamps=ts, truncated=announced - good)
            indices = _pick(pick, info)
            unique, inverse = np.unique(indices.ravel(), return_inverse=True)
            decode = unique
            try:
                frames = _get_batch(reader, decode)
            except DecodeError:  # decord's threaded decoder can stop short of PyAV's good prefix
                frames = _pyav_frames(source, decode)
    if frames is None:
        logger.debug("decord returned malformed frames for %s; decoding with PyAV", path)
        frames = _pyav_frames(source, decode)
    if len(decode) != len(unique):
        frames = frames[np.searchsorted(decode, unique)]
    info = replace(info, width=int(frames.shape[2]), height=int(frames.shape[1]))
    out_w, out_h = scaled_size(info.width, info.height, short_side)
    if (out_w, out_h) != (info.width, info.height):
        frames = shrink(frames, out_h, out_w)
    return frames[inverse.reshape(indices.shape)], info


def shrink(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (n, H, W, 3) -> (n, height, width, 3), bilinear with antialiasing: torch's uint8 kernel
    (within 1 grey level of PIL's, about 6x faster at 720p -> 256), PIL without torch."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; PIL is the same filter
        return resize_frames(frames, height, width)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    y = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def read_info(path: str, *, num_threads: int = 1) -> VideoInfo:
    """Header-level info of a video: decord's index (frames, fps, timestamps) plus the display
    rotation and size from PyAV (decodes at most the first frame; for reports, not the hot path).
    ``width, height`` are in display orientation."""
    source = load_source(path)
    width, height, rotation = probe(source)
    info = _reader_info(_open_reader(source, num_threads))
    if rotation in (90, 270):
        width, height = height, width
    return replace(info, width=width, height=height, rotation=rotation)
