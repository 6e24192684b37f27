#!/usr/bin/env bash
# Session 8 GPU call 5 (run5.sh, the command as run): Ti training with the configuration kept after call 4
# (the forward's L1 prefetch on, the backward's off: VIDEOMAMBA_TRITON_BWD_PREFETCH=0 in the code of call 4,
# the default of the code as committed) against the FlashAttention ViT-Ti, same run.
export PYTHONUNBUFFERED=1; timeout 115 env VIDEOMAMBA_TRITON_BWD_PREFETCH=0 PYTHONPATH=$PWD/platform python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 8,64 --time-limit 105 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $?"; grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
