"""The configured data of one run, read once: :class:`Splits` reads each manifest (train / val /
test, or an override), the classes file and the captions the first time they are asked for and
keeps them, so the checks before a run, the datasets, the class names, the counts and the
captions all come from one read of each file.

Videos: manifests in any format of :func:`videomamba.data.manifest.read_manifest`; images: a
class-per-folder directory, a manifest or ImageNet's validation CSV
(:func:`videomamba.data.images.read_records`).
"""

from __future__ import annotations

import logging
import os
from videomamba import storage
from videomamba.data.config import DataConfig
from videomamba.data.manifest import ClassIndex, VideoRecord

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class Splits:
    """``cfg``'s splits, each manifest read at most once (lazily, then kept).

    ``manifests`` overrides the manifest of a split (``{"test": "other.csv"}``: ``videomamba
    evaluate --manifest``). Reading errors (``ManifestError``, ``ValueError``, ``OSError``)
    propagate; a failed read is retried on the next call.
    """

    def __init__(self, cfg: DataConfig, manifests: dict[str, str | None] | None = None):
        self.cfg = cfg
        self._manifests = {k: v for k, v in (manifests or {}).items() if v}
        self._records: dict[str, list[VideoRecord]] = {}
        self._classes: ClassIndex | None = None
        self._class_names: list[str] | None = None

    # ---- what is configured --------------------------------------------------------------
    def has(self, split: str | None) -> bool:
        """Whether ``split`` has a manifest (configured or overridden)."""
        return bool(split) and bool(self._manifests.get(split) or getattr(self.cfg, f"{split}_manifest", None))

    def manifest(self, split: str) -> str:
        """The split's manifest path (``ValueError`` when none is set)."""
        return self._manifests.get(split) or self.cfg.manifest_for(split)

    @property
    def configured(self) -> list[str]:
        """The splits with a manifest, in train / val / test order."""
        return [s for s in SPLITS if self.has(s)]

    # ---- reads (once each) ---------------------------------------------------------------
    def _class_index(self) -> ClassIndex | None:
        if self._classes is None and self.cfg.classes_file:
            from videomamba.data.manifest import read_classes

            self._classes = read_classes(self.cfg.classes_file)
        return self._classes

    def file_class_names(self) -> list[str] | None:
        """The names listed in ``data.classes_file`` (None without one)."""
        index = self._class_index()
        return None if index is None else list(index.names)

    def records(self, split: str) -> list[VideoRecord]:
        """The split's manifest records (``VideoRecord``: path, label, captions, line)."""
        if split not in self._records:
            cfg = self.cfg
            if cfg.kind == "image":
                from videomamba.data.images import read_records

                records = read_records(cfg, split, self._manifests.get(split))
            else:
                from videomamba.data.manifest import read_manifest

                records = read_manifest(self.manifest(split), classes_file=cfg.classes_file,
                                        path_prefix=cfg.path_prefix, fmt=cfg.manifest_format,
                                        classes=self._class_index())
            self._records[split] = records
        return self._records[split]

    def class_names(self) -> list[str]:
        """``classes_file`` names; for images else the train folder's class folders; else
        ``0..num_classes-1``; else ``0..max label`` of the train manifest. Raises ``ValueError``
        when ``data.num_classes`` contradicts the classes file."""
        if self._class_names is None:
            cfg = self.cfg
            names = None
            if cfg.kind == "image":
                from videomamba.data.images import class_names as image_class_names

                names = image_class_names(cfg)
            elif cfg.classes_file:
                names = list(self._class_index().names)
            if names is not None:
                if cfg.num_classes is not None and cfg.num_classes != len(names):
                    raise ValueError(f"data.num_classes={cfg.num_classes} but {cfg.classes_file or cfg.train_manifest} "
                                     f"lists {len(names)} classes")
            elif cfg.num_classes:
                names = [str(i) for i in range(cfg.num_classes)]
            else:
                names = [str(i) for i in range(max(r.label for r in self.records("train")) + 1)]
            self._class_names = names
        return list(self._class_names)

    def num_videos(self, split: str) -> int:
        """Videos (rows) in the split's manifest, without decoding anything."""
        return len(self.records(split))

    def num_train_rows(self) -> int:
        """Rows (clips) one training epoch yields: videos x ``data.clips_per_video``; the loop's
        steps per epoch and the schedules are derived from it."""
        return self.num_videos("train") * self.cfg.clips_per_video

    def captions(self, split: str) -> list[list[str]]:
        """The captions of each row of the split's manifest, in manifest order."""
        return [list(r.captions) for r in self.records(split)]

    def is_prepared(self, split: str = "train") -> bool:
        """Whether the split's manifest was written by ``videomamba data prepare`` (its report lies beside it)."""
        return is_prepared(self.manifest(split) if self.has(split) else None)

    # ---- datasets --------------------------------------------------------------------------
    def dataset(self, split: str, *, seed: int = 0, epoch: int = 0, scope: str = "default", epochs: int = 1):
        """The split's lazy ``ray.data.Dataset`` (``build_dataset`` / ``build_image_dataset``) from
        the records read here."""
        if self.cfg.kind == "image":
            from videomamba.data.images import build_image_dataset as build
        else:
            from videomamba.data.pipeline import build_dataset as build
        return build(self.cfg, split, seed=seed, epoch=epoch, scope=scope, manifest=self._manifests.get(split),
                     epochs=epochs, records=self.records(split))


def is_prepared(manifest: str | None) -> bool:
    """Whether ``manifest`` was written by ``videomamba data prepare`` (its report lies beside it)."""
    if not manifest or storage.is_uri(manifest):
        return False
    return os.path.exists(os.path.join(os.path.dirname(os.path.abspath(manifest)), "prepare_report.json"))
