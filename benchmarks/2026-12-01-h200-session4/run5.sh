#!/usr/bin/env bash
# Lead's GPU call 5: (A) Triton conv: CUDA tests + conv bench (Ti shapes, sweep); (B) Ti training before (da8bc06)
# vs after (projections + Triton conv) vs FlashAttention ViT-Ti, 64f/8f; (C) profile; (D) forward register caps.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 100 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton_conv.py tests/test_ops_projection.py -q -p no:cacheprovider 2>&1 | tail -4
echo "conv tests at $((SECONDS - T0)) s"
timeout 100 env PYTHONPATH=$P python3 -m videomamba.bench.conv_kernels --quick --out $OUT/conv > $OUT/conv.log 2>&1
echo "conv bench rc $? at $((SECONDS - T0)) s"; grep "^|" $OUT/conv/conv_kernels.md | head -40
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8"
for v in new base; do
  Q=$P; [ $v = base ] && Q=$PWD/.gpu-lead/base/platform
  timeout 120 env PYTHONPATH=$Q $B --time-limit 100 --out $OUT/bench_$v > $OUT/bench_$v.log 2>&1; echo "$v rc $? at $((SECONDS - T0)) s"
  grep -E "^\| (videomamba|attention)" $OUT/bench_$v/results.md
done
timeout 90 env PYTHONPATH=$P $B --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"
f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -14 $f; sed -n '/^  *ms  *%  *calls/,/^$/p' $f | head -25; sed -n '/by source line/,/^$/p' $f | head -30
timeout 120 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --quick --repeats 8 --out $OUT/scan \
  --sweep "MAXNREG=128,BWD_MAXNREG=255;MAXNREG=112,BWD_MAXNREG=255" > $OUT/scan.log 2>&1
echo "scan rc $? at $((SECONDS - T0)) s"; grep "^|" $OUT/scan/scan_kernels.md | head -30
date -u
