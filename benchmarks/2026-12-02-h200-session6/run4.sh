#!/usr/bin/env bash
# Session 6 GPU call 4 (run4.sh): Ti training with the final defaults against the FlashAttention ViT-Ti, same run.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 140 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8 --time-limit 125 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
date -u
