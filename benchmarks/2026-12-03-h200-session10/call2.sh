#!/usr/bin/env bash
# Call 2 of session 10: the fused norm with its weight gradient as three torch ops (call 1 showed torch's
# GammaBeta kernel at 3.8 ms per step), its CUDA test and the CUDA-graph bench step's test; Ti training,
# same run: eager (main before this session, .gpu-lead/old, and now) and with --cuda-graphs (now), each
# against the FlashAttention ViT-Ti; a profile of the eager step at 64 frames; a sweep of the conv kernels'
# blocks (their defaults were never tuned on an H200; call 1: the backward 0.35 ms per layer, ~11x its HBM floor).
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform; OLD=$PWD/.gpu-lead/old/platform
nproc; uptime; python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 150 env PYTHONPATH=$P python3 -m pytest tests/test_saved_activations.py tests/test_bench.py -q -p no:cacheprovider -k "cuda or add_rms" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.conv_kernels --out $OUT/conv --repeats 20 --sweep "BWD_BLOCK_L=512;BWD_BLOCK_L=1024;BWD_BLOCK_L=1024,BWD_NUM_WARPS=8;BWD_BLOCK_L=2048,BWD_NUM_WARPS=8;BWD_BLOCK_D=4,BWD_BLOCK_L=256;BWD_BLOCK_D=4,BWD_BLOCK_L=512,BWD_NUM_WARPS=8;BWD_BLOCK_D=8,BWD_BLOCK_L=256,BWD_NUM_WARPS=8;BWD_BLOCK_D=1,BWD_BLOCK_L=1024;BLOCK_L=1024,BLOCK_D=2;BLOCK_L=256,BLOCK_D=4" > $OUT/conv.log 2>&1
echo "conv sweep rc $? at $((SECONDS - T0)) s"; grep -E "^\| " $OUT/conv/conv_kernels.md | cut -c1-200 | head -60
PYTHONPATH=$P python3 - <<'PY'
import torch
from videomamba.ops.triton.config import scan_config
for b, L in ((32, 1569), (4, 12545)):
    for bw in (False, True):
        cfg = scan_config(b, 384, 16, L, (384,) * 4, torch.device("cuda"), backward=bw, block_l=8 if bw else None)
        print(b, L, "bwd" if bw else "fwd", {k: cfg.get(k) for k in ("kernel", "BLOCK_D", "BLOCK_L", "NS", "nseg", "tps", "ntiles", "num_warps", "maxnreg")})
PY
run() {  # name, PYTHONPATH, models, extra args, extra env
  timeout 130 env ${5:-X=1} PYTHONPATH=$2 python3 -m videomamba.bench.gpu --models $3 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 120 $4 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md
}
run now $P videomamba_tiny,attention_tiny ""
run old $OLD videomamba_tiny,attention_tiny ""
run graphs $P videomamba_tiny,attention_tiny --cuda-graphs
run graphs_save $P videomamba_tiny --cuda-graphs VIDEOMAMBA_TRITON_SAVE_STATES=1
timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train \
    --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof64 > $OUT/prof64.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"; head -24 $OUT/prof64/profile_videomamba_tiny_triton_64_train.txt | cut -c1-150
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
