#!/usr/bin/env bash
# Session 6 GPU call 2 (run2.sh): CUDA tests; Ti scan kernels base (16fc721) vs new + backward sweep (the sweep failed: BWD_BLOCK_L not yet a --sweep name);
# Ti training vs the FlashAttention ViT-Ti (new) and base triton, same run; profile if time is left.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform; B=$PWD/.gpu-lead/base/platform
timeout 190 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py tests/test_bimamba_inner.py -q -x -p no:cacheprovider -k "not interpreter" > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -3 $OUT/tests.log | cut -c1-300
echo "tests at $((SECONDS - T0)) s"
timeout 45 env PYTHONPATH=$B python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --sweep "" --repeats 10 --out $OUT/scanbase > $OUT/scanbase.log 2>&1; echo "scan base rc $? at $((SECONDS - T0)) s"
timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --shapes ti-64f,ti-8f --repeats 10 --out $OUT/scan \
  --sweep "BWD_BLOCK_D=16,BWD_NS=2;BWD_MAXNREG=168;BWD_BLOCK_D=16,BWD_NS=2,BWD_MAXNREG=168;BWD_BLOCK_L=16;BWD_ATOMIC=1" > $OUT/scan.log 2>&1; echo "scan new rc $? at $((SECONDS - T0)) s"
grep -E "^\| ti" $OUT/scanbase/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11
grep -E "^\| ti" $OUT/scan/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11
timeout 125 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8 --time-limit 110 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
timeout 100 env PYTHONPATH=$B python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 64,8 --time-limit 90 --out $OUT/benchbase > $OUT/benchbase.log 2>&1; echo "base bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/benchbase/results.md
left=$((565 - (SECONDS - T0)))
if [ $left -gt 45 ]; then
timeout $left env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit $((left - 5)) --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"; f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -24 $f | cut -c1-150
fi
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
