#!/usr/bin/env bash
# Session 6 GPU call 3 (run3.sh): CUDA tests; Ti scan kernels base (16fc721) vs new + backward sweep (same run);
# Ti training with the backward's dB/dC atomics (memory) and a second backward config; GPU checks.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform; B=$PWD/.gpu-lead/base/platform
timeout 200 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py tests/test_bimamba_inner.py tests/test_saved_activations.py -q -p no:cacheprovider -k "not interpreter" > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -3 $OUT/tests.log | cut -c1-300
echo "tests at $((SECONDS - T0)) s"
timeout 45 env PYTHONPATH=$B python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --sweep "" --repeats 10 --out $OUT/scanbase > $OUT/scanbase.log 2>&1; echo "scan base rc $? at $((SECONDS - T0)) s"
timeout 100 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --repeats 10 --out $OUT/scan \
  --sweep "BWD_BLOCK_D=16,BWD_NS=2;BWD_MAXNREG=168;BWD_ATOMIC=1;BWD_BLOCK_D=16,BWD_NS=2,BWD_ATOMIC=1;BWD_BLOCK_L=16;BWD_BLOCK_D=16,BWD_NUM_WARPS=2" > $OUT/scan.log 2>&1; echo "scan new rc $? at $((SECONDS - T0)) s"
grep -E "^\| ti" $OUT/scanbase/scan_kernels.md | cut -d'|' -f2,6,7,9,11,14
grep -E "^\| ti" $OUT/scan/scan_kernels.md | cut -d'|' -f2,6,7,9,11,14
timeout 70 env PYTHONPATH=$P VIDEOMAMBA_TRITON_BWD_ATOMIC=1 python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 64,8 --time-limit 60 --out $OUT/benchatomic > $OUT/benchatomic.log 2>&1; echo "atomic bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/benchatomic/results.md
timeout 70 env PYTHONPATH=$P VIDEOMAMBA_TRITON_BWD_BLOCK_D=16 VIDEOMAMBA_TRITON_BWD_NS=2 python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 64,8 --time-limit 60 --out $OUT/bench16 > $OUT/bench16.log 2>&1; echo "bd16 bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench16/results.md
left=$((560 - (SECONDS - T0)))
if [ $left -gt 40 ]; then
timeout $left env PYTHONPATH=$P python3 -m videomamba.bench.gpu --no-bench --check --backends triton,torch --out $OUT/check > $OUT/check.log 2>&1
echo "check rc $? at $((SECONDS - T0)) s"; grep -iE "pass|fail" $OUT/check/results.md | head -12 | cut -c1-200
fi
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
