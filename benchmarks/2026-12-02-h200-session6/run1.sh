#!/usr/bin/env bash
# Session 6 GPU call 1 (run1.sh): CUDA tests of the new scan code; Ti scan kernels, base (16fc721) vs new + config sweep.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 170 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py tests/test_bimamba_inner.py -q -x -p no:cacheprovider -k "not interpreter" 2>&1 | tail -3
echo "tests at $((SECONDS - T0)) s"
timeout 100 env PYTHONPATH=$PWD/.gpu-lead/base/platform python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --sweep "" --repeats 10 --out $OUT/base > $OUT/base.log 2>&1; echo "base rc $? at $((SECONDS - T0)) s"
timeout 300 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --repeats 10 --out $OUT/new \
  --sweep "BWD_BLOCK_D=8,BWD_NUM_WARPS=1;BLOCK_L=8;BLOCK_L=8,BWD_BLOCK_D=8,BWD_NUM_WARPS=1;BLOCK_L=8,BWD_BLOCK_D=16,BWD_NUM_WARPS=1;BLOCK_L=4,BWD_BLOCK_D=32,BWD_NUM_WARPS=1;BLOCK_L=8,BWD_BLOCK_D=16,BWD_NUM_WARPS=1,BWD_NS=2;BWD_BLOCK_D=32,BWD_NUM_WARPS=2" > $OUT/new.log 2>&1; echo "new rc $? at $((SECONDS - T0)) s"
grep -E "^\| ti" $OUT/base/scan_kernels.md | cut -d'|' -f2,6,7,9,11,14,15
grep -E "^\| ti" $OUT/new/scan_kernels.md | cut -d'|' -f2,6,7,9,11,14,15
date -u
