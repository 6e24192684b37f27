"""Per-kernel CUDA times of one fwd+bwd of the bidirectional scan (torch.profiler), per config."""
import os, sys, json, torch
from torch.profiler import profile, ProfilerActivity
from videomamba.bench import scan_kernels as sk
from videomamba.ops.triton.config import LAST_LAUNCH
dim, batch, frames = {"ti-64f": (384, 4, 64), "ti-8f": (384, 32, 8)}[sys.argv[1]]
x = sk.make_inputs(dim, batch, frames, torch.device("cuda"))
out = {}
for cfg in sys.argv[2:]:
    env = dict(kv.split("=") for kv in cfg.split(",") if kv)
    with sk.triton_env(env):
        f, fb = sk.step_fns(x, "ours")
        for _ in range(3): fb()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(5): fb()
            torch.cuda.synchronize()
        regs = {k: (getattr(h, "n_regs", None), getattr(h, "n_spills", None)) for k, h in LAST_LAUNCH.items()}
    rows = {}
    for e in p.key_averages():
        if e.device_type is not None and e.self_device_time_total > 0:
            rows[e.key[:60]] = round(e.self_device_time_total / 5 / 1e3, 3)
    out[cfg or "default"] = {"kernels_ms": dict(sorted(rows.items(), key=lambda kv: -kv[1])[:8]), "regs_spills": regs}
    print(cfg or "default", json.dumps(out[cfg or "default"]), flush=True)
json.dump(out, open(os.environ.get("OUTF", "/tmp/prof.json"), "w"), indent=1)
