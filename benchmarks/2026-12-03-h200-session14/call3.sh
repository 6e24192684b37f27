#!/usr/bin/env bash
# Call 3 of session 14: the backward's prefetches (B / C rows, the first direction's partials) one by one and
# together, Ti training with all prefetches on, and Nsight Compute's stall samples of that backward.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session14
date -u; T0=$SECONDS; P=$PWD/platform
V='{"bwd": [{}, {"BWD_PREFETCH_BC": 1}, {"BWD_PREFETCH_PART": 1}, {"BWD_PREFETCH_BC": 1, "BWD_PREFETCH_PART": 1}]}'
timeout 150 env PYTHONPATH=$P python3 $D/bc_parts.py $OUT "$V" > $OUT/bc3.log 2>&1; echo "bc rc $? at $((SECONDS - T0)) s"
python3 - $OUT/bc_parts_3.json <<'PY' || tail -20 $OUT/bc3.log
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, "nseg", r["nseg"], "bitwise", r["bitwise"])
    for k, v in r["interleaved_ms"].items():
        print("  %-48s %.4f ms  %s" % (k, v, r["profiler"][k]))
PY
PF="VIDEOMAMBA_TRITON_PREFETCH_BC=1 VIDEOMAMBA_TRITON_BWD_PREFETCH_BC=1 VIDEOMAMBA_TRITON_BWD_PREFETCH_PART=1"
B="python3 -m videomamba.bench.gpu --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs"
timeout 110 env PYTHONPATH=$P $PF $B --models videomamba_tiny,attention_tiny --out $OUT/bench_pf3 > $OUT/bench_pf3.log 2>&1
echo "bench prefetch rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench_pf3/results.md | cut -c1-200
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 120 env PYTHONPATH=$P $PF $NCU --clock-control none -k "regex:sloop_bwd" --launch-skip 1 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --import-source no -o $OUT/bwd3 \
  python3 benchmarks/2026-12-03-h200-session13/ncu_layer.py > $OUT/ncu3.log 2>&1; echo "ncu rc $? at $((SECONDS - T0)) s"
$NCU --import $OUT/bwd3.ncu-rep --page source --csv --print-source sass > $OUT/bwd3_source.csv 2>/dev/null
$NCU --import $OUT/bwd3.ncu-rep --page details --csv > $OUT/bwd3_details.csv 2>/dev/null; rm -f $OUT/bwd3.ncu-rep
grep -i "Warp Cycles Per Issued" $OUT/bwd3_details.csv | cut -c1-200
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
