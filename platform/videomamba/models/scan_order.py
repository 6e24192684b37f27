"""Scan orders of the VideoMamba ablation: which token order each block's SSM directions visit.

Tokens are ``cls`` followed by ``T' x H' x W'`` patch tokens. The canonical ("spatial") order
is spatial-first: frame 0 row-major, then frame 1, ...; the "temporal" order visits, for each
spatial location (row-major), all its frames. The cls token stays first in every order.
The model keeps its residual stream in the order of the block it is in and reorders only where
consecutive blocks differ; outputs come back in canonical order.
"""

from __future__ import annotations

import functools

import torch

from ..modules.tokens import take_tokens

__all__ = ["SCAN_ORDERS", "ORDERS", "check_scan_order", "block_schedule", "token_order", "ScanPlan"]

SCAN_ORDERS: dict[str, str] = {
    "spatial_first": "every block scans frame by frame, each frame row-major (published default)",
    "temporal_first": "every block scans location by location, each location through all its frames",
    "half_spatial_temporal": "first half of the blocks spatial-first, second half temporal-first",
    "half_temporal_spatial": "first half of the blocks temporal-first, second half spatial-first",
    "alternate_spatial_temporal": "blocks alternate spatial-first / temporal-first, starting spatial",
    "alternate_temporal_spatial": "blocks alternate temporal-first / spatial-first, starting temporal",
    "split_direction": "in every block the forward direction scans spatial-first, the backward temporal-first",
}

ORDERS = ("spatial", "temporal")  # token orders a single SSM direction can visit
CANONICAL = "spatial"


def check_scan_order(name: str) -> str:
    if name not in SCAN_ORDERS:
        raise ValueError(f"unknown scan_order {name!r}; valid scan orders: {', '.join(SCAN_ORDERS)}")
    return name


def block_schedule(scan_order: str, depth: int) -> list[tuple[str, str]]:
    """Per block, the orders (forward direction, backward direction) visit; a direction scans
    its order first-to-last (forward) or last-to-first (backward)."""
    check_scan_order(scan_order)
    s, t = "spatial", "temporal"
    half = depth // 2
    per_block = {
        "spatial_first": lambda i: s,
        "temporal_first": lambda i: t,
        "half_spatial_temporal": lambda i: s if i < half else t,
        "half_temporal_spatial": lambda i: t if i < half else s,
        "alternate_spatial_temporal": lambda i: s if i % 2 == 0 else t,
        "alternate_temporal_spatial": lambda i: t if i % 2 == 0 else s,
        "split_direction": lambda i: s,
    }[scan_order]
    return [(per_block(i), t if scan_order == "split_direction" else per_block(i)) for i in range(depth)]


@functools.lru_cache(maxsize=64)
def token_order(order: str, grid: tuple[int, int, int]) -> torch.Tensor:
    """(1 + L,) long: position j of the ``order`` sequence holds canonical token index
    ``token_order[j]`` (cls = 0, patch (t, h, w) = 1 + (t * H' + h) * W' + w). Cached per grid."""
    t, h, w = grid
    idx = torch.arange(t * h * w).view(t, h * w)
    if order == "temporal":
        idx = idx.t()
    elif order != "spatial":
        raise ValueError(f"unknown token order {order!r}; valid: {ORDERS}")
    return torch.cat([torch.zeros(1, dtype=torch.long), 1 + idx.reshape(-1)])


class ScanPlan:
    """Gather indices between token orders for one token layout: all tokens (indices (1, 1+L),
    shared by the batch), or cls + the visible tokens of a mask (indices (B, 1+L_vis))."""

    def __init__(self, grid: tuple[int, int, int], device: torch.device, visible: torch.Tensor | None = None):
        self.grid = grid
        self._perm: dict[str, torch.Tensor] = {}
        self._cache: dict[tuple[str, str], torch.Tensor | None] = {}
        for order in ORDERS:
            perm = token_order(order, grid).to(device)
            if visible is not None:  # keep the visible tokens, in this order
                rank = torch.empty_like(perm)
                rank[perm] = torch.arange(perm.numel(), device=device)  # canonical index -> position
                keep = torch.cat([visible.new_zeros(visible.shape[0], 1), 1 + visible], 1)  # (B, 1+Lv)
                perm = torch.argsort(rank[keep], dim=1)  # positions within the kept (canonical) tokens
            self._perm[order] = perm if perm.dim() == 2 else perm[None]

    def index(self, src: str, dst: str) -> torch.Tensor | None:
        """Index (L,) or (B, L) turning a sequence in order ``src`` into order ``dst``
        (``x_dst = x_src[:, index]``); None when they are the same."""
        key = (src, dst)
        if key not in self._cache:
            if src == dst:
                self._cache[key] = None
            else:
                p_src, p_dst = self._perm[src], self._perm[dst]
                inv_src = torch.argsort(p_src, dim=1)  # canonical -> position in src
                idx = torch.gather(inv_src, 1, p_dst)
                self._cache[key] = idx[0] if idx.shape[0] == 1 else idx
        return self._cache[key]

    def reorder(self, x: torch.Tensor | None, src: str, dst: str) -> torch.Tensor | None:
        """x (B, L, D) in order ``src`` -> order ``dst``."""
        idx = self.index(src, dst)
        if x is None or idx is None:
            return x
        return take_tokens(x, idx)
