#!/usr/bin/env bash
# Lead's GPU call 9: scan outputs at the row pitch: CUDA tests; Ti training vs FlashAttention ViT-Ti at 64f/8f; profile.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 150 env PYTHONPATH=$P python3 -m pytest tests/test_bimamba_inner.py tests/test_saved_activations.py tests/test_ops_triton.py -q -x -p no:cacheprovider -k "not interpreter" 2>&1 | tail -4
echo "tests at $((SECONDS - T0)) s"
timeout 120 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8 --time-limit 100 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"; f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -30 $f | cut -c1-150
date -u
