#!/usr/bin/env bash
# Call 2 of session 14: B / C rows prefetched into L1 (bc_parts.py), Nsight Compute's per-instruction stall
# samples of the backward kernel (one Ti 8f layer), and Ti training with the prefetches on.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session14
date -u; T0=$SECONDS; P=$PWD/platform
timeout 150 env PYTHONPATH=$P python3 $D/bc_parts.py $OUT > $OUT/bc.log 2>&1; echo "bc rc $? at $((SECONDS - T0)) s"
python3 - $OUT/bc_parts.json <<'PY' || tail -20 $OUT/bc.log
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, "nseg", r["nseg"], "bitwise", r["bitwise"])
    for k, v in r["interleaved_ms"].items():
        print("  %-28s %.4f ms  %s" % (k, v, r["profiler"][k]))
PY
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 150 env PYTHONPATH=$P $NCU --clock-control none -k "regex:sloop_bwd" --launch-skip 1 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --section Occupancy --import-source no -o $OUT/bwd \
  python3 benchmarks/2026-12-03-h200-session13/ncu_layer.py > $OUT/ncu.log 2>&1; echo "ncu rc $? at $((SECONDS - T0)) s"
$NCU --import $OUT/bwd.ncu-rep --page source --csv --print-source sass > $OUT/bwd_source.csv 2> $OUT/ncu_source.err
echo "source rc $? lines $(wc -l < $OUT/bwd_source.csv)"; head -c 600 $OUT/bwd_source.csv; echo; head -5 $OUT/ncu_source.err
$NCU --import $OUT/bwd.ncu-rep --page details --csv > $OUT/bwd_details.csv 2>/dev/null; grep -i "stall\|warp cycles\|issued" $OUT/bwd_details.csv | cut -c1-200 | head -30
B="python3 -m videomamba.bench.gpu --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs"
timeout 110 env PYTHONPATH=$P VIDEOMAMBA_TRITON_PREFETCH_BC=1 VIDEOMAMBA_TRITON_BWD_PREFETCH_BC=1 $B --models videomamba_tiny,attention_tiny --out $OUT/bench_pf > $OUT/bench_pf.log 2>&1
echo "bench prefetch rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench_pf/results.md | cut -c1-200
date -u
rm -f $OUT/bwd.ncu-rep.tmp; tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
