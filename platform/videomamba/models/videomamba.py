"""VideoMamba (Li et al., arXiv 2403.06977): isotropic bidirectional-Mamba video model.

``(B, 3, T, H, W)`` -> tubelet Conv3d -> cls + spatial-first tokens with spatial (per frame,
cls included) and temporal position embeddings -> ``depth`` pre-norm BiMamba blocks with an
fp32 residual stream -> ``RMSNorm(residual + hidden)`` -> cls -> dropout -> head.
State-dict keys and shapes are those of the published checkpoints.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from functools import partial

import torch
from einops import rearrange
from timm.layers import DropPath, to_2tuple, trunc_normal_
from torch import nn

from ..modules import (BiMamba, Block, PatchEmbed, RMSNorm, add_rms_norm, resize_spatial_pos_embed,
                       resize_temporal_pos_embed, take_tokens)
from ..ops import check_backend
from .scan_order import CANONICAL, ScanPlan, block_schedule, check_scan_order

__all__ = ["VideoMamba", "create_model", "list_models", "register_model"]

logger = logging.getLogger(__name__)


def _init_weights(module: nn.Module, n_layer: int, initializer_range: float = 0.02,
                  rescale_prenorm_residual: bool = True, n_residuals_per_layer: int = 1):
    """mamba-ssm init: zero Linear biases (except dt_proj's), GPT-2 style out_proj rescale."""
    if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=initializer_range)
    if rescale_prenorm_residual:
        for name, p in module.named_parameters():
            if name in ("out_proj.weight", "fc2.weight"):
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                with torch.no_grad():
                    p /= math.sqrt(n_residuals_per_layer * n_layer)


def _segm_init_weights(m: nn.Module):
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.zeros_(m.bias)
        nn.init.ones_(m.weight)


