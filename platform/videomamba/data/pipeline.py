"""The Ray Data video pipeline: manifest -> (per-epoch shuffle) -> decode + transform on CPU tasks.

``build_dataset(cfg, split)`` returns a lazy ``ray.data.Dataset`` with columns
``video`` uint8 ``(3, T, S, S)`` pixels (``data.clip_dtype: uint8``, the default: the consumer
normalises them on its device with :func:`videomamba.data.normalize.normalize_batch`; float32
already normalised with ``clip_dtype: float32``), ``label`` int64, ``index`` int64 (manifest row) and ``view``
int64 (``clip * num_crops + crop``; in train the clip index of ``clips_per_video``), so
``iter_torch_batches`` yields ``video`` as ``(B, 3, T, S, S)``. Evaluation splits emit ``num_clips * num_crops`` rows per video; training
emits ``clips_per_video`` rows per video (repeated sampling: one decode of the union of the k clips'
frames, each clip sampled and augmented on its own; an epoch then has k x the rows and steps, and the
k clips of a video usually share a batch, see ``DataConfig.clips_per_video``). With
``cfg.captions`` a string column ``caption`` follows: one of the row's captions, drawn from
``(seed, effective epoch, row)`` in training (a stream of its own), the first one in evaluation
(strings: iterate with ``collate_fn``, e.g. :class:`TorchCollate`).

Plan: ``range(n)`` -> ``select_rows`` (row ``i`` of epoch ``e`` is manifest row ``perm_e[i]``; no
all-to-all shuffle, the manifest is shared through the object store) -> ``decode_batch``
(``map_batches`` with ``decode_num_cpus``/``decode_concurrency``/``decode_resources``; decord
decodes only the sampled frames, then the clip transform). Bad videos are dropped inside the
task (an all-bad batch yields an empty batch) and counted by ``videomamba.data.skips``.

Epochs and seeds: every execution of the dataset (each epoch's ``iter_*`` over it, or over a Ray
Train shard) reads Ray Data's execution counter (the one behind
``RandomSeedConfig(reseed_after_execution=True)``), so the effective epoch is
``epoch + <executions so far>`` (a dataset built with ``epochs=E`` spans E epochs per execution:
``epoch + E * <executions so far> + position // n``). Shuffle order, frame offsets, crops, flips and
RandAugment of manifest row ``i`` (clip ``c``) derive from ``(seed, effective epoch, i[, c])`` only: different every epoch,
identical for the same seed and epoch, whatever the task layout or number of workers.

Order (``cfg.deterministic``, default on): the dataset's own ``DataContext`` asks for ordered
execution (``execution_options.preserve_order``): blocks leave every stage in manifest-position
order (the epoch's shuffled order in training) however many decode tasks run and whichever finishes first, and Ray Train's
``streaming_split`` then deals them to the workers deterministically (it also drops its locality
hints). So a seed fixes each worker's batches, contents and order. Training hands the same
option to Ray Train (``ingest_options``), which otherwise replaces a dataset's execution options.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial

import numpy as np

from videomamba.data import sampling
from videomamba.data.config import DataConfig, Split
from videomamba.data.decode import DecodeError, decode_clips
from videomamba.data.manifest import read_manifest, split_captions, to_columns
from videomamba.data.skips import ensure_ledger, record_skip
from videomamba.data.transforms import ClipTransform

logger = logging.getLogger(__name__)

COLUMNS = ("video", "label", "index", "view")
_SHUFFLE_STREAM, _CLIP_STREAM, _CAPTION_STREAM = 0x5EED, 0xC11B, 0xCA9  # separate RNG streams per use


def current_execution_index() -> int:
    """How many times this dataset has been executed before (0 if Ray does not expose it)."""
    from ray.data import DataContext

    return int(getattr(DataContext.get_current(), "_execution_idx", 0) or 0)


def clip_rng(seed: int, epoch: int, index: int, clip: int = 0) -> np.random.Generator:
    """The generator behind every random choice (frame offsets, crop, flip, RandAugment) of clip
    ``clip`` of manifest row ``index`` in ``epoch`` (clip 0: the only clip when
    ``clips_per_video`` is 1)."""
    key = [_CLIP_STREAM, seed, epoch, index] + ([clip] if clip else [])
    return np.random.default_rng(key)


def pick_caption(joined: str, seed: int, epoch: int, index: int, train: bool) -> str:
    """One caption of a row's joined ``captions``: random (from ``(seed, epoch, index)``) in
    training, the first one otherwise."""
    captions = split_captions(joined)
    if not train or len(captions) == 1:
        return captions[0]
    return captions[np.random.default_rng([_CAPTION_STREAM, seed, epoch, index]).integers(len(captions))]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([_SHUFFLE_STREAM, seed, epoch]).permutation(n)


# ---- per-process caches (Ray reuses worker processes across tasks) -----------------------------
_MANIFESTS: dict[str, dict[str, np.ndarray]] = {}
_PERMUTATIONS: dict[tuple[int, int, int], np.ndarray] = {}
_TRANSFORMS: dict[tuple[str, str, str], object] = {}


def _manifest(ref) -> dict[str, np.ndarray]:
    import ray

    key = ref.hex()
    if key not in _MANIFESTS:
        _MANIFESTS.clear()
        _MANIFESTS[key] = ray.get(ref)
    return _MANIFESTS[key]


def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    key = (n, seed, epoch)
    if key not in _PERMUTATIONS:
        if len(_PERMUTATIONS) > 4:
            _PERMUTATIONS.clear()
        _PERMUTATIONS[key] = epoch_permutation(n, seed, epoch)
    return _PERMUTATIONS[key]


def split_transform(cfg: DataConfig, split: str, make: Callable | None = None):
    """``make(cfg, split, normalize=...)`` (default ``ClipTransform.from_config``), built once per
    process; ``normalize`` only with ``data.clip_dtype: float32`` (else uint8 pixels)."""
    make = make or ClipTransform.from_config
    key = (make.__qualname__, cfg.model_dump_json(), split)
    if key not in _TRANSFORMS:
        _TRANSFORMS[key] = make(cfg, split, normalize=cfg.clip_dtype == "float32")
    return _TRANSFORMS[key]


# ---- stage 1: which manifest rows, in which order --------------------------------------------
BLOCKS_PER_CPU = 4


def num_blocks(rows: int, rows_per_block: int, cpus: int) -> int:
    """Ray Data blocks (= decode tasks) for ``rows`` rows: ``rows_per_block`` rows each, but at least
    ``BLOCKS_PER_CPU`` per cluster CPU (at most one per row). With one block per CPU a small
    dataset ends in a single wave of tasks (128 rows of 16 on 16 cores used 8 of them: half the
    clips/s of a bare loop, measured on the H200 host, benchmarks/data_pipeline.md), and any
    imbalance leaves cores idle for up to a whole task; with four the idle tail is a quarter of
    that. A task's own cost (scheduling, one Arrow block per ``decode_batch_size`` clips) is
    milliseconds against the ~0.05-0.5 CPU-s of decoding one clip."""
    return max(1, min(rows, max(math.ceil(rows / rows_per_block), BLOCKS_PER_CPU * cpus)))


def cluster_cpus() -> int:
    """Logical CPUs of the running Ray cluster (1 when Ray is not started)."""
    import ray

    return int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1


def select_rows(batch: dict[str, np.ndarray], *, manifest, seed: int, epoch: int, shuffle: bool,
                epochs: int = 1) -> dict:
    """``{"id": (m,)}`` positions -> manifest columns of the rows at those positions. A dataset
    spanning ``epochs`` epochs has ``epochs * n`` positions: position ``p`` is position ``p % n``
    of effective epoch ``epoch + executions * epochs + p // n``."""
    order = partial(_video_order, shuffle=shuffle)
    return select_positions(batch, manifest=manifest, seed=seed, epoch=epoch, epochs=epochs, order=order)


