"""Image datasets on Ray Data (``data.kind: image``): ImageNet-style training of the
``num_frames=1`` VideoMamba through the same training, evaluation and tracking path as video.

Sources (``data.<split>_manifest``):

- a **class-per-folder** directory (``root/<class>/<image>``, torchvision ``ImageFolder`` layout;
  local or a pyarrow URI): classes are the sorted folder names of the TRAIN folder (or
  ``classes_file``), so a val folder missing a class keeps the same indices;
- a CSV/JSONL/list manifest (``path,label`` / ``path label``: also the ``train.txt`` / ``val.txt``
  lists of the DeiT/VideoMamba release and Caffe's ``val.txt`` for ImageNet's validation set), read by
  :func:`videomamba.data.manifest.read_manifest`;
- ImageNet's validation solution CSV (``LOC_val_solution.csv``: ``ImageId,PredictionString``;
  the label is the first WordNet id, looked up in ``classes_file`` or the train folder's classes;
  images are ``<ImageId>.JPEG`` under ``path_prefix``, default the CSV's directory).

Decoding (:func:`load_image`, PIL) runs in Ray Data CPU tasks, never in the training worker: the
EXIF orientation is applied (``ImageOps.exif_transpose``), every mode becomes 8-bit RGB (CMYK,
grayscale, palette, alpha dropped; 16-bit grayscale scaled by 1/257, not clipped). Unusable images
raise :class:`~videomamba.data.decode.DecodeError` with a reason in :data:`REASONS` (``missing``,
``empty``, ``unreadable``: not an image or an unsupported mode, ``truncated``) and are skipped and
counted through :mod:`videomamba.data.skips`, as bad videos are.

Transforms (:class:`ImageTransform`) are timm's ``create_transform``: DeiT training
(RandomResizedCrop, flip, AutoAugment/RandAugment, colour jitter without AA, random erasing) and
evaluation by resize (short side ``img_size / crop_pct``) then centre crop. Rows are
``video`` ``(3, 1, S, S)`` (1-frame clips: uint8 pixels with ``data.clip_dtype: uint8``, normalised by
the consumer, except training with random erasing, and evaluation with ``clip_dtype: float32``:
normalised float32; see :class:`ImageTransform`), ``label``, ``index`` (manifest row), ``view``
(0): the columns of :func:`videomamba.data.pipeline.build_dataset`, so objectives, the training
loop and evaluation are shared. Every random choice of row ``i`` in epoch ``e`` (repeat ``r``)
comes from ``(seed, e, i, r)``. Repeated augmentation (``data.image.repeated_aug = R``, DeiT's
RASampler) makes each epoch ``R`` consecutive differently augmented copies of ``n / R`` images.
"""

from __future__ import annotations

import io
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from videomamba import storage
from videomamba.data.config import DataConfig, Split
from videomamba.data.decode import DecodeError, load_source
from videomamba.data.manifest import ManifestError, VideoRecord, load_classes, read_manifest
from videomamba.data.pipeline import check_records, empty_rows, select_positions, split_transform, stream_rows
from videomamba.data.skips import record_skip

logger = logging.getLogger(__name__)

REASONS = ("missing", "empty", "unreadable", "truncated")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
_IMAGENET_VAL_HEADER = ("imageid", "predictionstring")
_SELECT_STREAM, _AUG_STREAM = 0x1A6E, 0xA06
_EXIF_ORIENTATION = 0x0112


# ---- manifests ---------------------------------------------------------------------------------
def _is_dir(path: str) -> bool:
    if not storage.is_uri(path):
        return os.path.isdir(path)
    import pyarrow.fs

    filesystem, fs_path = pyarrow.fs.FileSystem.from_uri(path)
    return filesystem.get_file_info(fs_path).type == pyarrow.fs.FileType.Directory


def _list_files(root: str) -> list[str]:
    """Every file under ``root`` as ``<class>/<...>/<name>`` relative paths (sorted)."""
    if not storage.is_uri(root):
        out = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            out += [os.path.relpath(os.path.join(dirpath, f), root) for f in sorted(filenames)]
        return out
    import pyarrow.fs

    filesystem, fs_path = pyarrow.fs.FileSystem.from_uri(root)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(fs_path, recursive=True))
    base = fs_path.rstrip("/") + "/"
    return sorted(i.path[len(base):] for i in infos if i.type == pyarrow.fs.FileType.File)


