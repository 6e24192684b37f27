#!/usr/bin/env bash
# Call 1 of session 12: B and C loaded 16 bytes at a time in the sloop kernels (VIDEOMAMBA_TRITON_BC_VEC).
# CUDA tests of the new path (public API at L a multiple of 8, the mixer at its padded pitch), the scan's
# launches with and without it (scan_parts.py, interleaved), Ti training with CUDA graphs with and without
# it, and a profile of the 8-frame step.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 200 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py tests/test_bimamba_inner.py tests/test_saved_activations.py -q -p no:cacheprovider -k "(cuda and (bc_vec or realistic or bi_selective)) or padded_rows or writes_forward or fused_mixer" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -5 $OUT/tests.log | cut -c1-400
timeout 120 env PYTHONPATH=$P python3 benchmarks/2026-12-03-h200-session12/scan_parts.py $OUT > $OUT/parts.log 2>&1; echo "parts rc $? at $((SECONDS - T0)) s"; grep -E "check|BC_VEC" $OUT/parts.log
run() {  # name, models, extra args, env
  timeout 90 env $4 PYTHONPATH=$P python3 -m videomamba.bench.gpu --models $2 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 80 $3 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md | cut -c1-200
}
run vec videomamba_tiny,attention_tiny --cuda-graphs VIDEOMAMBA_TRITON_BC_VEC=1
run scalar videomamba_tiny --cuda-graphs VIDEOMAMBA_TRITON_BC_VEC=0
timeout 60 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 8 --no-bench --profile videomamba_tiny:triton:8 --out $OUT/prof8 > $OUT/prof8.log 2>&1
echo "prof8 rc $? at $((SECONDS - T0)) s"; sed -n 2,30p $OUT/prof8/profile_videomamba_tiny_triton_8_train.txt | cut -c1-180
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
