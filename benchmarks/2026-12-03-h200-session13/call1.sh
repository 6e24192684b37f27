#!/usr/bin/env bash
# Call 1 of session 13: the segment summaries by state-loop kernels (segment_summary.py) with their own blocks and
# position tiles, the unused segment skipped: CUDA tests of the summaries, the launches timed (scan_parts.py), Nsight Compute on one
# Ti 8f layer's conv, summary and backward kernels, and Ti training with CUDA graphs.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session13
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 120 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py -q -p no:cacheprovider -k "cuda and (realistic or SUM)" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
timeout 190 env PYTHONPATH=$P python3 $D/scan_parts.py $OUT > $OUT/parts.log 2>&1; echo "parts rc $? at $((SECONDS - T0)) s"
python3 - $OUT/scan_parts.json <<'PY'
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, r["cfg"])
    for k, v in r["interleaved_ms"].items():
        p = r["profiler_ms"].get(k, {})
        print(f"  {k:32s} {v:7.3f} ms  kernels {json.dumps({a: round(b, 3) if isinstance(b, float) else b for a, b in p.items()})}  rel {r['max_rel_vs_default'].get(k, 0):.1e}")
PY
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 100 env PYTHONPATH=$P $NCU --clock-control none -k "regex:conv_bwd4|conv_fwd|selective_scan_bwd|sloop_bwd" --launch-skip 5 --launch-count 5 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis \
  --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" python3 $D/ncu_layer.py > $OUT/ncu.txt 2>&1
echo "ncu rc $? at $((SECONDS - T0)) s"
grep -E "^  [a-z_0-9]+_kernel|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Eligible Warps|Issued Warp|Warp Cycles Per Issued|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L1/TEX Hit|Executed Ipc A" $OUT/ncu.txt | head -90
grep -E "^  [a-z_0-9]+_kernel|issue_stalled" $OUT/ncu.txt | awk '/_kernel/ {print $1; next} $3 + 0 > 0.3 {sub("smsp__average_warps_issue_stalled_", "", $1); sub("_per_issue_active.ratio", "", $1); print "   ", $1, $3}' | head -60
# the fastest backward summary variant of scan_parts (least bwd time summed over both shapes), if not the default
BEST=$(python3 - $OUT/scan_parts.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
shapes = ["ti-8f", "ti-64f"]
names = [k for k in r[shapes[0]]["interleaved_ms"] if k.startswith("bwd:") and "tile3d" not in k]
tot = {k: sum(r[s]["interleaved_ms"][k] for s in shapes) for k in names}
n = min(tot, key=tot.get)
print("" if n == "bwd: default" or tot[n] > 0.98 * tot["bwd: default"] else
      " ".join("VIDEOMAMBA_TRITON_" + kv for kv in n.split(": ")[1].split(", ")))
PY
)
echo "best summary tiles: '$BEST'"
run() {  # name, models, env
  timeout 90 env $3 PYTHONPATH=$P python3 -m videomamba.bench.gpu --models $2 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 75 --cuda-graphs --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md | cut -c1-200
}
run bench videomamba_tiny,attention_tiny ""
if [ -n "${BEST// /}" ] && [ $((SECONDS - T0)) -lt 470 ]; then run best videomamba_tiny "$BEST"; fi
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
