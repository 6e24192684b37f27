"""Hand-written float64 references of the published VideoMamba computation, independent of the
package's model code (only the sequential scan reference is shared). Used by the model tests."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from videomamba.ops.selective_scan_ref import selective_scan_ref

# --- published state-dict names (videomamba-facts.md) ---------------------------------------
PUBLISHED_GLOBALS = ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
                     "temporal_pos_embedding", "norm_f.weight", "head.weight", "head.bias"]
PUBLISHED_LAYER = ["norm.weight"] + [f"mixer.{k}" for k in (
    "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
    "A_log", "D", "out_proj.weight", "conv1d_b.weight", "conv1d_b.bias", "x_proj_b.weight",
    "dt_proj_b.weight", "dt_proj_b.bias", "A_b_log", "D_b")]


def published_shapes(embed_dim, depth, num_classes, num_frames, img_size=224, patch=16, tubelet=1,
                     d_state=16, d_conv=4, expand=2):
    """Key -> shape of a published checkpoint (mamba-ssm conventions)."""
    D, di, r, n = embed_dim, expand * embed_dim, math.ceil(embed_dim / 16), d_state
    grid = (img_size // patch) ** 2
    shapes = {
        "patch_embed.proj.weight": (D, 3, tubelet, patch, patch), "patch_embed.proj.bias": (D,),
        "cls_token": (1, 1, D), "pos_embed": (1, 1 + grid, D),
        "temporal_pos_embedding": (1, num_frames // tubelet, D), "norm_f.weight": (D,),
        "head.weight": (num_classes, D), "head.bias": (num_classes,),
    }
    layer = {"norm.weight": (D,), "mixer.in_proj.weight": (2 * di, D), "mixer.out_proj.weight": (D, di)}
    for s, a, d in (("", "A_log", "D"), ("_b", "A_b_log", "D_b")):
        layer.update({f"mixer.conv1d{s}.weight": (di, 1, d_conv), f"mixer.conv1d{s}.bias": (di,),
                      f"mixer.x_proj{s}.weight": (r + 2 * n, di), f"mixer.dt_proj{s}.weight": (di, r),
                      f"mixer.dt_proj{s}.bias": (di,), f"mixer.{a}": (di, n), f"mixer.{d}": (di,)})
    assert set(layer) == set(PUBLISHED_LAYER) and set(shapes) == set(PUBLISHED_GLOBALS)
    for i in range(depth):
        shapes.update({f"layers.{i}.{k}": v for k, v in layer.items()})
    return shapes


# --- computation ----------------------------------------------------------------------------
def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _branch(x, z, conv, x_proj, dt_proj, A_log, D):
    """One published mamba direction (non-fused path): conv[..., :L] + SiLU, x_proj, dt_proj, scan."""
    length = x.shape[-1]
    xc = F.silu(F.conv1d(x, conv.weight, conv.bias, padding=conv.weight.shape[-1] - 1, groups=x.shape[1])[..., :length])
    x_dbl = xc.transpose(1, 2) @ x_proj.weight.T
    r, n = dt_proj.weight.shape[1], A_log.shape[1]
    dt, B, C = x_dbl.split([r, n, n], dim=-1)
    dt = (dt @ dt_proj.weight.T).transpose(1, 2)
    return selective_scan_ref(xc, dt, -torch.exp(A_log), B.transpose(1, 2), C.transpose(1, 2), D, z,
                              delta_bias=dt_proj.bias, delta_softplus=True)


def mixer_ref(m, h, perm_b=None):
    """Published bimamba-v2 mixer on h (B, L, D): forward branch on h; backward branch =
    flip -> branch -> flip on ``h[:, perm_b]`` (default identity), scattered back; summed;
    out_proj."""
    xz = (h @ m.in_proj.weight.T).transpose(1, 2)
    x, z = xz.chunk(2, dim=1)
    y_f = _branch(x, z, m.conv1d, m.x_proj, m.dt_proj, m.A_log, m.D)
    perm_b = torch.arange(x.shape[-1]) if perm_b is None else torch.as_tensor(perm_b)
    xb, zb = x[..., perm_b], z[..., perm_b]
    y_b_perm = _branch(xb.flip(-1), zb.flip(-1), m.conv1d_b, m.x_proj_b, m.dt_proj_b, m.A_b_log, m.D_b).flip(-1)
    y_b = torch.zeros_like(y_b_perm)
    y_b[..., perm_b] = y_b_perm
    return (y_f + y_b).transpose(1, 2) @ m.out_proj.weight.T


def embed_ref(model, video):
    """Published forward_features up to the blocks (pos embed per (b t), cls from frame 0)."""
    x = model.patch_embed.proj(video)
    B, C, T, H, W = x.shape
    x = x.permute(0, 2, 3, 4, 1).reshape(B * T, H * W, C)
    x = torch.cat((model.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + model.pos_embed
    cls_tokens = x[:B, :1, :]
    x = rearrange(x[:, 1:], "(b t) n m -> (b n) t m", b=B, t=T) + model.temporal_pos_embedding
    x = rearrange(x, "(b n) t m -> b (t n) m", b=B, t=T)
    return torch.cat((cls_tokens, x), dim=1)


def order_of(tokens, order, grid):
    """Positions (into ``tokens``, a list of canonical indices, cls = 0) sorted in ``order``."""
    T, N = grid[0], grid[1] * grid[2]

    def key(c):
        if c == 0:
            return (-1, -1)
        t, s = divmod(c - 1, N)
        return (t, s) if order == "spatial" else (s, t)

    return sorted(range(len(tokens)), key=lambda j: key(tokens[j]))


def reference_tokens(model, video, orders=None, keep=None):
    """Final normed tokens (1, len(keep), D) of ONE clip (batch 1) in canonical order, blocks
    run on explicitly permuted copies: block i scans ``orders[i] = (fwd, bwd)``. ``keep``:
    canonical token indices to process (cls = 0 first, ascending)."""
    x = embed_ref(model, video)
    grid = tuple(model.grid_size)
    tokens = list(range(x.shape[1])) if keep is None else list(keep)
    x = x[:, tokens]
    orders = orders or [("spatial", "spatial")] * len(model.layers)
    hidden, residual = x, None
    for layer, (fwd, bwd) in zip(model.layers, orders):
        p = order_of(tokens, fwd, grid)
        seq_tokens = [tokens[j] for j in p]
        h_o = hidden[:, p]
        r_o = h_o if residual is None else residual[:, p] + h_o
        perm_b = order_of(seq_tokens, bwd, grid)
        y_o = mixer_ref(layer.mixer, rms(r_o, layer.norm.weight), perm_b)
        hidden, residual = torch.empty_like(y_o), torch.empty_like(r_o)
        hidden[:, p], residual[:, p] = y_o, r_o
    return rms(residual + hidden, model.norm_f.weight)


def published_logits(model, video):
    return torch.cat([reference_tokens(model, v[None])[:, 0] for v in video]) @ model.head.weight.T + model.head.bias