def folder_classes(root: str) -> list[str]:
    """Sorted class folder names of a class-per-folder ``root`` (hidden folders ignored)."""
    classes = sorted({rel.split("/")[0] for rel in _list_files(root) if "/" in rel.replace(os.sep, "/")})
    classes = [c for c in classes if not c.startswith(".")]
    if not classes:
        raise ManifestError(root, 1, "no class folders (expected root/<class>/<image>)")
    return classes


def read_folder(root: str, classes: list[str]) -> list[VideoRecord]:
    """Records of a class-per-folder ``root``: every image file (by extension) under ``root/<class>/``."""
    index = {name: i for i, name in enumerate(classes)}
    root = root if storage.is_uri(root) else os.path.abspath(root)  # workers may run in another cwd
    records, unknown = [], set()
    for rel in _list_files(root):
        parts = rel.replace(os.sep, "/").split("/")
        if len(parts) < 2 or parts[0].startswith(".") or not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            continue
        if parts[0] not in index:
            unknown.add(parts[0])
            continue
        records.append(VideoRecord(path=storage.join_prefix(root, rel), label=index[parts[0]], line=len(records) + 1))
    if unknown:
        raise ManifestError(root, 1, f"class folders not in the class list: {sorted(unknown)[:5]} "
                            f"({len(unknown)} in all; the classes come from data.classes_file or the train folder)")
    if not records:
        raise ManifestError(root, 1, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {root}/<class>/")
    return records


def read_imagenet_val_csv(path: str, classes: list[str], path_prefix: str | None = None) -> list[VideoRecord]:
    """ImageNet's ``LOC_val_solution.csv`` (``ImageId,PredictionString``; label = first WordNet id)."""
    import csv

    index = {name: i for i, name in enumerate(classes)}
    prefix = storage.dirname(path) if path_prefix is None else path_prefix
    records = []
    reader = csv.reader(io.StringIO(storage.read_text(path)))
    next(reader, None)
    for row in reader:
        if not row or not row[0].strip():
            continue
        line = reader.line_num
        wnid = row[1].split()[0] if len(row) > 1 and row[1].split() else ""
        if wnid not in index:
            raise ManifestError(path, line, f"unknown class {wnid!r} (not in the class list)")
        name = row[0].strip()
        name = name if name.lower().endswith(IMAGE_EXTENSIONS) else f"{name}.JPEG"
        records.append(VideoRecord(path=storage.join_prefix(prefix, name), label=index[wnid], line=line))
    if not records:
        raise ManifestError(path, 1, "manifest has no rows")
    return records


def _is_imagenet_val_csv(path: str) -> bool:
    if storage.is_uri(path) or not path.lower().endswith(".csv"):
        return False
    with open(path, encoding="utf-8-sig") as f:
        header = tuple(h.strip().lower() for h in f.readline().split(","))
    return header[:2] == _IMAGENET_VAL_HEADER


def class_names(cfg: DataConfig) -> list[str] | None:
    """``classes_file`` names, else the train folder's class folders, else None (integer labels)."""
    if cfg.classes_file:
        return load_classes(cfg.classes_file)
    if cfg.train_manifest and _is_dir(cfg.train_manifest):
        return folder_classes(cfg.train_manifest)
    return None


def read_records(cfg: DataConfig, split: str, manifest: str | None = None) -> list[VideoRecord]:
    """The split's images as records (``path``, ``label``) from any source in the module doc."""
    path = manifest or cfg.manifest_for(split)
    if _is_dir(path):
        classes = class_names(cfg) or folder_classes(path)
        return read_folder(path, classes)
    if _is_imagenet_val_csv(path):
        classes = class_names(cfg)
        if classes is None:
            raise ManifestError(path, 1, "ImageNet validation CSV needs data.classes_file or a class-per-folder train split")
        return read_imagenet_val_csv(path, classes, cfg.path_prefix)
    classes_file = cfg.classes_file
    if classes_file is None and cfg.train_manifest and _is_dir(cfg.train_manifest):
        # class names in the manifest: look them up in the train folder's classes
        return _read_with_classes(path, folder_classes(cfg.train_manifest), cfg)
    return read_manifest(path, classes_file=classes_file, path_prefix=cfg.path_prefix, fmt=cfg.manifest_format)


def is_image_source(path: str, **manifest_kwargs) -> bool:
    """Whether ``path`` holds images: a directory (class-per-folder), ImageNet's validation CSV, or
    a manifest whose every path has an image extension (:data:`IMAGE_EXTENSIONS`); ``manifest_kwargs``
    go to ``read_manifest`` (an unreadable manifest is not an image source)."""
    try:
        if _is_dir(path) or _is_imagenet_val_csv(path):
            return True
        records = read_manifest(path, require_labels=False, **manifest_kwargs)
    except Exception:  # noqa: BLE001 - the caller reports the manifest's own error
        return False
    return bool(records) and all(r.path.lower().endswith(IMAGE_EXTENSIONS) for r in records)


def _read_with_classes(path: str, classes: list[str], cfg: DataConfig) -> list[VideoRecord]:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(classes) + "\n")
    try:
        return read_manifest(path, classes_file=f.name, path_prefix=cfg.path_prefix, fmt=cfg.manifest_format)
    finally:
        os.unlink(f.name)


