#!/usr/bin/env bash
# Lead's GPU call 4: (A) Ti training, before (da8bc06, .gpu-lead/base) vs after (working tree: copy-free projections)
# against the FlashAttention ViT-Ti, 64f and 8f; (B) profile of the new step; (C) ncu of the sloop kernels.
set -u
export PYTHONUNBUFFERED=1 GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8"
for v in base new; do
  P=$PWD/platform; [ $v = base ] && P=$PWD/.gpu-lead/base/platform
  timeout 120 env PYTHONPATH=$P $B --time-limit 100 --out $OUT/bench_$v > $OUT/bench_$v.log 2>&1; echo "$v rc $? at $((SECONDS - T0)) s"
  grep -E "^\| (videomamba|attention)" $OUT/bench_$v/results.md
done
timeout 90 env PYTHONPATH=$PWD/platform $B --frames 64 --no-bench --profile videomamba_tiny:triton:64 --time-limit 80 --out $OUT/prof > $OUT/prof.log 2>&1
echo "prof rc $? at $((SECONDS - T0)) s"
f=$OUT/prof/profile_videomamba_tiny_triton_64_train.txt; head -14 $f; sed -n '/by source line/,/^$/p' $f | head -40
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1); echo "ncu: $NCU"
timeout 120 env PYTHONPATH=$PWD/platform $NCU --clock-control none -k regex:sloop --launch-skip 6 --launch-count 3 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
  --section InstructionStats --section MemoryWorkloadAnalysis python3 .gpu-lead/ncu_layer.py > $OUT/ncu.txt 2>&1
echo "ncu rc $? at $((SECONDS - T0)) s"; grep -E "sloop|Duration|Throughput|Registers|Achieved Occupancy|Stall|Issue Slots|Warp Cycles|Eligible|No Eligible|Executed Ipc" $OUT/ncu.txt | head -80
date -u
