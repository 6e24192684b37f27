"""Frozen teachers for ``distill`` and ``masked_align``, and their mapping to the student's grid.

A :class:`Teacher` sees the full clip ``(B, 3, T, H, W)`` and returns, for each requested layer,
its token map RESAMPLED onto the student's token grid ``(T', H', W')``: ``(B, 1 + T'H'W', D_t)``,
cls first, patch tokens in canonical spatial-first order. Mapping (:func:`to_grid`): frames are
averaged in groups when the teacher has ``k`` times the student's temporal tokens (tubelet
``k > 1`` student, frame-wise teacher), else linearly interpolated; the patch grid is average
pooled when it is an integer multiple of the student's, else bilinearly interpolated; a
per-frame cls is averaged over frames.

Teachers:
- :class:`VideoMambaTeacher`: a (smaller) trained VideoMamba, loaded with ``load_checkpoint``;
  no attention (``supports_attention = False``).
- :class:`ViTTeacher`: a timm ``VisionTransformer`` run frame by frame, CLIP-style: every token
  of a returned layer goes through the final norm (CLIP's ``ln_post``) and, with ``use_head``, the
  head (CLIP's ``proj``, which timm holds as a bias-free ``head``). Weights from a local file in
  timm format or OpenAI-CLIP/OpenCLIP format (``visual.*`` keys, converted by timm). Exposes the
  last block's cls attention (for ``attention`` masking).

Nothing is ever downloaded; without weights a teacher is randomly initialised (tests) and says so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Union

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import nn

from videomamba.objectives.base import ObjectiveConfigBase

logger = logging.getLogger(__name__)

Grid = tuple[int, int, int]


# ------------------------------------------------------------------------------------------------
# config
class VideoMambaTeacherConfig(ObjectiveConfigBase):
    """A trained VideoMamba: ``checkpoint`` is a state-dict file (``model.pt``, published ``.pth``)
    or a training checkpoint directory, whose ``meta.json`` supplies the architecture."""

    kind: Literal["videomamba"] = "videomamba"
    checkpoint: str | None = Field(None, description="weights (file or checkpoint dir); None: random (tests only)")
    model: str | None = Field(None, description="variant name (default: the checkpoint dir's meta.json)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="create_model kwargs over the meta's")


class ViTTeacherConfig(ObjectiveConfigBase):
    """A timm VisionTransformer run frame by frame (CLIP-style features)."""

    kind: Literal["vit"] = "vit"
    model: str = Field("vit_base_patch16_clip_224", description="timm model name (built with pretrained=False)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="timm.create_model kwargs (num_classes=512 for CLIP B/16 proj)")
    weights: str | None = Field(None, description="local state dict: timm or OpenAI/OpenCLIP 'visual.*' keys; None: random")
    use_head: bool = Field(True, description="apply the head (CLIP proj) to every token")


TeacherConfig = Annotated[Union[VideoMambaTeacherConfig, ViTTeacherConfig], Field(discriminator="kind")]  # noqa: UP007


# ------------------------------------------------------------------------------------------------
# grid mapping
def _resample_time(x: torch.Tensor, t_out: int) -> torch.Tensor:
    """(B, T, H, W, D) -> (B, t_out, H, W, D): group means if T = k * t_out, else linear."""
    t = x.shape[1]
    if t == t_out:
        return x
    if t % t_out == 0:
        return rearrange(x, "b (t k) h w d -> b t k h w d", t=t_out).mean(2)
    b, _, h, w, d = x.shape
    y = F.interpolate(rearrange(x, "b t h w d -> (b h w) d t").float(), size=t_out, mode="linear", align_corners=False)
    return rearrange(y.to(x.dtype), "(b h w) d t -> b t h w d", b=b, h=h, w=w)


def _resample_space(x: torch.Tensor, hw_out: tuple[int, int]) -> torch.Tensor:
    """(B, T, H, W, D) -> (B, T, H', W', D): average pool if an integer multiple, else bilinear."""
    b, t, h, w, d = x.shape
    if (h, w) == tuple(hw_out):
        return x
    y = rearrange(x, "b t h w d -> (b t) d h w").float()
    if h % hw_out[0] == 0 and w % hw_out[1] == 0:
        y = F.avg_pool2d(y, (h // hw_out[0], w // hw_out[1]))
    else:
        y = F.interpolate(y, size=tuple(hw_out), mode="bilinear", align_corners=False)
    return rearrange(y.to(x.dtype), "(b t) d h w -> b t h w d", b=b)


def to_grid(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Patch features ``(B, T, H, W, D)`` -> ``(B, T', H', W', D)`` on the student's ``grid``."""
    return _resample_space(_resample_time(x, grid[0]), grid[1:])


