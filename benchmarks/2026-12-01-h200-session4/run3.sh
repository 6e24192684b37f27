#!/usr/bin/env bash
# Lead's GPU call 3 (2026-12-01, session 4): issue 15 baseline of this session: Ti training on triton vs the
# FlashAttention ViT-Ti (64f, 8f), and torch.profiler of one step with device time by source line.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; T0=$SECONDS
P=$PWD/platform
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton"
timeout 150 env PYTHONPATH=$P $B --frames 64,8 --time-limit 60 --out $OUT/bench \
  --profile videomamba_tiny:triton:64 --profile videomamba_tiny:triton:8; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md | head
for f in $OUT/bench/profile_*.txt; do echo "== $f"; head -14 $f; sed -n '/by source line/,/^$/p' $f | head -45; done
date -u