def _video_order(n: int, seed: int, epoch: int, *, shuffle: bool) -> np.ndarray:
    return _permutation(n, seed, epoch) if shuffle else np.arange(n)


def select_positions(batch: dict[str, np.ndarray], *, manifest, seed: int, epoch: int, epochs: int,
                     order: Callable[[int, int, int], np.ndarray | tuple[np.ndarray, dict]]) -> dict:
    """Stage 1 of every kind's pipeline: ``{"id": (m,)}`` positions -> the decode stage's input
    batch (``take_rows``). Position ``p`` of a dataset spanning ``epochs`` epochs is position
    ``p % n`` of effective epoch ``epoch + executions * epochs + p // n``; ``order(n, seed, e)``
    gives epoch ``e``'s manifest row at each position, optionally with extra per-position columns
    (``(rows, {name: values})``, e.g. the repeat of repeated augmentation)."""
    columns = _manifest(manifest)
    n = len(columns["label"])
    pos = batch["id"].astype(np.int64)
    epochs_of = epoch + current_execution_index() * epochs + pos // n
    pos = pos % n
    rows = pos.copy()
    extra: dict[str, np.ndarray] = {}
    for e in np.unique(epochs_of):
        at = epochs_of == e
        picked = order(n, seed, int(e))
        if isinstance(picked, tuple):
            picked, more = picked
            for name, values in more.items():
                extra.setdefault(name, np.zeros(len(pos), np.asarray(values).dtype))[at] = values[pos[at]]
        rows[at] = picked[pos[at]]
    out = take_rows(columns, rows, epochs_of)
    out.update(extra)
    return out


