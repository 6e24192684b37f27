"""What a training forward keeps for its backward: the bytes autograd saves, per block and per
category (norm, in_proj, conv, scan, out_proj, ...), counted on the CPU.

Every tensor that autograd saves passes ``torch.autograd.graph.saved_tensors_hooks``' pack hook;
it is counted once per storage (views and tensors saved twice share one), parameters are left
out (they are not activations; their autocast copies are counted, they are small). Each storage is
attributed to the code that saved it: the innermost ``nn.Module`` being called and the innermost
frame of this package on the Python stack (file, function, source line), mapped to a category by
:data:`RULES`. Measured at two sequence lengths, each category is fitted as ``a + b * L`` and
scaled to another batch and length (:func:`scale`), e.g. the GPU benchmark's 64 frames.

``python -m videomamba.bench.saved_activations`` writes the table (benchmarks/README.md, issue 15).
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Saved", "RULES", "count_saved", "scale", "mamba_ssm_inner_bytes", "mamba_ssm_row", "markdown",
           "main"]

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SELF = os.path.abspath(__file__)

# (file suffix, function or "*", substring of the source line or "*") -> category; first match wins;
# None: the caller's frame decides (a shared autograd function saving for several callers)
RULES: list[tuple[str, str, str, str | None]] = [
    ("modules/block.py", "add_norm", "drop_path", "drop_path"),
    ("modules/norm.py", "*", "*", "add+norm (residual)"),
    ("modules/bimamba.py", "_in_proj", "*", "in_proj"),
    ("ops/bimamba_inner.py", "in_proj_bdl", "*", "in_proj"),
    ("ops/projection.py", "forward", "*", None),
    ("ops/projection.py", "linear_to_bdl", "*", "in_proj"),
    ("ops/projection.py", "linear_from_bdl", "*", "out_proj"),
    ("ops/projection.py", "channel_linear", "*", "x_proj/dt_proj"),
    ("modules/bimamba.py", "*", "out_proj", "out_proj"),
    ("modules/bimamba.py", "forward_directional", "*", "mamba_inner (per direction)"),
    ("modules/bimamba.py", "_direction_params", "*", "A = -exp(A_log)"),
    ("ops/bimamba_inner.py", "branch", "conv_fn", "conv"),
    ("ops/bimamba_inner.py", "branch", "*", "x_proj/dt_proj"),
    ("ops/bimamba_inner.py", "*", "take_fn", "scan order (index_b)"),
    ("ops/causal_conv1d.py", "*", "*", "conv"),
    ("ops/selective_scan_torch.py", "*", "silu(z", "gate"),
    ("ops/selective_scan_torch.py", "*", "softplus", "delta (bias, softplus)"),
    ("ops/selective_scan_torch.py", "*", "delta_bias", "delta (bias, softplus)"),
    ("ops/selective_scan_torch.py", "*", "* D", "scan"),
    ("ops/selective_scan_torch.py", "*", "*", "scan"),
    ("ops/triton/selective_scan.py", "*", "*", "scan"),
    ("ops/dispatch.py", "bimamba_inner_fn", "*", "fused inner op"),
    ("ops/dispatch.py", "bimamba_fn", "*", "fused mixer op"),
    ("ops/dispatch.py", "*", "*", "scan"),
    ("ops/mamba_inner.py", "*", "linear", "out_proj"),
    ("ops/mamba_inner.py", "*", "*", "mamba_inner (per direction)"),
    ("modules/patch_embed.py", "*", "*", "patch embed"),
    ("modules/pos_embed.py", "*", "*", "pos embed"),
    ("models/videomamba.py", "embed", "*", "patch/pos embed"),
    ("models/videomamba.py", "forward_tokens", "add_rms_norm", "final norm"),
    ("models/videomamba.py", "forward_head", "*", "head"),
    ("models/videomamba.py", "*", "*", "model"),
    ("bench/baseline.py", "forward", "scaled_dot_product", "attention (SDPA)"),
    ("bench/baseline.py", "forward", "self.proj", "attn proj"),
    ("bench/baseline.py", "forward", "qkv", "qkv"),
    ("bench/baseline.py", "forward_tokens", "patch_embed", "patch embed"),
    ("bench/baseline.py", "forward_tokens", "*", "patch/pos embed"),
]

# innermost module class / attribute name -> category (the baseline's blocks are all modules)
_MODULE_CATEGORIES = {"norm1": "norm", "norm2": "norm", "qkv": "qkv", "proj": "attn proj",
                      "mlp.0": "mlp fc1", "mlp.1": "mlp gelu", "mlp.2": "mlp fc2", "head": "head",
                      "out_proj": "out_proj", "patch_embed": "patch embed", "norm": "final norm"}


@dataclass
class Saved:
    """Saved bytes of one forward: ``by_block[block][category]`` (block -1: outside the blocks),
    and the tensors behind each entry ``(shape, dtype)`` for the listing."""

    by_block: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    tensors: dict = field(default_factory=lambda: defaultdict(list))

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_block.values())

    def block(self, i: int) -> dict[str, int]:
        return dict(self.by_block.get(i, {}))


def _frame_category(frame) -> str | None:
    """Category of the innermost frame of this package on the stack (None: none there)."""
    f = frame
    while f is not None:
        path = os.path.abspath(f.f_code.co_filename)
        if path.startswith(_PKG) and path != _SELF:
            rel = os.path.relpath(path, _PKG).replace(os.sep, "/")
            line = linecache.getline(path, f.f_lineno)
            cat = next((c for suffix, func, text, c in RULES if rel.endswith(suffix)
                        and func in ("*", f.f_code.co_name) and (text == "*" or text in line)), f"{rel}:{f.f_code.co_name}")
            if cat is not None:
                return cat
        f = f.f_back
    return None


def _frame_block(frame, blocks: dict[int, int]) -> int | None:
    """Index of the block whose method (or mixer's) is on the stack, from ``self``."""
    f = frame
    while f is not None:
        obj = f.f_locals.get("self")
        if obj is not None and id(obj) in blocks:
            return blocks[id(obj)]
        f = f.f_back
    return None


def count_saved(model: nn.Module, run, blocks: list[nn.Module] | None = None) -> Saved:
    """Saved-for-backward bytes of ``run()`` (a forward of ``model``), by block and category.

    ``blocks``: the model's residual blocks, in order (default ``model.layers`` or
    ``model.blocks``); a block's sub-modules count for it. Parameters are not counted."""
    blocks = list(blocks if blocks is not None else getattr(model, "layers", None) or getattr(model, "blocks"))
    block_ids: dict[int, int] = {}
    for i, blk in enumerate(blocks):
        for m in blk.modules():
            block_ids[id(m)] = i
    names = {id(m): n for n, m in model.named_modules()}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    stack: list[nn.Module] = []
    seen: set[int] = set()
    out = Saved()

    def pre(mod, _args):
        stack.append(mod)

    def post(mod, _args, _out):
        if stack and stack[-1] is mod:
            stack.pop()

    def pack(t):
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return t
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr in params or ptr in seen or st.nbytes() == 0:
            return t
        seen.add(ptr)
        frame = sys._getframe(1)
        cat = _frame_category(frame)
        mod = stack[-1] if stack else None
        block = block_ids.get(id(mod)) if mod is not None else None
        if mod is not None and not isinstance(mod, type(model)):
            name = names.get(id(mod), "")
            key = name.split(".", 2)[-1] if block is not None else name
            if cat is None or cat.startswith(("model", "bench/")) or "." not in key and key in _MODULE_CATEGORIES:
                cat = _MODULE_CATEGORIES.get(key, cat or type(mod).__name__)
        if cat in ("fused inner op", "fused mixer op") and t.dtype == torch.float32 and t.dim() == 4:
            cat = "scan tile states (fp32)"  # (B, d_inner, L / BLOCK_L, N) per direction
        elif cat == "fused inner op" and t.dim() == 3:
            cat = "xz (fused inner op)"
        if block is None:
            block = _frame_block(frame, block_ids)
        b = -1 if block is None else block
        cat = cat or "other"
        out.by_block[b][cat] += st.nbytes()
        out.tensors[(b, cat)].append((tuple(t.shape), str(t.dtype).replace("torch.", ""), st.nbytes()))
        return t

    h1 = nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = nn.modules.module.register_module_forward_hook(post)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
    finally:
        h1.remove()
        h2.remove()
    return out


def scale(small: dict[str, int], large: dict[str, int], l_small: int, l_large: int, l_target: int,
          batch: int = 1) -> dict[str, float]:
    """Per category, ``a + b L`` through the two measurements (batch 1), at ``batch`` x ``l_target``
    (``b L`` scales with the batch, ``a``, the length-independent part, does not)."""
    out = {}
    for cat in set(small) | set(large):
        s, g = small.get(cat, 0), large.get(cat, 0)
        slope = (g - s) / (l_large - l_small)
        out[cat] = max(0.0, s - slope * l_small) + batch * slope * l_target
    return out


def mamba_ssm_inner_bytes(batch: int, length: int, d_inner: int, d_state: int, dt_rank: int,
                          act_bytes: int = 2, chunk: int = 2048) -> dict[str, int]:
    """What mamba-ssm's fused ``mamba_inner_fn`` (2.x, ``checkpoint_lvl=1``) saves for ONE
    direction, from its ``save_for_backward``: xz (B, 2 d_inner, L), x_dbl (B L, dt_rank + 2N),
    B and C as contiguous (B, 1, N, L) copies, the pre-gate scan output (B, d_inner, L) and the
    fp32 chunk states (B, d_inner, ceil(L / 2048), 2N); conv output and delta are recomputed.
    The BiMamba mixer on mamba_ssm (``forward_directional``) calls it twice, the backward
    direction on a flipped copy of xz (a second xz); the forward direction's xz is in_proj's output."""
    n_chunks = -(-length // chunk)
    return {
        "xz": batch * 2 * d_inner * length * act_bytes,
        "x_dbl, B, C": batch * length * (dt_rank + 2 * d_state) * act_bytes + 2 * batch * d_state * length * act_bytes,
        "scan output (pre-gate)": batch * d_inner * length * act_bytes,
        "chunk states": batch * d_inner * n_chunks * 2 * d_state * 4,
    }


def mamba_ssm_row(measured: dict, batch: int, length: int, d_inner: int = 384, d_state: int = 16,
                  dt_rank: int = 12) -> dict:
    """The ``mamba_ssm`` path's per-block bytes: the norm and ``in_proj`` as measured on another
    backend (``measured``, a row of :func:`main`; the same module code) and two
    :func:`mamba_ssm_inner_bytes` directions, the backward one with its own (flipped) ``xz``."""
    one = mamba_ssm_inner_bytes(batch, length, d_inner, d_state, dt_rank)
    per = {c: v for c, v in measured["per_block"].items() if c in ("add+norm (residual)", "in_proj")}
    per["mamba_inner: xz (fwd direction: in_proj's output)"] = one["xz"]
    per["mamba_inner: xz flipped copy (bwd direction)"] = one["xz"]
    for k in ("x_dbl, B, C", "scan output (pre-gate)", "chunk states"):
        per[f"mamba_inner: {k} (2 directions)"] = 2 * one[k]
    return {"per_block": per, "outside": measured["outside"]}


# -- the table ---------------------------------------------------------------------------------

def markdown(columns: dict[str, dict], depth: dict[str, int]) -> str:
    """Per-block MiB by category, one column per ``name -> row`` (a row of :func:`main`'s JSON),
    then the blocks' total (``depth[name]`` blocks) and what lies outside them."""
    mib = 2 ** 20
    cats = sorted({c for r in columns.values() for c in r["per_block"]},
                  key=lambda c: -max(r["per_block"].get(c, 0) for r in columns.values()))
    head = "| category | " + " | ".join(columns) + " |"
    lines = [head, "|---|" + "---:|" * len(columns)]
    for c in cats:
        lines.append(f"| {c} | " + " | ".join(f"{r['per_block'].get(c, 0) / mib:.1f}" if r["per_block"].get(c) else "-"
                                              for r in columns.values()) + " |")
    per = {n: sum(r["per_block"].values()) for n, r in columns.items()}
    out = {n: sum(r["outside"].values()) for n, r in columns.items()}
    lines.append("| **per block** | " + " | ".join(f"**{per[n] / mib:.1f}**" for n in columns) + " |")
    lines.append("| blocks | " + " | ".join(str(depth[n]) for n in columns) + " |")
    lines.append("| outside the blocks | " + " | ".join(f"{out[n] / mib:.1f}" for n in columns) + " |")
    lines.append("| **saved, GiB** | " + " | ".join(f"**{(depth[n] * per[n] + out[n]) / 2 ** 30:.2f}**"
                                                   for n in columns) + " |")
    return "\n".join(lines)


def _videomamba(frames, img, depth, backend):
    import videomamba

    return videomamba.create_model("videomamba_tiny", num_frames=frames, img_size=img, depth=depth,
                                   num_classes=400, drop_path_rate=0.0, backend=backend)


def _baseline(frames, img, depth):
    from .baseline import create_baseline

    return create_baseline("attention_tiny", num_frames=frames, img_size=img, depth=depth)


def measure(build, frames: int, img: int, autocast: bool = True) -> Saved:
    """Saved bytes of one training forward (batch 1, bf16 CPU autocast) of ``build(frames)``."""
    torch.manual_seed(0)
    model = build(frames).train()
    video = torch.randn(1, 3, frames, img, img)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()

    def run():
        with ctx:
            model(video)

    return count_saved(model, run)


def main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="torch,triton", help="VideoMamba backends (triton needs TRITON_INTERPRET=1 on CPU)")
    p.add_argument("--frames", default="2,4", help="two small frame counts to fit a + b L")
    p.add_argument("--img", type=int, default=64, help="frame size for the CPU measurement (px)")
    p.add_argument("--depth", type=int, default=3, help="blocks built (per-block numbers from block 1)")
    p.add_argument("--target", default="4x64x224", help="BATCHxFRAMESxPX to scale to (the GPU benchmark's)")
    p.add_argument("--json", default=None, help="write the numbers here")
    args = p.parse_args(argv)
    f1, f2 = (int(x) for x in args.frames.split(","))
    tb, tf, tpx = (int(x) for x in args.target.split("x"))
    patches = (args.img // 16) ** 2
    l1, l2, lt = 1 + f1 * patches, 1 + f2 * patches, 1 + tf * (tpx // 16) ** 2
    rows: dict[str, dict] = {}
    builds = {f"videomamba_tiny/{b}": (lambda f, b=b: _videomamba(f, args.img, args.depth, b))
              for b in args.backends.split(",") if b}
    builds["attention_tiny"] = lambda f: _baseline(f, args.img, args.depth)
    for name, build in builds.items():
        s1, s2 = measure(build, f1, args.img), measure(build, f2, args.img)
        blk = 1 if args.depth > 1 else 0
        per_block = scale(s1.block(blk), s2.block(blk), l1, l2, lt, tb)
        outside = scale(s1.block(-1), s2.block(-1), l1, l2, lt, tb)
        rows[name] = {"per_block": per_block, "outside": outside, "per_block_small": s2.block(blk),
                      "tensors_small": {c: s2.tensors[(blk, c)] for c in s2.block(blk)}}
    mib = 2 ** 20
    print(f"saved activations at batch {tb}, L = {lt} (fitted from L = {l1}, {l2} on the CPU, bf16 autocast), MiB")
    for name, r in rows.items():
        total = sum(r["per_block"].values())
        print(f"\n{name}: per block {total / mib:.1f} MiB; outside the blocks {sum(r['outside'].values()) / mib:.1f} MiB")
        for cat, v in sorted(r["per_block"].items(), key=lambda kv: -kv[1]):
            print(f"  {cat:28s} {v / mib:9.1f}   {r['tensors_small'].get(cat, [])[:6]}")
        for cat, v in sorted(r["outside"].items(), key=lambda kv: -kv[1]):
            print(f"  [outside] {cat:18s} {v / mib:9.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"target": {"batch": tb, "length": lt}, "fit_lengths": [l1, l2], "rows": rows}, fh, indent=1,
                      default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
