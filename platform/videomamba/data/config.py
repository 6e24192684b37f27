"""``DataConfig``: the ``data:`` section of a training config (pydantic, ``extra="forbid"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from videomamba.data.normalize import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (re-exported)

Split = Literal["train", "val", "test"]


class ImageConfig(BaseModel):
    """``data.image``: DeiT-style image augmentation (``data.kind: image``), as timm's
    ``create_transform`` arguments. Defaults are DeiT's / the VideoMamba image recipe's
    (``videomamba/image_sm/main.py`` of the authors' release)."""

    model_config = ConfigDict(extra="forbid")

    auto_augment: str | None = Field(
        "rand-m9-mstd0.5-inc1", description="timm AutoAugment/RandAugment spec ('v0' for VideoMamba-Ti) or null"
    )
    color_jitter: float | None = Field(0.3, ge=0, description="timm applies it only without auto_augment")
    interpolation: Literal["bicubic", "bilinear", "random"] = "bicubic"
    crop_pct: float = Field(0.875, gt=0, le=1, description="eval: resize the short side to img_size / crop_pct, centre crop")
    eval_interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    re_prob: float = Field(0.25, ge=0, le=1, description="random erasing probability")
    re_mode: Literal["pixel", "rand", "const"] = "pixel"
    re_count: int = Field(1, ge=1)
    repeated_aug: int = Field(1, ge=1, description="repeated augmentation: each image r times per epoch (DeiT: 3)")
    exif_transpose: bool = Field(True, description="apply the EXIF orientation before anything else")


class DataConfig(BaseModel):
    """Where the videos are and how clips are sampled, decoded and augmented.

    Paths in a manifest are joined to ``path_prefix`` when relative (default: the
    manifest's own directory); they may be local paths or pyarrow filesystem URIs
    (``s3://``, ``gs://``, ``file://``...).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["video", "image"] = Field(
        "video", description="image: image files decoded as 1-frame clips (3, 1, S, S) for the num_frames=1 model"
    )
    image: ImageConfig = Field(default_factory=ImageConfig, description="augmentation of data.kind: image")

    # --- manifests -----------------------------------------------------------------
    train_manifest: str | None = None
    val_manifest: str | None = None
    test_manifest: str | None = None
    classes_file: str | None = Field(None, description="one class name a line, or JSON {name: idx} / [names]")
    path_prefix: str | None = Field(None, description="joined to relative manifest paths (default: manifest dir)")
    manifest_format: Literal["auto", "csv", "jsonl", "list", "ssv2_json"] = "auto"
    num_classes: int | None = Field(None, ge=1, description="checked against the labels when set")
    captions: bool = Field(
        False, description="emit a `caption` column (video-text training): one of the row's captions, "
        "drawn anew every epoch in training, the first one in evaluation; every row needs one"
    )

    max_skip_fraction: float = Field(
        0.05, ge=0, le=1,
        description="most videos of a split that may be skipped (unreadable, missing...) in one epoch, "
        "validation pass or evaluation, as a fraction of its manifest rows; more stops the run FAILED. "
        "0: no bad video tolerated. Default 5%: a few missing/broken files of a scraped dataset (Kinetics "
        "copies lose some) are tolerated, a broken path prefix or codec is not",
    )

    # --- temporal sampling ---------------------------------------------------------
    num_frames: int = Field(8, ge=1, description="T, frames per clip")
    sampling: Literal["segment", "dense"] = "segment"
    frame_stride: int = Field(4, ge=1, description="dense sampling stride (frames)")
    clips_per_video: int = Field(
        1, ge=1, description="training clips per decoded video (repeated sampling, the `num_sample` of the "
        "VideoMamba/UniFormerV2 loaders): one decode of the union of their frames, each clip with its own "
        "frame offsets and augmentation from (seed, epoch, row, clip). An epoch yields k rows per video: "
        "k x the steps at the same train.batch_size, schedules (per update, in epochs) stretch with them, "
        "and the k clips of a video usually share a batch (about B/k distinct videos per batch)"
    )

    # --- spatial ---------------------------------------------------------------------
    img_size: int = Field(224, ge=8, description="output H = W")
    short_side_size: int | None = Field(None, description="eval short-side resize (default img_size)")
    decode_short_side: int | None = Field(
        None, description="train: decode downscaled to this short side (default round(img_size*8/7)); 0 = native"
    )
    train_scale: tuple[float, float] = (0.08, 1.0)
    train_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = Field(True, description="random horizontal flip in training (off for SSv2-like data)")
    randaugment: str | None = Field("rand-m7-n4-mstd0.5-inc1", description="timm RandAugment spec or null")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    clip_dtype: Literal["uint8", "float32"] = Field(
        "uint8", description="dtype of the pipeline's video column: uint8 pixels, normalised with mean/std by the "
        "consumer on its device (the training worker's GPU, the inference actors), 4x fewer bytes through Ray's "
        "object store and the host-to-GPU copy (benchmarks/data_pipeline.md); float32: normalised in the decode "
        "task (the former behaviour). The model's input is the same either way (videomamba.data.normalize)"
    )

    # --- evaluation views (rows per video = num_clips * num_crops) --------------------
    val_num_clips: int = Field(1, ge=1)
    val_num_crops: Literal[1, 3] = 1
    test_num_clips: int = Field(4, ge=1)
    test_num_crops: Literal[1, 3] = 3

    # --- Ray Data execution ------------------------------------------------------------
    shuffle: bool = Field(True, description="reshuffle the training manifest every epoch")
    seed: int = 0
    deterministic: bool = Field(
        True, description="ordered delivery (Ray Data preserve_order): the same clips in the same order to every "
        "training worker and evaluator whatever the decode tasks' number or timing; False lets a fast decode task "
        "overtake a slow one (batches then depend on timing; cost measured in benchmarks/determinism.md)"
    )
    decode_num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per decode task")
    decode_concurrency: int | None = Field(None, ge=1, description="max concurrent decode tasks (None: auto)")
    decode_resources: dict[str, float] = Field(
        default_factory=dict, description="extra Ray resources per decode task, e.g. {'decode_node': 0.01}"
    )
    decode_threads: int = Field(1, ge=0, description="decord threads per reader (0: auto)")
    decode_batch_size: int = Field(4, ge=1, description="clips per map_batches call")
    decode_check_tail: bool = Field(
        True, description="decode each video's last indexed frame with every clip, so a damaged (truncated) file "
        "is found and decoded up to its last good frame on every visit, whatever the clip samples; costs the "
        "frames from a clip's last one to the end (measured ~5-10% on sparse 8-frame clips); off only for data "
        "known intact (e.g. written by `data prepare`)"
    )
    rows_per_block: int = Field(16, ge=1, description="manifest rows per Ray Data block (= decode task)")
    prefetch_batches: int = Field(2, ge=0, description="iter_torch_batches prefetch in the training worker")
    pin_memory: bool = Field(
        True, description="training on CUDA: batches collated into pinned host memory (Ray Data pin_memory), "
        "so the host-to-GPU copy in the fetch thread does not stall the step (measured: 0.94x -> 1.00x of the "
        "model-only clips/s, benchmarks/e2e.md)"
    )
    stream_epochs: bool = Field(
        True, description="training: one Ray Data execution streams all epochs back to back (each reshuffled "
        "as its own epoch), so the pipeline does not start again (idle GPUs) at every epoch boundary"
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        for name in ("train_scale", "train_ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if self.train_scale[1] > 1:
            raise ValueError("train_scale upper bound must be <= 1")
        if self.short_side_size is not None and self.short_side_size < self.img_size:
            raise ValueError("short_side_size must be >= img_size")
        if self.kind == "image":
            self._check_image()
        return self

    def _check_image(self) -> None:
        """Images are 1-frame clips; video-only settings set explicitly are errors, not ignored."""
        if self.num_frames != 1:
            if "num_frames" in self.model_fields_set:
                raise ValueError(f"data.num_frames: must be 1 for data.kind image, got {self.num_frames}")
            self.num_frames = 1
        video_only = {"randaugment": "data.image.auto_augment", "captions": None, "sampling": None,
                      "test_num_clips": None, "test_num_crops": None, "val_num_clips": None, "val_num_crops": None,
                      "clips_per_video": "data.image.repeated_aug"}
        for name, instead in video_only.items():
            if name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default:
                hint = f"; use {instead}" if instead else ""
                raise ValueError(f"data.{name}: applies to videos only (data.kind is image){hint}")

    # --- derived ---------------------------------------------------------------------
    def manifest_for(self, split: Split) -> str:
        path = {"train": self.train_manifest, "val": self.val_manifest, "test": self.test_manifest}[split]
        if not path:
            raise ValueError(f"data.{split}_manifest is not set")
        return path

    def views(self, split: Split) -> tuple[int, int]:
        """(temporal clips, spatial crops) per video for ``split``; (1, 1) for train."""
        if split == "train" or self.kind == "image":
            return 1, 1
        if split == "val":
            return self.val_num_clips, self.val_num_crops
        return self.test_num_clips, self.test_num_crops

    @property
    def eval_short_side(self) -> int:
        return self.short_side_size or self.img_size

    @property
    def train_short_side(self) -> int:
        """Target short side of decoded training frames (0: decode at native size)."""
        if self.decode_short_side is None:
            return round(self.img_size * 8 / 7)
        return self.decode_short_side