def take_rows(columns: dict[str, np.ndarray], rows: np.ndarray, epoch) -> dict[str, np.ndarray]:
    """The decode stage's input batch: manifest ``columns`` at ``rows`` plus ``index`` and ``epoch``
    (one int for all rows, or one per row)."""
    out = {name: values[rows] for name, values in columns.items()}
    out["index"] = np.asarray(rows, dtype=np.int64)
    out["epoch"] = np.broadcast_to(np.asarray(epoch, dtype=np.int64), (len(rows),)).copy()
    return out


# ---- stage 2: decode + transform ---------------------------------------------------------------
def _columns(cfg: DataConfig) -> tuple[str, ...]:
    return (*COLUMNS, "caption") if cfg.captions else COLUMNS


def empty_rows(cfg: DataConfig, dtype=None) -> dict[str, np.ndarray]:
    """The decode stage's output for a batch without one usable row (every column, 0 rows);
    ``video``'s dtype: ``dtype``, default ``data.clip_dtype``."""
    t, s = cfg.num_frames, cfg.img_size
    out = {
        "video": np.zeros((0, 3, t, s, s), np.dtype(dtype or cfg.clip_dtype)),
        "label": np.zeros(0, np.int64),
        "index": np.zeros(0, np.int64),
        "view": np.zeros(0, np.int64),
    }
    if cfg.captions:
        out["caption"] = np.zeros(0, dtype=object)
    return out


def clip_picker(cfg: DataConfig, num_clips: int, start: float, end: float, rngs, state: dict):
    """``pick(info) -> (num_clips, T)`` frame indices inside the row's time window (selected by the
    frames' own timestamps); ``rngs``: one generator per clip (training) or ``None`` (evaluation:
    clip ``k`` of ``num_clips`` evenly placed)."""

    def pick(info) -> np.ndarray:
        first, length = sampling.frame_window(info.num_frames, info.fps, start, end, info.timestamps)
        state["short"] = sampling.is_short(cfg.sampling, length, cfg.num_frames, cfg.frame_stride)
        state["length"] = length
        clips = [
            sampling.sample_indices(cfg.sampling, length, cfg.num_frames, cfg.frame_stride,
                                    rng=None if rngs is None else rngs[k], clip=0 if rngs else k,
                                    num_clips=1 if rngs else num_clips)
            for k in range(num_clips)
        ]
        window_ts = None if info.timestamps is None else info.timestamps[first:first + length]
        return first + sampling.retime(np.stack(clips), window_ts)

    return pick


def clips_per_row(cfg: DataConfig, split: str) -> int:
    """Rows the pipeline emits per usable video: ``clips_per_video`` in training (repeated
    sampling), ``num_clips * num_crops`` views in evaluation."""
    if split == "train":
        return cfg.clips_per_video
    num_clips, num_crops = cfg.views(split)
    return num_clips * num_crops


