#!/usr/bin/env bash
# Lead's GPU call 8: padded rows (aligned GEMMs) in BiMambaTriton: CUDA tests; Ti training new vs before (da8bc06)
# vs FlashAttention ViT-Ti at 64f/8f; profile of the new step.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 120 env PYTHONPATH=$P python3 -m pytest tests/test_bimamba_inner.py tests/test_saved_activations.py tests/test_ops_projection.py -q -x -p no:cacheprovider 2>&1 | tail -15
echo "tests at $((SECONDS - T0)) s"
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8"
for v in new base; do
  Q=$P; [ $v = base ] && Q=$PWD/.gpu-lead/base/platform
  timeout 120 env PYTHONPATH=$Q $B --time-limit 100 --out $OUT/bench_$v > $OUT/bench_$v.log 2>&1; echo "$v rc $? at $((SECONDS - T0)) s"
  grep -E "^\| (videomamba|attention)" $OUT/bench_$v/results.md
done
timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"; f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -40 $f | cut -c1-150
date -u
