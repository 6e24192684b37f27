#!/bin/bash
# issue 15 memory (branch i15-memory): one H200 call. Same run: the new code (.gpu-i15m/platform)
# on triton (default: scan states recomputed) and torch, the new code with
# VIDEOMAMBA_TRITON_SAVE_STATES=1, and main's code (platform/, before), each against the
# FlashAttention ViT-Ti baseline; Ti training, bf16, 8 frames x 32 and 64 frames x 4.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-i15m/COMMIT)
NEW=$PWD/.gpu-i15m/platform
R=/tmp/r; mkdir -p $R
B="python -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --frames 8,64 --mode train"
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  timeout 70 env PYTHONPATH=$NEW $B --backends triton,torch --time-limit 60 --out $R/after; echo "after rc $?"
  timeout 32 env PYTHONPATH=$NEW VIDEOMAMBA_TRITON_SAVE_STATES=1 $B --backends triton --time-limit 25 --out $R/states; echo "states rc $?"
  timeout 32 env PYTHONPATH=$PWD/platform $B --backends triton --time-limit 25 --out $R/before; echo "before rc $?"
  date -u
} > $OUT/run.log 2>&1
for d in after states before; do cp $R/$d/results.md $OUT/$d.md; cp $R/$d/results.json $OUT/$d.json; done
tail -n 40 $R/*/results.md | grep -E "^==>|videomamba_tiny|attention_tiny" 