def decode_batch(batch: dict[str, np.ndarray], *, cfg: DataConfig, split: str, seed: int, scope: str,
                 record: Callable | None = None) -> dict:
    """Manifest rows -> clip rows; unusable videos are dropped (and counted), never raised.

    Training emits ``cfg.clips_per_video`` rows per video (``view`` = clip 0..k-1): the frames of
    all k clips are decoded in one pass (their union, each frame once), then each clip is
    augmented on its own. Clip ``c``'s frame offsets and augmentation come from
    ``clip_rng(seed, epoch, row, c)``; clip 0 is exactly the clip of ``clips_per_video=1``.
    ``record`` (default :func:`~videomamba.data.skips.record_skip`) counts each bad video.
    """
    record_skip = record or globals()["record_skip"]
    train = split == "train"
    num_clips, num_crops = (cfg.clips_per_video, 1) if train else cfg.views(split)
    transform = split_transform(cfg, split)
    short_side = cfg.train_short_side if train else cfg.eval_short_side
    out = {name: [] for name in _columns(cfg)}
    for i in range(len(batch["index"])):
        path, index, epoch = str(batch["path"][i]), int(batch["index"][i]), int(batch["epoch"][i])
        rngs = [clip_rng(seed, epoch, index, c) for c in range(num_clips)] if train else None
        state: dict = {}
        pick = clip_picker(cfg, num_clips, float(batch["start_sec"][i]), float(batch["end_sec"][i]), rngs, state)
        try:
            clips, info = decode_clips(path, pick, short_side=short_side, num_threads=cfg.decode_threads,
                                       check_tail=cfg.decode_check_tail)
            views = np.stack([transform(clip, None if rngs is None else rngs[k])
                              for k, clip in enumerate(clips)])  # (N, V, 3, T, S, S)
        except DecodeError as err:
            record_skip(scope, split, epoch, index, path, err.reason, err.detail)
            continue
        except Exception as err:  # never let one video take the epoch down
            logger.exception("unexpected error on %s", path)
            record_skip(scope, split, epoch, index, path, "error", f"{type(err).__name__}: {err}")
            continue
        if info.truncated:
            record_skip(scope, split, epoch, index, path, "truncated",
                        f"{info.num_frames} of {info.num_frames + info.truncated} frames decode")
        if state.get("short"):
            record_skip(scope, split, epoch, index, path, "short", f"{state['length']} frames")
        out["video"].append(views.reshape(-1, *views.shape[2:]))
        count = num_clips * num_crops
        out["label"].append(np.full(count, batch["label"][i], np.int64))
        out["index"].append(np.full(count, index, np.int64))
        out["view"].append(np.arange(count, dtype=np.int64))
        if cfg.captions:
            caption = pick_caption(str(batch["captions"][i]), seed, epoch, index, train)
            out["caption"].append(np.full(count, caption, dtype=object))
    if not out["video"]:
        return empty_rows(cfg)
    return {name: np.concatenate(values) for name, values in out.items()}


# ---- public ------------------------------------------------------------------------------------
def build_dataset(
    cfg: DataConfig,
    split: Split,
    *,
    seed: int | None = None,
    epoch: int = 0,
    scope: str = "default",
    manifest: str | None = None,
    epochs: int = 1,
    records: list | None = None,
    wrap_decode: Callable[[Callable], Callable] | None = None,
):
    """Lazy ``ray.data.Dataset`` of clips for ``split`` (see the module doc for columns/seeding).

    ``seed`` defaults to ``cfg.seed``; ``epoch`` is the effective epoch of the first execution
    (pass the start epoch when resuming). ``scope`` names the skip ledger (``skip_report``).
    ``manifest`` overrides the split's manifest path from ``cfg``. ``epochs`` > 1 (training):
    one execution streams that many epochs back to back (each reshuffled and re-augmented as its
    own epoch), so a consumer iterating it once never waits for the pipeline to start again at
    an epoch boundary, and the next epoch's first clips are decoded while the current one ends.
    ``records``: the manifest's records already read (:class:`videomamba.data.splits.Splits`).
    ``wrap_decode(decode) -> decode``: wraps the decode stage's function, same in and out (``data
    bench`` times the work inside the decode tasks with it: :class:`videomamba.data.bench.DecodeProbe`).
    """
    seed = cfg.seed if seed is None else seed
    path = manifest or cfg.manifest_for(split)
    if records is None:
        records = read_manifest(path, classes_file=cfg.classes_file, path_prefix=cfg.path_prefix,
                                fmt=cfg.manifest_format)
    check_records(cfg, records, path)
    if cfg.captions:
        bad = [r for r in records if not r.captions]
        if bad:
            raise ValueError(f"{path}:{bad[0].line}: no caption ({len(bad)} rows without one; data.captions is true)")
    decode = partial(decode_batch, cfg=cfg, split=split, seed=seed, scope=scope)
    ds = stream_rows(
        cfg, to_columns(records, captions=cfg.captions), scope=scope, epochs=epochs,
        select=partial(select_rows, seed=seed, epoch=epoch, epochs=epochs, shuffle=split == "train" and cfg.shuffle),
        decode=wrap_decode(decode) if wrap_decode else decode,
    )
    logger.info("%s dataset: %d videos from %s (%s x%d views%s)", split, len(records), path, cfg.sampling,
                np.prod(cfg.views(split)), ", ordered" if cfg.deterministic else "")
    return ds


