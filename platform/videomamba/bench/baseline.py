"""TimeSformer-style attention baseline for the efficiency comparison.

A DeiT-Ti-width ViT (D=192, depth 12, 3 heads, MLP 4x, patch 16) with *joint* space-time
attention over all ``T * (H/16) * (W/16)`` patch tokens plus a cls token, learned spatial and
temporal position embeddings. Attention goes through
``torch.nn.functional.scaled_dot_product_attention``, so on an H100 in bf16 it runs
FlashAttention (``attn_impl="math"`` forces the unfused kernel that the paper's TimeSformer
baseline used). Pure PyTorch: no timm or einops needed on the benchmark machine.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

# name -> (embed_dim, depth, num_heads, attn_impl)
BASELINES: dict[str, tuple[int, int, int, str]] = {
    "attention_tiny": (192, 12, 3, "fused"),
    "attention_tiny_math": (192, 12, 3, "math"),  # no FlashAttention, like the paper's baseline
}


def sdpa_context(attn_impl: str):
    """Context restricting SDPA to fused kernels (flash / mem-efficient / cuDNN) or to math.

    ``"fused"`` forbids the math fallback so the baseline never silently materialises the
    ``L x L`` attention matrix on GPU; on CPU (tests) no restriction applies.
    """
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # very old torch
        return contextlib.nullcontext()
    if attn_impl == "math":
        return sdpa_kernel([SDPBackend.MATH])
    if not torch.cuda.is_available():
        return contextlib.nullcontext()
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        fused.append(SDPBackend.CUDNN_ATTENTION)
    return sdpa_kernel(fused)


class Attention(nn.Module):
    """Multi-head self-attention over ``(B, L, D)`` through SDPA."""

    def __init__(self, dim: int, num_heads: int, attn_impl: str = "fused"):
        super().__init__()
        self.num_heads = num_heads
        self.attn_impl = attn_impl
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape
        qkv = self.qkv(x).view(b, l, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        with sdpa_context(self.attn_impl):
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, L, hd)
        return self.proj(out.transpose(1, 2).reshape(b, l, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)); x + mlp(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, attn_impl: str = "fused"):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_impl)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AttentionBaseline(nn.Module):
    """Joint space-time ViT. ``(B, 3, T, H, W)`` -> logits ``(B, num_classes)``.

    Tokens: per-frame 2D patch embedding (``p x p`` conv), spatial pos embed (length
    ``1 + N``, cls included) added per frame, temporal pos embed (length ``T``) added to every
    patch; then cls first and the ``T * N`` patches spatial-first (sequence ``1 + T*N``).
    """

    def __init__(
        self,
        num_frames: int = 8,
        img_size: int = 224,
        patch_size: int = 16,
        num_classes: int = 400,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        attn_impl: str = "fused",
    ):
        super().__init__()
        if attn_impl not in ("fused", "math"):
            raise ValueError(f"attn_impl must be 'fused' or 'math', got {attn_impl!r}")
        self.num_frames, self.img_size, self.patch_size = num_frames, img_size, patch_size
        self.embed_dim, self.depth, self.num_classes = embed_dim, depth, num_classes
        self.attn_impl = attn_impl
        n = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, attn_impl) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        for p in (self.cls_token, self.pos_embed, self.time_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        g = self.img_size // self.patch_size
        return (self.num_frames, g, g)

    def forward_tokens(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> final normed tokens ``(B, 1 + T*N, D)``."""
        b, c, t, h, w = video.shape
        if t != self.num_frames:
            raise ValueError(f"expected {self.num_frames} frames, got video of shape {tuple(video.shape)}")
        x = self.patch_embed(video.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, D, h', w')
        x = x.flatten(2).transpose(1, 2)  # (B*T, N, D)
        x = x + self.pos_embed[:, 1:]
        x = x.view(b, t, -1, self.embed_dim) + self.time_embed[:, :, None]  # (B, T, N, D)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, x.flatten(1, 2)], dim=1)  # (B, 1 + T*N, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_tokens(video)[:, 0])


def create_baseline(
    name: str = "attention_tiny", *, num_frames: int = 8, img_size: int = 224, num_classes: int = 400,
    depth: int | None = None,
) -> AttentionBaseline:
    """Build a registered baseline (see ``BASELINES``); ``depth`` overrides for tiny tests."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {sorted(BASELINES)}")
    dim, default_depth, heads, impl = BASELINES[name]
    return AttentionBaseline(
        num_frames=num_frames, img_size=img_size, num_classes=num_classes, embed_dim=dim,
        depth=depth or default_depth, num_heads=heads, attn_impl=impl,
    )


__all__ = ["BASELINES", "AttentionBaseline", "create_baseline", "sdpa_context"]
