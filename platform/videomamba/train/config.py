"""The training config: a YAML file validated by pydantic (``extra="forbid"``), with
``--set dotted.key=value`` overrides. Errors name the dotted field before any Ray worker starts."""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import os
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator
from pydantic import create_model as create_pydantic_model

from videomamba.data import DataConfig
from videomamba.models.scan_order import SCAN_ORDERS
from videomamba.models.spec import ModelSpec
from videomamba.models.videomamba import VideoMamba
from videomamba.objectives import ObjectiveConfig, SupervisedConfig
from videomamba.ops import BACKENDS
from videomamba.train.optim import DEFAULT_NO_WEIGHT_DECAY

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config that does not validate; the message lists ``dotted.field: problem`` lines."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ScanOrder = Literal[tuple(SCAN_ORDERS)]  # the scan orders of the paper's ablation (models/scan_order.py)
Backend = Literal[tuple(BACKENDS)]  # selective-scan implementations (ops)

#: ``VideoMamba`` arguments with a typed field of their own, so not ``model.overrides`` keys; the
#: overrides of old configs (and of old checkpoints' recorded configs) that set them -> the new key
_MOVED_OVERRIDES = {"scan_order": "model.scan_order", "backend": "model.backend",
                    "use_checkpoint": "model.checkpoint_blocks", "checkpoint_num": "model.checkpoint_blocks",
                    "num_classes": "model.num_classes", "drop_path_rate": "model.drop_path_rate"}
#: old dotted keys -> new ones (search spaces, which must use the new ones)
MOVED_KEYS = {f"model.overrides.{old}": new for old, new in _MOVED_OVERRIDES.items()}


def _model_overrides() -> type[BaseModel]:
    """``model.overrides``: every ``VideoMamba`` constructor argument without a typed field of its
    own (sizes: embed_dim, depth, patch_size, kernel_size, num_frames, img_size; mixer: d_state,
    d_conv, expand, ssm_cfg; dropout rates, ...), typed by the constructor's annotations and
    optional (unset: the variant's value). Generated from the signature, so it cannot drift."""
    hints = typing.get_type_hints(VideoMamba.__init__)
    fields = {name: (hints[name] | None, Field(None, description=f"VideoMamba({name}=...)"))
              for name in inspect.signature(VideoMamba.__init__).parameters
              if name != "self" and name not in _MOVED_OVERRIDES}
    return create_pydantic_model("ModelOverrides", __base__=_Overrides, **fields)


class _Overrides(_Section):
    @model_serializer(mode="wrap")
    def _set_only(self, handler):  # unset arguments are not written (configs, MLflow params, meta)
        return {k: v for k, v in handler(self).items() if v is not None}


ModelOverrides = _model_overrides()