def check_records(cfg: DataConfig, records, path: str) -> None:
    """Raise ``ValueError`` naming the manifest line of the first label ``>= data.num_classes``."""
    if cfg.num_classes is not None:
        bad = [r for r in records if r.label >= cfg.num_classes]
        if bad:
            raise ValueError(f"{path}:{bad[0].line}: label {bad[0].label} >= num_classes {cfg.num_classes}")


def stream_rows(cfg: DataConfig, columns: dict[str, np.ndarray], *, select: Callable, decode: Callable,
                scope: str, epochs: int = 1):
    """The pipeline shared by every ``data.kind``: ``range(n * epochs)`` -> ``select(batch,
    manifest=<columns in the object store>)`` -> ``decode`` (``decode_batch_size`` rows per call),
    both stages with the decode resources (``decode_num_cpus``/``decode_concurrency``/
    ``decode_resources``) so Ray fuses them into one task per block; ordered delivery with
    ``cfg.deterministic``; the skip ledger ``scope`` exists before any task records to it."""
    import ray

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    ensure_ledger(scope)  # keeps the creating handle for the process's life
    n = len(columns["label"])
    manifest_ref = ray.put(columns)
    remote_args = {"num_cpus": cfg.decode_num_cpus, "concurrency": cfg.decode_concurrency}
    if cfg.decode_resources:
        remote_args["resources"] = dict(cfg.decode_resources)
    ds = ray.data.range(n * epochs, override_num_blocks=num_blocks(n * epochs, cfg.rows_per_block, cluster_cpus()))
    ds = ds.map_batches(partial(select, manifest=manifest_ref), batch_format="numpy", batch_size=None,
                        udf_modifying_row_count=False, **remote_args)
    ds = ds.map_batches(decode, batch_format="numpy", batch_size=cfg.decode_batch_size, **remote_args)
    ds.context.execution_options.preserve_order = cfg.deterministic  # shared by the derived datasets
    return ds


def ingest_options(ds):
    """Ray Train's ``ExecutionOptions`` for ``ds`` (its default ingest options, which Ray Train
    would otherwise take from the driver's ``DataContext``, keeping ``ds``'s ``preserve_order``)."""
    import ray.train

    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = bool(ds.context.execution_options.preserve_order)
    return options


def ingest_config(datasets: dict):
    """``ray.train.DataConfig`` that keeps each dataset's ordered delivery (``data.deterministic``):
    Ray Train would otherwise apply its default ingest options (unordered) to every shard."""
    import ray.train

    return ray.train.DataConfig(execution_options={name: ingest_options(ds) for name, ds in datasets.items()})


class TorchCollate:
    """``collate_fn`` for ``iter_torch_batches`` of datasets with string columns: numeric columns
    become tensors on ``device``, ``caption`` stays a list of ``B`` strings."""

    def __init__(self, device=None):
        self.device = device

    def __call__(self, batch: dict) -> dict:
        import torch

        out = {}
        for name, values in batch.items():
            if name == "caption":
                out[name] = [str(v) for v in values]
            else:
                tensor = torch.as_tensor(values)
                out[name] = tensor.to(self.device, non_blocking=True) if self.device is not None else tensor
        return out
