#!/usr/bin/env bash
# Call 1 of session 11: CUDA tests (the refactored CUDA-graph bench step, not yet run on a GPU; the scan; the
# mixer, with the forward re-run now computing the backward's adjoint segment summaries); Ti training with
# --cuda-graphs, the re-run computing the summaries (default) against the backward's own summary launch
# (VIDEOMAMBA_TRITON_ADJ_FUSED=0), and a profile of the new step at 64 frames; the sloop backward under
# ptxas register caps 192 / 168 / 128 (10 / 12 / 16 resident one-warp programs per SM instead of 8), and
# the conv backward's blocks, both timed interleaved (--interleave: rotating rounds).
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 150 env PYTHONPATH=$P python3 -m pytest tests/test_bench.py tests/test_ops_triton.py tests/test_bimamba_inner.py -q -p no:cacheprovider -k "cuda or bimamba_inner" -x > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
run() {  # name, models, extra args, env
  timeout 90 env $4 PYTHONPATH=$P python3 -m videomamba.bench.gpu --models $2 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 80 $3 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md | cut -c1-200
}
run fused videomamba_tiny,attention_tiny --cuda-graphs VIDEOMAMBA_TRITON_ADJ_FUSED=1
run unfused videomamba_tiny --cuda-graphs VIDEOMAMBA_TRITON_ADJ_FUSED=0
timeout 60 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 64 --no-bench --profile videomamba_tiny:triton:64 --out $OUT/prof64 > $OUT/prof64.log 2>&1
echo "prof64 rc $? at $((SECONDS - T0)) s"; sed -n 2,14p $OUT/prof64/profile_videomamba_tiny_triton_64_train.txt; grep -E "sloop|selective_scan" $OUT/prof64/profile_videomamba_tiny_triton_64_train.txt | head -5
timeout 170 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --out $OUT/scan --shapes ti-8f,ti-64f --sweep-all --repeats 20 --interleave 5 --sweep "BWD_MAXNREG=192;BWD_MAXNREG=168;BWD_MAXNREG=128" > $OUT/scan.log 2>&1
echo "scan rc $? at $((SECONDS - T0)) s"; grep -E "^\| (ti|s|m)-" $OUT/scan/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11,14
timeout 80 env PYTHONPATH=$P python3 -m videomamba.bench.conv_kernels --out $OUT/conv --repeats 30 --interleave 6 --sweep-all --shapes ti-8f,ti-64f --sweep "BWD_BLOCK_D=4,BWD_BLOCK_L=512,BWD_NUM_WARPS=8;BWD_BLOCK_L=512;BWD_BLOCK_D=4" > $OUT/conv.log 2>&1
echo "conv rc $? at $((SECONDS - T0)) s"; grep -E "^\| (ti|s|m)-" $OUT/conv/conv_kernels.md | grep ours | cut -d'|' -f2,6,7,9,10
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
