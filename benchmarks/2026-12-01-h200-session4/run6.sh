#!/usr/bin/env bash
# Lead's GPU call 6: conv CUDA test (verbose); Ti training before (da8bc06) vs after (projections, Triton conv,
# forward register cap) vs FlashAttention ViT-Ti, 64f/8f; scan kernels at the Ti/S/M shapes; GPU checks.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 100 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton_conv.py tests/test_ops_triton.py -q -x -p no:cacheprovider -k "cuda or realistic or scan_config" 2>&1 | tail -25
echo "tests at $((SECONDS - T0)) s"
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8"
for v in new base; do
  Q=$P; [ $v = base ] && Q=$PWD/.gpu-lead/base/platform
  timeout 120 env PYTHONPATH=$Q $B --time-limit 100 --out $OUT/bench_$v > $OUT/bench_$v.log 2>&1; echo "$v rc $? at $((SECONDS - T0)) s"
  grep -E "^\| (videomamba|attention)" $OUT/bench_$v/results.md
done
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --repeats 8 --out $OUT/scan --sweep "" > $OUT/scan.log 2>&1
echo "scan rc $? at $((SECONDS - T0)) s"; grep "^|" $OUT/scan/scan_kernels.md | head -12 | cut -c1-220
timeout 120 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --no-bench --check --backends triton,torch --out $OUT/check > $OUT/check.log 2>&1
echo "check rc $? at $((SECONDS - T0)) s"; grep -iE "pass|fail" $OUT/check/results.md | head -20
date -u