class ModelSection(_Section):
    """The model: a registered variant, the paper's knobs as typed fields, other constructor
    arguments in ``overrides``. :meth:`spec` resolves it into the ``ModelSpec`` that is built."""

    name: str = Field("videomamba_tiny", description="registered variant (videomamba.list_models())")
    scan_order: ScanOrder = Field("spatial_first", description="token order of the SSM scans (paper Table 1 "
                                  "ablation; models/scan_order.py SCAN_ORDERS)")
    backend: Backend = Field("auto", description="selective-scan implementation: auto (the fastest installed: triton > mamba_ssm > torch "
                             "on CUDA, torch on CPU), torch, triton, mamba_ssm, reference")
    checkpoint_blocks: int = Field(0, ge=0, description="gradient checkpointing: the first N blocks recompute their "
                                   "activations in the backward pass (less memory, a slower step; the authors' "
                                   "use_checkpoint + checkpoint_num); 0: off; N >= depth: every block")
    overrides: ModelOverrides = Field(  # type: ignore[valid-type]
        default_factory=ModelOverrides, description="other VideoMamba arguments (embed_dim, depth, patch_size, "
                                                    "kernel_size, d_state, ...); unset: the variant's")
    num_classes: int | None = Field(None, ge=1, description="default: the number of classes in the data")
    drop_path_rate: float = Field(0.1, ge=0, lt=1)
    pretrained: str | None = Field(None, description="checkpoint to fine-tune from (load_checkpoint)")
    inflate: Literal["center", "average"] = Field("center", description="how a 2-D patch embedding is inflated")
    pretrained_grid: tuple[int, int] | None = Field(
        None, description="patch grid (rows, cols) the pretrained checkpoint was trained at, for a non-square one "
                          "without metadata (default: its meta.json, else square)")

    @model_validator(mode="before")
    @classmethod
    def _moved_overrides(cls, value: Any) -> Any:
        """Old spelling (``model.overrides.scan_order``, ``overrides: {backend: triton}``, ...), as in
        configs and checkpoints written before these fields were typed: moved to the typed field
        with a warning naming the new key; an error when both spellings disagree."""
        if not isinstance(value, dict) or not isinstance(value.get("overrides"), dict):
            return value
        overrides = dict(value["overrides"])
        old = {k: overrides.pop(k) for k in list(overrides) if k in _MOVED_OVERRIDES}
        if not old:
            return value
        value = {**value, "overrides": overrides}
        moved = {k: v for k, v in old.items() if k not in ("use_checkpoint", "checkpoint_num")}
        if "use_checkpoint" in old or "checkpoint_num" in old:  # the model checkpoints blocks i < checkpoint_num
            moved["checkpoint_blocks"] = int(old.get("checkpoint_num") or 0) if old.get("use_checkpoint") else 0
        for key, new in moved.items():
            spelt = ", ".join(f"model.overrides.{k}" for k in old if _MOVED_OVERRIDES[k] == f"model.{key}")
            if key in value and value[key] != new:
                raise ValueError(f"{spelt}: the old spelling of model.{key} ({new!r}) disagrees with model.{key} "
                                 f"({value[key]!r}); remove {spelt}")
            value[key] = new
            logger.warning("%s is now model.%s: read as model.%s: %r (write it there; the old spelling will be "
                           "refused in a future release)", spelt, key, key, new)
        return value

    def spec(self, data: Any, num_classes: int) -> ModelSpec:
        """The ``ModelSpec`` of this section for ``data`` (frames and image size, unless
        ``overrides`` sets them) with ``num_classes`` classes (unless ``model.num_classes``)."""
        kwargs: dict[str, Any] = {"num_classes": self.num_classes or num_classes}
        for key in ("num_frames", "img_size"):
            value = getattr(data, key, None)
            if value is not None:
                kwargs[key] = value
        kwargs["drop_path_rate"] = self.drop_path_rate
        kwargs.update(self.overrides.model_dump())
        kwargs.update(scan_order=self.scan_order, backend=self.backend)
        if self.checkpoint_blocks:
            kwargs.update(use_checkpoint=True, checkpoint_num=self.checkpoint_blocks)
        return ModelSpec(self.name, kwargs)


class OptimSection(_Section):
    lr: float = Field(2e-4, gt=0, description="peak lr at reference_batch_size")
    reference_batch_size: int | None = Field(
        512, ge=1, description="lr is scaled by global_batch / this (None: lr used as is)"
    )
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    no_weight_decay: list[str] = Field(default_factory=lambda: list(DEFAULT_NO_WEIGHT_DECAY))
    layer_decay: float = Field(1.0, gt=0, le=1, description="layer-wise lr decay (1: off)")
    clip_grad: float | None = Field(None, gt=0, description="max grad norm (None: no clipping)")


