#!/usr/bin/env bash
# Lead's GPU call 7: scan-kernel sweep (BLOCK_L 8 / 32, backward register caps) at the Ti shapes; profile of the step.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --quick --repeats 8 --out $OUT/scan \
  --sweep "${SWEEP}" > $OUT/scan.log 2>&1
echo "scan rc $? at $((SECONDS - T0)) s"; grep "^| ti" $OUT/scan/scan_kernels.md | cut -d'|' -f2,7,8,9,11,12,13
[ -n "${PROF:-}" ] && timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"; f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -14 $f
date -u
