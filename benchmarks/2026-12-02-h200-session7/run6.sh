#!/usr/bin/env bash
# Session 7 GPU call 6 (run6.sh): Ti training with the final code (segment counts by config.quantized_segments)
# against the FlashAttention ViT-Ti, same run.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 8,64 --time-limit 135 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