class ScheduleSection(_Section):
    name: Literal["cosine"] = "cosine"
    warmup_epochs: float = Field(5, ge=0)
    warmup_lr: float = Field(1e-6, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    warmup_prefix: bool = True


class EmaSection(_Section):
    decay: float = Field(0.9999, gt=0, lt=1)
    warmup: bool = False
    evaluate: bool = Field(True, description="validate (and save as model.pt) the EMA weights")


class TrainSection(_Section):
    epochs: int = Field(70, ge=1)
    batch_size: int = Field(8, ge=1, description="per worker, per step")
    grad_accum: int = Field(1, ge=1, description="steps per optimizer update")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    ema: EmaSection | None = None
    seed: int = Field(0, description="seeds weights, dropout, augmentation, sampling and shuffling (data.deterministic: same batches)")
    deterministic_algorithms: bool = Field(
        False, description="torch.use_deterministic_algorithms + cuDNN/cuBLAS settings: bit-exact GPU reruns at some "
        "speed cost; needs the torch scan backend on CUDA (triton/mamba_ssm backwards use atomics). CPU runs are "
        "deterministic without it"
    )
    eval_every: int = Field(1, ge=1, description="validate every N epochs (and at the end)")
    checkpoint_every: int = Field(1, ge=1, description="checkpoint every N epochs (and at the end)")
    keep_checkpoints: int = Field(2, ge=1, description="best-k checkpoints kept")
    checkpoint_metric: str = "val/top1"
    checkpoint_mode: Literal["max", "min"] = "max"
    log_every: int = Field(10, ge=1, description="log step metrics every N optimizer updates")
    val_split: str | None = Field("val", description="split validated during training (None: none)")
    shuffle_buffer: int = Field(0, ge=0, description="worker-side local shuffle buffer in clips (0: off)")


class EvalSection(_Section):
    """Multi-view evaluation of the best checkpoint on Ray Data after training (and `evaluate`)."""

    at_end: bool = True
    split: str = "test"
    batch_size: int = Field(8, ge=1)
    num_actors: int = Field(1, ge=1, description="predictor actors (each takes a GPU when the cluster has GPUs)")


class ScalingSection(_Section):
    num_workers: int = Field(2, ge=1)
    gpus_per_worker: float | None = Field(None, ge=0, description="None: 1 if the cluster has GPUs, else CPU")
    cpus_per_worker: float = Field(1, gt=0)
    resources_per_worker: dict[str, float] = Field(
        default_factory=dict, description="extra Ray resources per worker, e.g. {train_node: 0.001} (cluster.yaml)"
    )
    max_failures: int = Field(0, ge=-1, description="worker-group failures survived (-1: unlimited)")
    placement_timeout_s: float = Field(
        600.0, gt=0, description="longest wait for the workers' resources before the run fails (train/resources.py)"
    )


class MlflowSection(_Section):
    tracking_uri: str | None = Field(None, description="default: $MLFLOW_TRACKING_URI, else sqlite under run.root")
    experiment: str = "videomamba"
    run_name: str | None = None
    register_model: str | None = Field(None, description="registered model name for the best checkpoint")
    log_model: bool = Field(True, description="log the best model as an MLflow model (with signature)")


class RunSection(_Section):
    name: str | None = Field(None, description="Ray Train run name (default: <experiment>-<timestamp>)")
    root: str = Field("runs", description="local run directory (MLflow store default, checkpoints default)")
    storage_path: str | None = Field(None, description="local dir or URI for checkpoints (default: <root>/ray)")


class DebugSection(_Section):
    """Fault injection for tests, and measurement aids."""

    fail_at_epoch: int | None = Field(None, ge=0, description="one worker os._exit()s mid-epoch, once")
    nan_at_epoch: int | None = Field(None, ge=0, description="the loss becomes NaN at this epoch's first step")
    max_steps_per_epoch: int | None = Field(None, ge=1)
    replay_first_batch: bool = Field(
        False, description="every step reuses the first batch: the training step's throughput without data "
        "wait (model-only baseline of `videomamba bench e2e`)"
    )


class TrainConfig(_Section):
    """A full training config (the YAML's top level)."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataConfig
    objective: ObjectiveConfig = Field(default_factory=SupervisedConfig)
    optim: OptimSection = Field(default_factory=OptimSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    train: TrainSection = Field(default_factory=TrainSection)
    scaling: ScalingSection = Field(default_factory=ScalingSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    mlflow: MlflowSection = Field(default_factory=MlflowSection)
    run: RunSection = Field(default_factory=RunSection)
    debug: DebugSection = Field(default_factory=DebugSection)

    @field_validator("objective", mode="before")
    @classmethod
    def _default_objective_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value:
            return {"name": "supervised", **value}
        return value

    @model_validator(mode="after")
    def _video_text(self) -> TrainConfig:
        """``contrastive`` needs captions in the batches and ranks checkpoints by retrieval
        (``val/r_mean``, the mean of the six recalls) unless ``train.checkpoint_metric`` is set."""
        if self.objective.name != "contrastive":
            return self
        if not self.data.captions:
            raise ValueError("data.captions: must be true for objective 'contrastive' (batches carry the captions)")
        if self.data.clips_per_video > 1:
            raise ValueError("data.clips_per_video: must be 1 for objective 'contrastive' (clips of one video in a "
                             "batch would be each other's negatives)")
        if "checkpoint_metric" not in self.train.model_fields_set:
            self.train.checkpoint_metric = "val/r_mean"
        return self


# ------------------------------------------------------------------------------------------------
def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``dotted == "a.b"`` (intermediate dicts created)."""
    keys = dotted.split(".")
    node = tree
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(keys[: i + 1])}: is {type(child).__name__}, cannot set {dotted}")
        node = child
    node[keys[-1]] = value


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``[("a.b", 1), ("c", [1, 2])]`` (values parsed as YAML)."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key.strip()):
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        parsed.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return parsed


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation admits (itself, or the members of a union / Optional)."""
    annotation = _strip_annotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in models_in(a)]
    return []


def keys_at(root: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    """The field names valid at pydantic error location ``loc`` below ``root`` (a discriminated
    union's tag in ``loc`` selects its member; unknown locations: ``[]``)."""
    models = [root]
    for part in loc:
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            models = [m for f in fields for m in models_in(f.annotation)]
            continue
        tagged = [m for m in models if getattr(m.model_fields.get(_tag_field(m)), "default", None) == part]
        if not tagged:
            return []
        models = tagged
    return list(dict.fromkeys(k for m in models for k in m.model_fields))


def _tag_field(model: type[BaseModel]) -> str | None:
    """The discriminator field of a union member (a Literal field: ``name`` / ``kind``)."""
    for key in ("name", "kind", "type"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(_strip_annotated(field.annotation)) is Literal:
            return key
    return None


def did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (valid: {', '.join(valid)})" if valid else ""


def format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        if not e["loc"] and e["type"] == "value_error":  # cross-field checks name their field themselves
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
            continue
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + did_you_mean(str(e["loc"][-1]), keys_at(TrainConfig, e["loc"][:-1]))
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] not in ("union_tag_invalid", "value_error") and "input" in e:
            msg += f" (got {e['input']!r})"
        lines.append(f"  {loc}: {msg}")
    return "invalid config:\n" + "\n".join(lines)


def validate_config(raw: dict) -> TrainConfig:
    """Validate a config tree; raise :class:`ConfigError` naming every bad dotted field."""
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def load_config(path: str | os.PathLike | None, overrides: Iterable[str] = (), base: dict | None = None) -> TrainConfig:
    """Read YAML ``path`` (or start from ``base``), apply ``--set`` overrides, validate."""
    raw: dict = copy.deepcopy(base or {})
    if path is not None:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        raw = loaded
    for key, value in parse_overrides(overrides):
        set_dotted(raw, key, value)
    return validate_config(raw)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept as values)."""
    if isinstance(tree, BaseModel):
        tree = tree.model_dump(mode="json")
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


# ------------------------------------------------------------------------------------------------
# config fields that hold local paths (relative ones are read from the current directory)
_PATH_FIELDS = {
    "data": ("train_manifest", "val_manifest", "test_manifest", "classes_file", "path_prefix"),
    "model": ("pretrained",),
    "run": ("root", "storage_path"),
}
_OBJECTIVE_PATH_KEYS = ("checkpoint", "weights")  # teachers' weights, anywhere under objective:
_OBJECTIVE_MAYBE_PATH_KEYS = ("model",)  # a text/teacher model name, or a local directory


def _absolute(value: Any, must_exist: bool = False) -> Any:
    if not isinstance(value, str) or not value or "://" in value or os.path.isabs(value):
        return value
    path = os.path.expanduser(value)
    if must_exist and not os.path.exists(path):
        return value
    return os.path.abspath(path)


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every relative local path (manifests, classes file, pretrained weights, run
    root, teacher/text-tower directories) made absolute against the current directory, so that
    a checkpoint's recorded config (and Ray workers, whose cwd differs) find the same files."""
    tree = cfg.model_dump(mode="json", exclude_unset=False)
    for section, keys in _PATH_FIELDS.items():
        for key in keys:
            tree[section][key] = _absolute(tree[section].get(key))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _OBJECTIVE_PATH_KEYS:
                    node[key] = _absolute(value)
                elif key in _OBJECTIVE_MAYBE_PATH_KEYS:
                    node[key] = _absolute(value, must_exist=True)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree["objective"])
    return validate_config(tree)