def tokens_to_grid(cls: torch.Tensor, patches: torch.Tensor, grid: Grid) -> torch.Tensor:
    """cls ``(B, D)`` or per frame ``(B, T, D)`` + patches ``(B, T, H, W, D)`` -> ``(B, 1 + L', D)``."""
    if cls.dim() == 3:
        cls = cls.mean(1)
    patches = rearrange(to_grid(patches, grid), "b t h w d -> b (t h w) d")
    return torch.cat([cls[:, None], patches], dim=1)


# ------------------------------------------------------------------------------------------------
class TeacherOutput(NamedTuple):
    #: layer index as requested (negative; -1 = final output) -> (B, 1 + L', D_t) on the student grid
    layers: dict[int, torch.Tensor]
    #: cls attention (B, T', H', W') on the student grid, when requested
    attention: torch.Tensor | None = None


class Teacher(nn.Module):
    """Base class: frozen, eval mode, no grad. Subclasses set ``embed_dim`` (output width),
    ``depth`` and implement :meth:`_forward`."""

    supports_attention: bool = False
    embed_dim: int
    depth: int

    def check_layers(self, layers: list[int]) -> list[int]:
        """Layer indices counted from the end (``-1`` = final output)."""
        bad = [i for i in layers if not -self.depth <= i < 0]
        if bad:
            raise ValueError(f"teacher layers {bad}: use -1 (final) .. -{self.depth} (teacher depth {self.depth})")
        return list(layers)

    @torch.no_grad()
    def forward(self, video: torch.Tensor, grid: Grid, layers: list[int] = (-1,), attention: bool = False) -> TeacherOutput:
        """``video (B, 3, T, H, W)`` -> :class:`TeacherOutput` on the student ``grid``."""
        if attention and not self.supports_attention:
            raise ValueError(
                f"{type(self).__name__} does not expose attention: 'attention' masking needs a teacher with "
                "self-attention (objective.teacher.kind: vit)"
            )
        if self.training:
            self.eval()
        return self._forward(video, tuple(grid), self.check_layers(list(layers)), attention)

    def _forward(self, video, grid, layers, attention) -> TeacherOutput:
        raise NotImplementedError


class VideoMambaTeacher(Teacher):
    """A VideoMamba's normed token maps (``forward_tokens`` with ``return_layers``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.embed_dim = model.embed_dim
        self.depth = model.depth

    def _forward(self, video, grid, layers, attention) -> TeacherOutput:
        k, (ph, pw) = self.model.kernel_size, self.model.patch_size
        t, h, w = video.shape[2] // k, video.shape[3] // ph, video.shape[4] // pw
        out, states = self.model.forward_tokens(video, return_layers=layers)
        feats = {}
        for i in layers:
            x = states[i]
            patches = rearrange(x[:, 1:], "b (t h w) d -> b t h w d", t=t, h=h, w=w)
            feats[i] = tokens_to_grid(x[:, 0], patches, grid)
        return TeacherOutput(feats)


class ViTTeacher(Teacher):
    """A timm VisionTransformer applied to every frame (CLIP-style: final norm (+ head) on every
    token of every returned layer)."""

    supports_attention = True

    def __init__(self, vit: nn.Module, use_head: bool = True):
        super().__init__()
        self.vit = vit
        self.use_head = use_head and isinstance(getattr(vit, "head", None), nn.Linear)
        self.embed_dim = vit.head.out_features if self.use_head else vit.embed_dim
        self.depth = len(vit.blocks)
        self.num_prefix = getattr(vit, "num_prefix_tokens", 1)
        if getattr(vit, "cls_token", None) is None:
            raise ValueError("ViT teacher needs a cls token (class_token=True)")

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        x = self.vit.norm(x)
        return self.vit.head(x) if self.use_head else x

    def _cls_attention(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Head-averaged attention of the cls query over the patch keys: (N, num_patches)."""
        attn = getattr(block, "attn", None)
        if attn is None or not hasattr(attn, "qkv"):
            raise ValueError(f"teacher block {type(block).__name__} has no timm Attention (qkv) to read the cls attention from")
        y = block.norm1(x)
        qkv = rearrange(attn.qkv(y), "n l (three h d) -> three n h l d", three=3, h=attn.num_heads)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        a = ((q[:, :, :1].float() * attn.scale) @ k.float().transpose(-2, -1)).softmax(-1)  # (N, heads, 1, L)
        return a.mean(1)[:, 0, self.num_prefix:]

    def _forward(self, video, grid, layers, attention) -> TeacherOutput:
        vit = self.vit
        b, _, t, h, w = video.shape
        ph, pw = vit.patch_embed.patch_size
        gh, gw = h // ph, w // pw
        x = vit.patch_embed(rearrange(video, "b c t h w -> (b t) c h w"))
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(x)))
        wanted = {i % self.depth: i for i in layers}
        feats, attn = {}, None
        for j, blk in enumerate(vit.blocks):
            if attention and j == self.depth - 1:
                attn = self._cls_attention(blk, x)
            x = blk(x)
            if j in wanted:
                y = self._out(x)
                cls = rearrange(y[:, 0], "(b t) d -> b t d", b=b)
                patches = rearrange(y[:, self.num_prefix:], "(b t) (h w) d -> b t h w d", b=b, h=gh, w=gw)
                feats[wanted[j]] = tokens_to_grid(cls, patches, grid)
        if attn is not None:
            attn = to_grid(rearrange(attn, "(b t) (h w) -> b t h w ()", b=b, h=gh, w=gw), grid)[..., 0]
        return TeacherOutput(feats, attn)


