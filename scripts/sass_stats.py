"""Compile the Triton selective-scan kernels for sm_90 on a machine WITHOUT a GPU and report, per
kernel: registers, spills and the SASS instruction mix (counts by opcode class, static).

A development aid for the scan kernels (ops/triton/README.md): it lets a kernel change be judged
by its register count and instruction mix before spending GPU time. The kernels are compiled
through the project's own launchers at a real shape (Ti 64 frames by default), with the GPU
launch configuration (``scan_config`` as on a 132-SM H200), by a stand-in Triton driver that
reports a CUDA sm_90 target and compiles instead of launching. Needs ptxas / nvdisasm (shipped
with Triton's NVIDIA backend). Run with the Triton version of the GPU image to see what it runs::

    PYTHONPATH=/tmp/t36:platform python scripts/sass_stats.py --out /tmp/sass [--dim 384 --length 12545]

Static counts: instructions in the loop bodies are counted once (see --loops for the innermost
loop's body, which is what runs N/NS times per tile).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _install_fake_driver(capability: int = 90, warp_size: int = 32):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.runtime import driver as drv
    from triton.runtime.jit import JITFunction

    class _FakeDriver:
        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_current_target(self):
            return GPUTarget("cuda", capability, warp_size)

        def get_active_torch_device(self):
            import torch
            return torch.device("cpu")

        def __getattr__(self, name):  # anything else: not needed to compile
            raise AttributeError(name)

    drv.set_active(_FakeDriver())
    compiled: dict[str, object] = {}
    orig_run = JITFunction.run

    def run(self, *args, grid, warmup, **kwargs):
        k = orig_run(self, *args, grid=grid, warmup=True, **kwargs)
        if hasattr(k, "result"):
            k = k.result()
        compiled[self.fn.__name__] = k
        return k

    JITFunction.run = run
    return triton, compiled


def _patch_config(n_sm: int):
    import torch
    from videomamba.ops.triton import config, launch

    config._sm_count = lambda index: n_sm
    orig = config.scan_config

    class _Dev:
        type, index = "cuda", 0

    def scan_config(batch, dim, n_state, length, group_dims, device, backward=False, block_l=None):
        return orig(batch, dim, n_state, length, group_dims, _Dev(), backward, block_l)

    launch.scan_config = scan_config
    launch.check_inputs = lambda u, A: None
    from videomamba.ops.triton import selective_scan
    selective_scan.check_inputs = lambda u, A: None
    return torch


def _sass(cubin: bytes, bindir: Path) -> tuple[str, str]:
    """(SASS text, resource usage line: REG, STACK (spill bytes), SHARED, LOCAL) of a cubin."""
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        sass = subprocess.run([str(bindir / "nvdisasm"), "-c", f.name], capture_output=True, text=True,
                              check=True).stdout
        res = subprocess.run([str(bindir / "cuobjdump"), "-res-usage", f.name], capture_output=True, text=True,
                             check=True).stdout
        m = re.search(r"REG:\d+.*", res)
        return sass, (m.group(0) if m else res.strip())
    finally:
        os.unlink(f.name)


_CLASSES = [
    ("fp32", r"^(FFMA|FMUL|FADD|FMNMX|FSET|FSETP|FSEL|FCHK|FRND)"),
    ("sfu", r"^MUFU"),
    ("shuffle", r"^SHFL"),
    ("global ld", r"^(LDG|LD)\b"),
    ("global st", r"^(STG|ST)\b"),
    ("shared", r"^(LDS|STS|ATOMS|LDSM)"),
    ("local (spill)", r"^(LDL|STL)"),
    ("atomic/red", r"^(RED|ATOM|ATOMG)"),
    ("int/addr", r"^(IMAD|IADD3|IADD|LEA|LOP3|SHF|ISETP|IMNMX|SEL|PRMT|POPC|FLO|BMSK|IABS|I2F|F2I|F2F|I2I)"),
    ("move", r"^(MOV|S2R|CS2R|S2UR|R2UR|UMOV|ULDC|LDC|UIADD3|UIMAD|ULOP3|USHF|ULEA|UISETP|USEL|UPRMT)"),
    ("conv", r"^(F2FP|HADD2|HMUL2|HFMA2)"),
    ("control", r"^(BRA|BSSY|BSYNC|EXIT|BAR|WARPSYNC|NOP|CALL|RET|YIELD|DEPBAR|PLOP3|VOTE|MEMBAR|ERRBAR|CCTL)"),
]


def _mix(sass: str):
    ops = []
    for line in sass.splitlines():
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", line)
        if m:
            ops.append(m.group(1))
    by_class = collections.Counter()
    by_op = collections.Counter()
    for op in ops:
        base = op.split(".")[0]
        by_op[base] += 1
        for name, pat in _CLASSES:
            if re.match(pat, base):
                by_class[name] += 1
                break
        else:
            by_class["other"] += 1
    return len(ops), by_class, by_op


def _loops(sass: str):
    """(start, end, opcode Counter) of each loop (a backward branch to a label), innermost first."""
    ins, labels = [], {}
    for line in sass.splitlines():
        m = re.match(r"\s*(\.L\w+):", line)
        if m:
            labels[m.group(1)] = len(ins)
            continue
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(.*?);", line)
        if m:
            ins.append(m.group(1))
    found = []
    for i, t in enumerate(ins):
        m = re.search(r"BRA\s.*?(\.L\w+)", t)
        if m and m.group(1) in labels and labels[m.group(1)] <= i:
            body = ins[labels[m.group(1)]:i + 1]
            c = collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", x).split()[0].split(".")[0] for x in body)
            found.append((labels[m.group(1)], i, c))
    return sorted(found, key=lambda f: f[1] - f[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--dim", type=int, default=384, help="d_inner (Ti 384, S 768, M 1152)")
    p.add_argument("--length", type=int, default=12545, help="L (Ti 64 frames: 1 + 196 x 64)")
    p.add_argument("--state", type=int, default=16)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--sm", type=int, default=132, help="SMs of the target (H200: 132)")
    p.add_argument("--out", type=Path, default=None, help="folder for the SASS/PTX of each kernel")
    p.add_argument("--kernels", default="sloop_fwd_kernel,sloop_bwd_kernel",
                   help="comma-separated; conv_fwd_kernel / conv_bwd4_kernel compile the depthwise conv's instead")
    p.add_argument("--bc-pitch", type=int, default=0,
                   help="B and C as the first L columns of rows this many elements apart (the model's x_proj "
                        "output: L rounded up to 8), so that the kernels may load them 16 bytes at a time; "
                        "0: contiguous (B, N, L)")
    a = p.parse_args(argv)

    triton, compiled = _install_fake_driver()
    torch = _patch_config(a.sm)
    from videomamba.ops.triton.selective_scan import bi_selective_scan_triton

    bindir = Path(triton.__file__).parent / "backends/nvidia/bin"
    dt = getattr(torch, a.dtype)
    B, D, L, N = a.batch, a.dim, a.length, a.state

    def t(*s, dtype=dt, grad=True):
        x = torch.zeros(*s, dtype=dtype)
        return x.requires_grad_(grad)

    if a.bc_pitch:  # the pad columns are zeros here, as the model's are
        from videomamba.ops.triton import launch
        init = launch.ScanDir.__init__
        launch.ScanDir.__init__ = lambda self, *args, **kw: init(self, *args, **{**kw, "bc_pad_finite": True})

    def bc():
        if not a.bc_pitch:
            return t(B, N, L)
        return torch.zeros(B, N, a.bc_pitch, dtype=dt)[..., :L].requires_grad_()

    want = a.kernels.split(",")
    if any(not k.startswith("conv_") for k in want):
        args = []
        for _ in range(2):
            args += [t(B, D, L), t(B, D, L), t(D, N, dtype=torch.float32), bc(), bc(),
                     t(D, dtype=torch.float32), t(D, dtype=torch.float32)]
        z = t(B, D, L)
        out = bi_selective_scan_triton(*args, z, delta_softplus=True)
        out.backward(torch.zeros_like(out))
    if any(k.startswith("conv_") for k in want):  # both depthwise convs (+ SiLU), forward and backward
        from videomamba.ops.triton import causal_conv1d as cc
        conv_config = cc.conv_config
        cc.conv_config = lambda b, d, l, device, backward=False: conv_config(b, d, l, "cuda", backward)
        cc._check = lambda x, weights: None
        x = t(B, D, L, grad=False)
        w, bias = t(D, 4, dtype=torch.float32, grad=False), t(D, dtype=torch.float32, grad=False)
        cc.bi_conv_fwd(x, w, bias, w, bias, True)
        cc.bi_conv_bwd(x, w, bias, w, bias, x, x, True)

    from videomamba.ops.triton.config import LAST_LAUNCH
    print(f"triton {triton.__version__}, sm_90, B={B} D={D} L={L} N={N} {a.dtype}, B/C vector loads: "
          f"forward {LAST_LAUNCH.get('fwd_bc_vec')}, backward {LAST_LAUNCH.get('bwd_bc_vec')}")
    for name in want:
        k = compiled.get(name)
        if k is None:
            print(f"{name}: not compiled")
            continue
        sass, res = _sass(k.asm["cubin"], bindir)
        n, by_class, by_op = _mix(sass)
        print(f"\n{name}: {res}; {n} SASS instructions (static)")
        for cls, c in by_class.most_common():
            print(f"  {cls:14s} {c:6d}  {100 * c / n:5.1f}%")
        print("  top opcodes: " + ", ".join(f"{op} {c}" for op, c in by_op.most_common(14)))
        for lo, hi, c in _loops(sass):
            if hi - lo > 200:
                print(f"  loop {lo}-{hi} ({hi - lo + 1} instructions): "
                      + ", ".join(f"{op} {n}" for op, n in c.most_common(16)))
        if a.out:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / f"{name}.sass").write_text(sass)
            (a.out / f"{name}.ptx").write_text(k.asm["ptx"])
            (a.out / f"{name}.ttgir").write_text(k.asm["ttgir"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
