#!/usr/bin/env bash
# PREPARED FOR THE NEXT SESSION (session 9 ran out of device time): where the Ti training step's time goes
# with the kernels of session 9 (torch profiler of one step at 64 and 8 frames), and where the new sloop
# kernels stall per SASS instruction (ncu SourceCounters, as session 8's run3.sh; summarise the CSVs with
# session 8's call3/regions.py; ncu_layer.py: one Ti 64-frame layer, training).
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
for f in 64 8; do
  timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train \
    --frames $f --no-bench --profile videomamba_tiny:triton:$f --time-limit 80 --out $OUT/prof$f > $OUT/prof$f.log 2>&1
  echo "prof $f rc $? at $((SECONDS - T0)) s"; head -30 $OUT/prof$f/profile_videomamba_tiny_triton_${f}_train.txt | cut -c1-150
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for k in bwd fwd; do
  timeout 150 env PYTHONPATH=$P $NCU --clock-control none -k regex:sloop_$k --launch-skip 2 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --import-source yes -o $OUT/$k python3 benchmarks/2026-12-01-h200-session4/ncu_layer.py > $OUT/ncu_$k.log 2>&1
  echo "ncu $k rc $? at $((SECONDS - T0)) s"
  $NCU -i $OUT/$k.ncu-rep --page details > $OUT/${k}_details.txt 2>&1
  $NCU -i $OUT/$k.ncu-rep --page source --csv --print-source sass > $OUT/${k}_sass.csv 2>&1
  gzip -f $OUT/${k}_sass.csv; rm -f $OUT/$k.ncu-rep
  grep -iE -A12 "Warp Stall Sampling|stall" $OUT/${k}_details.txt | head -30
done
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