# ------------------------------------------------------------------------------------------------
# builders
def _state_file(path: Path) -> tuple[Path, dict[str, Any] | None]:
    """(weights file, meta or None) of a file or a training checkpoint directory."""
    if path.is_dir():
        from videomamba.checkpoints import checkpoint_files

        return checkpoint_files(path)
    return path, None


def build_videomamba_teacher(cfg: VideoMambaTeacherConfig) -> VideoMambaTeacher:
    from videomamba.models.spec import ModelSpec

    spec, weights = ModelSpec(cfg.model or "", {}), None
    if cfg.checkpoint is not None:
        weights, meta = _state_file(Path(cfg.checkpoint).expanduser())
        if not weights.exists():
            raise FileNotFoundError(f"objective.teacher.checkpoint: {weights} does not exist")
        if meta is not None:  # the architecture the teacher was trained with
            trained = ModelSpec.from_meta(meta)
            spec = ModelSpec(cfg.model or trained.name, trained.kwargs)
    if not spec.name:
        raise ValueError("objective.teacher.model: required unless the checkpoint is a training checkpoint directory")
    spec = spec.replace(**{**cfg.overrides, "drop_path_rate": 0.0})
    model = spec.build(str(weights) if weights is not None else None, strict=True)
    if weights is None:
        logger.warning("VideoMamba teacher %s has no checkpoint: RANDOM weights (tests only)", spec.name)
    else:
        logger.info("teacher %s loaded from %s", spec.name, weights)
    return VideoMambaTeacher(model)


def load_vit_weights(vit: nn.Module, path: str | Path) -> None:
    """Load a local state dict (``.pt``/``.pth``/``.bin`` via ``torch.load``, or ``.safetensors``)
    into a timm ViT strictly: timm format, or OpenAI-CLIP/OpenCLIP (``visual.*`` keys, or the
    visual tower alone) converted by timm's ``checkpoint_filter_fn``. OpenAI's own ``ViT-B-16.pt``
    is a TorchScript archive: save ``torch.jit.load(path).state_dict()`` once and point here."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    path = Path(path).expanduser()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if "class_embedding" in state and "conv1.weight" in state:  # a CLIP visual tower saved alone
        state = {f"visual.{k}": v for k, v in state.items()}
    state = checkpoint_filter_fn(state, vit)
    missing, unexpected = vit.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"ViT teacher weights {path}: missing keys {missing}, unexpected keys {unexpected}")


def build_vit_teacher(cfg: ViTTeacherConfig) -> ViTTeacher:
    import timm

    kwargs = {"dynamic_img_size": True, **cfg.kwargs}
    vit = timm.create_model(cfg.model, pretrained=False, **kwargs)
    if cfg.weights is None:
        logger.warning("ViT teacher %s has no weights: RANDOM weights (tests only)", cfg.model)
    else:
        load_vit_weights(vit, cfg.weights)
        logger.info("ViT teacher %s loaded from %s", cfg.model, cfg.weights)
    return ViTTeacher(vit, use_head=cfg.use_head)


def build_teacher(cfg: VideoMambaTeacherConfig | ViTTeacherConfig) -> Teacher:
    """The frozen teacher described by ``objective.teacher`` (eval mode, no grads)."""
    teacher = build_videomamba_teacher(cfg) if cfg.kind == "videomamba" else build_vit_teacher(cfg)
    return teacher.requires_grad_(False).eval()