# ---- decoding ----------------------------------------------------------------------------------
def to_rgb(img) -> np.ndarray:
    """A PIL image of any mode -> uint8 ``(H, W, 3)``. 16-bit (``I;16*``) and 32-bit integer
    (``I``, as older Pillow opens 16-bit PNGs) grayscale is scaled from 0..65535 by 1/257; float
    (``F``) from 0..1 (or 0..255 when larger); palette images with transparency go through RGBA;
    CMYK, YCbCr, L, LA, RGBA, 1 by Pillow's ``convert("RGB")`` (alpha dropped)."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.rint(np.asarray(img).astype(np.float64) / 257.0)
        gray = np.clip(gray, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = a * 255.0 if np.nanmax(a) <= 1.0 else a
        gray = np.clip(np.rint(np.nan_to_num(a)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError as err:
            raise DecodeError("unreadable", f"unsupported image mode {mode}: {err}") from None
    return np.asarray(img, dtype=np.uint8)


def _reason(err: Exception) -> str:
    """``truncated`` when Pillow ran out of data (in the header or the pixels), else ``unreadable``."""
    return "truncated" if isinstance(err, EOFError) or "truncat" in str(err).lower() else "unreadable"


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image` found: ``format`` (Pillow's: JPEG, PNG, ...), ``mode`` as stored
    (RGB, L, CMYK, I;16, P, RGBA, ...), stored ``width`` x ``height`` in pixels, the EXIF
    ``orientation`` tag (1 = upright; 2-8 = mirrored and/or rotated, applied when decoding)."""

    format: str
    mode: str
    width: int
    height: int
    orientation: int = 1

    @property
    def rotation(self) -> int:
        """Degrees clockwise that the EXIF orientation turns the stored image (0, 90, 180, 270)."""
        return {3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}.get(self.orientation, 0)


def load_image(path: str, *, exif_transpose: bool = True) -> np.ndarray:
    """Decode one image file (local path or URI) -> uint8 RGB ``(H, W, 3)``, upright.

    Raises :class:`~videomamba.data.decode.DecodeError`: ``missing``, ``empty`` (zero bytes),
    ``unreadable`` (not an image, corrupt header, unsupported mode), ``truncated`` (data ends early).
    """
    return read_image(path, exif_transpose=exif_transpose)[0]


