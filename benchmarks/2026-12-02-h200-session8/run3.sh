#!/usr/bin/env bash
# Session 8 GPU call 3 (run3.sh): where the sloop kernels (main, no experiment) stall, per SASS instruction:
# ncu SourceCounters (warp-stall samples) of the backward and forward main kernels, one Ti 64f layer, training.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
$NCU --version; $NCU --help > $OUT/ncu_help.txt 2>&1; grep -A4 -E "print-source|--page" $OUT/ncu_help.txt | head -30
for k in bwd fwd; do
  timeout 150 env PYTHONPATH=$P $NCU --clock-control none -k regex:sloop_$k --launch-skip 2 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --import-source yes -o $OUT/$k python3 .gpu-lead/ncu_layer.py > $OUT/ncu_$k.log 2>&1
  echo "ncu $k rc $? at $((SECONDS - T0)) s"
  $NCU -i $OUT/$k.ncu-rep --page details > $OUT/${k}_details.txt 2>&1
  $NCU -i $OUT/$k.ncu-rep --page source --csv --print-source sass > $OUT/${k}_sass.csv 2>&1 || \
    $NCU -i $OUT/$k.ncu-rep --page source --csv > $OUT/${k}_sass.csv 2>&1
  $NCU -i $OUT/$k.ncu-rep --page source --csv --print-source python > $OUT/${k}_py.csv 2>&1 || true
  wc -c $OUT/${k}_sass.csv $OUT/${k}_py.csv; head -c 600 $OUT/${k}_sass.csv; echo
  grep -iE -A12 "Warp Stall Sampling|stall" $OUT/${k}_details.txt | head -40
done
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