class VideoMamba(nn.Module):
    """VideoMamba video (``num_frames > 1``) or image (``num_frames = kernel_size = 1``) model.

    Inputs ``(B, channels, T, H, W)`` (an image model also takes ``(B, channels, H, W)``).
    ``T, H, W`` may differ from the construction size as long as they are divisible by
    ``kernel_size`` / ``patch_size``: the position embeddings are then interpolated on the fly.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        depth: int = 24,
        embed_dim: int = 192,
        channels: int = 3,
        num_classes: int = 1000,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        ssm_cfg: dict | None = None,
        norm_epsilon: float = 1e-5,
        kernel_size: int = 1,
        num_frames: int = 8,
        fc_drop_rate: float = 0.0,
        use_checkpoint: bool = False,
        checkpoint_num: int = 0,
        scan_order: str = "spatial_first",
        backend: str = "auto",
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
    ):
        super().__init__()
        check_backend(backend)
        check_scan_order(scan_order)
        if num_frames % kernel_size:
            raise ValueError(f"num_frames={num_frames} is not divisible by kernel_size={kernel_size}")
        img_size, patch_size = to_2tuple(img_size), to_2tuple(patch_size)
        if img_size[0] % patch_size[0] or img_size[1] % patch_size[1]:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}")
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, channels
        self.num_frames, self.kernel_size = num_frames, kernel_size
        self.embed_dim = self.num_features = embed_dim
        self.num_classes, self.depth = num_classes, depth
        self.use_checkpoint, self.checkpoint_num = use_checkpoint, checkpoint_num

        self.patch_embed = PatchEmbed(img_size, patch_size, kernel_size, channels, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, num_frames // kernel_size, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)

        mixer_cfg = {"d_state": d_state, "d_conv": d_conv, "expand": expand, **(ssm_cfg or {})}
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linspace(0, rate, depth)
        inter_dpr = [0.0] + dpr  # block i drops the output of block i-1's mixer
        self.layers = nn.ModuleList([
            Block(embed_dim, BiMamba(embed_dim, layer_idx=i, backend=backend, **mixer_cfg),
                  drop_path=inter_dpr[i], norm_eps=norm_epsilon)
            for i in range(depth)
        ])
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0.0 else nn.Identity()
        self.norm_f = RMSNorm(embed_dim, eps=norm_epsilon)
        self.head_drop = nn.Dropout(fc_drop_rate) if fc_drop_rate > 0 else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        self.backend = backend
        self.scan_order = scan_order
        self._plans: dict[tuple, ScanPlan] = {}
        self.init_weights()

    # -- init, attributes ------------------------------------------------------------------
    def init_weights(self):
        """Published init: trunc-normal(0.02) position embeddings and head, mamba-ssm init of the
        blocks (A_log = log(1..N), D = 1, dt bias, out_proj / sqrt(depth))."""
        self.head.apply(_segm_init_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.temporal_pos_embedding, std=0.02)
        self.apply(partial(_init_weights, n_layer=self.depth))

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token", "temporal_pos_embedding"}

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Token grid at the construction size: (T/k, H/p, W/p)."""
        return (self.num_frames // self.kernel_size, *self.patch_embed.grid_size)

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, name: str):
        self._backend = check_backend(name)
        for blk in self.layers:
            blk.mixer.backend = name

    @property
    def scan_order(self) -> str:
        return self._scan_order

    @scan_order.setter
    def scan_order(self, name: str):
        self._scan_order = check_scan_order(name)
        self._schedule = block_schedule(name, self.depth)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int):
        """Replace the head by a freshly initialised ``Linear(embed_dim, num_classes)``
        (``Identity`` for 0), on the current device and dtype."""
        self.num_classes = num_classes
        ref = self.norm_f.weight
        self.head = nn.Linear(self.embed_dim, num_classes).to(ref.device, ref.dtype) if num_classes > 0 else nn.Identity()
        self.head.apply(_segm_init_weights)

    # -- embedding -------------------------------------------------------------------------
    def _check_input(self, video: torch.Tensor) -> torch.Tensor:
        k, (ph, pw) = self.kernel_size, self.patch_size
        expected = (f"expected a video tensor of shape (B, {self.in_chans}, T, H, W) with T divisible by "
                    f"kernel_size={k} and H divisible by {ph}, W by {pw} (patch_size); this model was built "
                    f"for num_frames={self.num_frames}, img_size={self.img_size[0]}x{self.img_size[1]}")
        if not isinstance(video, torch.Tensor):
            raise ValueError(f"{expected}; got {type(video).__name__}")
        if video.dim() == 4 and self.num_frames == 1 and k == 1:
            video = video.unsqueeze(2)  # image model: (B, C, H, W) -> (B, C, 1, H, W)
        if video.dim() != 5:
            raise ValueError(f"{expected}; got a {video.dim()}D tensor of shape {tuple(video.shape)}")
        _, c, t, h, w = video.shape
        if c != self.in_chans or t == 0 or t % k or h % ph or w % pw or h == 0 or w == 0:
            raise ValueError(f"{expected}; got shape {tuple(video.shape)}")
        return video

    def _pos_embeds(self, grid: tuple[int, int, int]):
        """(spatial (1, 1 + H'W', D), temporal (1, T', D)), interpolated if the grid differs."""
        t, h, w = grid
        pos, tpe = self.pos_embed, self.temporal_pos_embedding
        if (h, w) != self.patch_embed.grid_size:
            pos = resize_spatial_pos_embed(pos, (h, w), self.patch_embed.grid_size)
        if t != tpe.shape[1]:
            tpe = resize_temporal_pos_embed(tpe, t)
        return pos, tpe

    def embed(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """video -> tokens (B, 1 + T'H'W', D) in canonical (spatial-first) order, cls first,
        and the token grid (T', H', W')."""
        x = self.patch_embed(self._check_input(video))
        b, _, t, h, w = x.shape
        pos, tpe = self._pos_embeds((t, h, w))
        x = rearrange(x, "b d t h w -> b t (h w) d") + pos[:, None, 1:]  # spatial, per frame
        x = x + tpe[:, :, None]  # temporal, per location
        cls = (self.cls_token + pos[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, rearrange(x, "b t n d -> b (t n) d")], dim=1)
        return self.pos_drop(x), (t, h, w)

    # -- token orders ----------------------------------------------------------------------
    def _plan(self, grid, device, visible=None) -> ScanPlan:
        if visible is not None:
            return ScanPlan(grid, device, visible)
        key = (grid, str(device))
        if key not in self._plans:
            self._plans[key] = ScanPlan(grid, device)
        return self._plans[key]

    @staticmethod
    def _visible(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep cls + the tokens where ``mask`` (B, L) is False; returns the tokens and the
        sorted visible indices (B, L_vis)."""
        b, n = x.shape[0], x.shape[1] - 1
        if mask.dtype != torch.bool or mask.shape != (b, n):
            raise ValueError(f"mask must be a bool tensor of shape (B, L) = ({b}, {n}) (True = hidden); "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        n_vis = (~mask).sum(1)
        if (n_vis != n_vis[0]).any():
            raise ValueError(f"every row of the mask must hide the same number of tokens; visible per row: "
                             f"{n_vis.tolist()}")
        visible = torch.nonzero(~mask.to(x.device))[:, 1].view(b, -1)  # sorted per row
        tokens = take_tokens(x[:, 1:], visible)
        return torch.cat([x[:, :1], tokens], dim=1), visible

    # -- forward ---------------------------------------------------------------------------
    def forward_tokens(self, video: torch.Tensor, mask: torch.Tensor | None = None,
                       return_layers: Iterable[int] | None = None):
        """Final normed tokens (B, 1 + L, D), canonical spatial-first order, cls first.

        mask: bool (B, L) over patch tokens, True = hidden, the same count per row: only cls and
        the visible tokens are processed and returned, (B, 1 + L_vis, D), canonical order.
        return_layers: block indices i (negative allowed); returns ``(tokens, {i: h_i})`` where
        ``h_i`` is the normed input of block i + 1 (for the last block: the final tokens).
        """
        x, grid = self.embed(video)
        visible = None
        if mask is not None:
            x, visible = self._visible(x, mask)
        plan = self._plan(grid, x.device, visible)
        wanted = self._layer_set(return_layers)
        states: dict[int, torch.Tensor] = {}
        hidden, residual, order = x, None, CANONICAL
        for i, (blk, (fwd, bwd)) in enumerate(zip(self.layers, self._schedule)):
            if fwd != order:  # reorder the stream only where consecutive blocks differ
                hidden, residual = plan.reorder(hidden, order, fwd), plan.reorder(residual, order, fwd)
                order = fwd
            normed, residual = blk.add_norm(hidden, residual)
            if i - 1 in wanted:
                states[i - 1] = plan.reorder(normed, order, CANONICAL)
            ckpt = self.use_checkpoint and i < self.checkpoint_num
            hidden = blk.mix(normed, plan.index(fwd, bwd), use_checkpoint=ckpt)
        out, _ = add_rms_norm(self.drop_path(hidden), residual, self.norm_f.weight, self.norm_f.eps)
        out = plan.reorder(out, order, CANONICAL)
        if return_layers is None:
            return out
        if self.depth - 1 in wanted:
            states[self.depth - 1] = out
        return out, {i: states[i % self.depth] for i in return_layers}

    def _layer_set(self, layers: Iterable[int] | None) -> set[int]:
        if layers is None:
            return set()
        layers = list(layers)
        bad = [i for i in layers if not -self.depth <= int(i) < self.depth]
        if bad:
            raise ValueError(f"return_layers {bad} out of range for depth {self.depth}")
        return {int(i) % self.depth for i in layers}

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Final cls feature (B, D), after the final norm."""
        return self.forward_tokens(video)[:, 0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(features))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> logits (B, num_classes)."""
        return self.forward_head(self.forward_features(video))


# -- registry (timm style) ---------------------------------------------------------------------
_MODELS: dict[str, Callable[..., VideoMamba]] = {}


def register_model(fn: Callable[..., VideoMamba]) -> Callable[..., VideoMamba]:
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Registered variant names (optionally filtered by an fnmatch pattern)."""
    import fnmatch

    names = sorted(_MODELS)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def create_model(name: str, **overrides) -> VideoMamba:
    """Build a registered variant; ``overrides`` are VideoMamba constructor arguments
    (img_size, patch_size, depth, embed_dim, num_classes, num_frames, kernel_size,
    drop_path_rate, fc_drop_rate, use_checkpoint, checkpoint_num, scan_order, backend, ...)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _MODELS[name](**overrides)


def _variant(defaults: dict, overrides: dict) -> VideoMamba:
    return VideoMamba(**{"patch_size": 16, **defaults, **overrides})


@register_model
def videomamba_tiny(**kwargs) -> VideoMamba:
    """VideoMamba-Ti: D=192, depth 24 (~7M parameters)."""
    return _variant({"embed_dim": 192, "depth": 24}, kwargs)


@register_model
def videomamba_small(**kwargs) -> VideoMamba:
    """VideoMamba-S: D=384, depth 24 (~26M parameters)."""
    return _variant({"embed_dim": 384, "depth": 24}, kwargs)


@register_model
def videomamba_middle(**kwargs) -> VideoMamba:
    """VideoMamba-M: D=576, depth 32 (~74M parameters)."""
    return _variant({"embed_dim": 576, "depth": 32}, kwargs)


@register_model
def videomamba_base(**kwargs) -> VideoMamba:
    """VideoMamba-B: D=768, depth 24 (image distillation recipes)."""
    return _variant({"embed_dim": 768, "depth": 24}, kwargs)