def read_image(path: str, *, exif_transpose: bool = True) -> tuple[np.ndarray, ImageInfo]:
    """:func:`load_image` and what was found in the file (:class:`ImageInfo`); same errors."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    source = load_source(path)  # missing / empty
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        img = Image.open(stream)
    except UnidentifiedImageError:
        raise DecodeError("unreadable", "not an image (Pillow cannot identify it)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DecodeError(_reason(err), f"{type(err).__name__}: {err}") from None
    try:
        with img:
            info = ImageInfo(format=img.format or "", mode=img.mode, width=img.width, height=img.height)
            try:
                img.load()
            except (OSError, SyntaxError, ValueError, EOFError) as err:
                raise DecodeError(_reason(err), f"{type(err).__name__}: {err}") from None
            if exif_transpose:
                try:
                    orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                    img = ImageOps.exif_transpose(img)
                    info = replace(info, orientation=orientation)
                except Exception as err:  # a malformed EXIF block: keep the stored orientation
                    logger.warning("ignoring unreadable EXIF orientation of %s: %s", path, err)
            return to_rgb(img), info
    except DecodeError:
        raise
    except Exception as err:  # any other Pillow failure on this file
        raise DecodeError("unreadable", f"{type(err).__name__}: {err}") from None


# ---- transforms --------------------------------------------------------------------------------
def posterize(img, bits_to_keep: int, **_):
    """timm's ``posterize`` as it behaved with the Pillow the recipes were run with: 0 bits kept is a
    black image (TPU EfficientNet's AutoAugment ``v0`` draws it: ``('Posterize', 0.8, 2)``; RandAugment's
    ``PosterizeIncreasing`` at magnitude 10). Recent Pillow (13.0 here) raises ``ValueError`` for 0 bits, so
    those draws would drop the image as an ``error``."""
    from timm.data import auto_augment

    if bits_to_keep <= 0:
        return img.point([0] * 256 * len(img.getbands()))
    return auto_augment.posterize(img, bits_to_keep)


def _zero_bit_posterize(transform) -> None:
    """Swap :func:`posterize` into every timm AutoAugment / RandAugment op of ``transform``."""
    from timm.data import auto_augment

    for t in getattr(transform, "transforms", []):
        ops = list(getattr(t, "ops", None) or []) + [op for sub in getattr(t, "policy", None) or [] for op in sub]
        for op in ops:
            if getattr(op, "aug_fn", None) is auto_augment.posterize:
                op.aug_fn = posterize


class ImageTransform:
    """timm ``create_transform`` for a split: ``(uint8 (H, W, 3), seed) -> float32 (3, S, S)``, or with
    ``normalize=False`` uint8 ``(3, S, S)`` pixels (the transforms before timm's ToTensor; the consumer
    normalises, :mod:`videomamba.data.normalize`), except in training with random erasing
    (``image.re_prob`` > 0), which draws its noise in normalised units: then float32 always
    (``self.dtype`` says which).

    Training: DeiT's RandomResizedCrop(``train_scale``, ``train_ratio``, ``image.interpolation``),
    horizontal flip (``hflip``), ``image.auto_augment`` (or colour jitter without it), ToTensor,
    normalise, RandomErasing(``re_prob``, ``re_mode``, ``re_count``). Evaluation: resize the short
    side to ``int(img_size / crop_pct)``, centre crop ``img_size``, normalise. With a ``seed`` the
    random draws (Python, NumPy and torch generators, which timm uses) are replayed from it and the
    process's generator states are restored afterwards.
    """

    def __init__(self, cfg: DataConfig, split: str, normalize: bool = True):
        from timm.data import create_transform
        from torchvision import transforms as tv

        self.train = split == "train"
        img = cfg.image
        common = {"input_size": cfg.img_size, "mean": tuple(cfg.mean), "std": tuple(cfg.std)}
        if self.train:
            self.transform = create_transform(
                is_training=True, scale=tuple(cfg.train_scale), ratio=tuple(cfg.train_ratio),
                hflip=0.5 if cfg.hflip else 0.0, vflip=0.0, color_jitter=img.color_jitter,
                auto_augment=img.auto_augment, interpolation=img.interpolation,
                re_prob=img.re_prob, re_mode=img.re_mode, re_count=img.re_count, **common,
            )
        else:
            self.transform = create_transform(
                is_training=False, interpolation=img.eval_interpolation, crop_pct=img.crop_pct, **common
            )
        _zero_bit_posterize(self.transform)
        self.pixels = None  # the PIL-side transforms, when uint8 pixels are shipped
        if not normalize and not (self.train and img.re_prob > 0):
            steps = self.transform.transforms
            cut = next(i for i, t in enumerate(steps) if type(t).__name__ in ("ToTensor", "MaybeToTensor"))
            self.pixels = tv.Compose(steps[:cut])
        self.dtype = np.dtype(np.uint8 if self.pixels is not None else np.float32)

    def _apply(self, pil) -> np.ndarray:
        if self.pixels is None:
            return self.transform(pil).numpy()
        return np.ascontiguousarray(np.asarray(self.pixels(pil).convert("RGB"), dtype=np.uint8).transpose(2, 0, 1))


    def __call__(self, image: np.ndarray, seed: int | None = None) -> np.ndarray:
        import torch
        from PIL import Image

        pil = Image.fromarray(image)
        if seed is None:
            return self._apply(pil)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(seed)
                np.random.seed(seed % 2**32)
                torch.manual_seed(seed)
                return self._apply(pil)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def augment_seed(seed: int, epoch: int, index: int, repeat: int = 0) -> int:
    """The seed of every random augmentation of manifest row ``index`` (copy ``repeat``) in ``epoch``."""
    return int(np.random.SeedSequence([_AUG_STREAM, seed, epoch, index, repeat]).generate_state(1, np.uint64)[0] >> 1)


def epoch_rows(n: int, seed: int, epoch: int, shuffle: bool, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """(manifest row, repeat) of each of the epoch's ``n`` positions: a permutation of the rows,
    each repeated ``repeats`` times in a row and cut to ``n`` (DeiT's RASampler, one process)."""
    rows = np.random.default_rng([_SELECT_STREAM, seed, epoch]).permutation(n) if shuffle else np.arange(n)
    if repeats <= 1:
        return rows, np.zeros(n, np.int64)
    return np.repeat(rows, repeats)[:n], np.tile(np.arange(repeats), n)[:n]


# ---- the Ray Data pipeline (stages of videomamba.data.pipeline.stream_rows) ----------------------
_ORDERS: dict = {}


def image_order(n: int, seed: int, epoch: int, *, shuffle: bool, repeats: int) -> tuple[np.ndarray, dict]:
    """``select_positions``'s ``order`` for images: :func:`epoch_rows` (cached per process), the
    repeat index as the extra ``repeat`` column."""
    key = (n, seed, epoch, shuffle, repeats)
    if key not in _ORDERS:
        if len(_ORDERS) > 4:
            _ORDERS.clear()
        _ORDERS[key] = epoch_rows(n, seed, epoch, shuffle, repeats)
    rows, repeat = _ORDERS[key]
    return rows, {"repeat": repeat}


def select_images(batch: dict, *, manifest, seed: int, epoch: int, shuffle: bool, repeats: int,
                  epochs: int = 1) -> dict:
    """``{"id": (m,)}`` positions -> the images (path, label, index, repeat, epoch) at those positions
    (``pipeline.select_positions`` with :func:`image_order`)."""
    return select_positions(batch, manifest=manifest, seed=seed, epoch=epoch, epochs=epochs,
                            order=partial(image_order, shuffle=shuffle, repeats=repeats))


def decode_images(batch: dict, *, cfg: DataConfig, split: str, seed: int, scope: str,
                  record: Callable | None = None) -> dict:
    """Image rows -> ``video (N, 3, 1, S, S)`` rows; unusable images are dropped and counted (``record``,
    default :func:`~videomamba.data.skips.record_skip`), never raised."""
    record_skip = record or globals()["record_skip"]
    train = split == "train"
    transform = split_transform(cfg, split, ImageTransform)
    out: dict[str, list] = {"video": [], "label": [], "index": [], "view": []}
    for i in range(len(batch["index"])):
        path, index, epoch = str(batch["path"][i]), int(batch["index"][i]), int(batch["epoch"][i])
        try:
            image = load_image(path, exif_transpose=cfg.image.exif_transpose)
            x = transform(image, augment_seed(seed, epoch, index, int(batch["repeat"][i])) if train else None)
        except DecodeError as err:  # dropped whatever the reason (a truncated image has no usable part)
            record_skip(scope, split, epoch, index, path, err.reason, err.detail, kept=False, what="image")
            continue
        except Exception as err:  # never let one image take the epoch down
            logger.exception("unexpected error on %s", path)
            record_skip(scope, split, epoch, index, path, "error", f"{type(err).__name__}: {err}", kept=False,
                        what="image")
            continue
        out["video"].append(x[:, None])
        out["label"].append(int(batch["label"][i]))
        out["index"].append(index)
        out["view"].append(0)
    if not out["video"]:
        return empty_rows(cfg, transform.dtype)
    return {
        "video": np.stack(out["video"]),
        "label": np.asarray(out["label"], np.int64),
        "index": np.asarray(out["index"], np.int64),
        "view": np.asarray(out["view"], np.int64),
    }


def build_image_dataset(
    cfg: DataConfig,
    split: Split,
    *,
    seed: int | None = None,
    epoch: int = 0,
    scope: str = "default",
    manifest: str | None = None,
    epochs: int = 1,
    records: list[VideoRecord] | None = None,
):
    """Lazy ``ray.data.Dataset`` of images for ``split``; the contract of
    :func:`videomamba.data.pipeline.build_dataset` (columns, epochs, seeds, ``scope``, ``records``)
    with ``video`` of shape ``(3, 1, S, S)`` and one view per image."""
    seed = cfg.seed if seed is None else seed
    if records is None:
        records = read_records(cfg, split, manifest)
    source = manifest or cfg.manifest_for(split)
    check_records(cfg, records, source)
    columns = {"path": np.array([r.path for r in records], dtype=object),
               "label": np.array([r.label for r in records], dtype=np.int64)}
    train = split == "train"
    ds = stream_rows(
        cfg, columns, scope=scope, epochs=epochs,
        select=partial(select_images, seed=seed, epoch=epoch, epochs=epochs, shuffle=train and cfg.shuffle,
                       repeats=cfg.image.repeated_aug if train else 1),
        decode=partial(decode_images, cfg=cfg, split=split, seed=seed, scope=scope),
    )
    logger.info("%s image dataset: %d images from %s", split, len(records), source)
    return ds
