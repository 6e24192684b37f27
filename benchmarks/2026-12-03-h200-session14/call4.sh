#!/usr/bin/env bash
# Call 4 of session 14: the backward's partials loaded into registers with the rows (BWD_PRELOAD_PART) against
# the new defaults (B / C and partials prefetched into L1); the better one (decided here, at both Ti shapes) then
# runs Ti training with CUDA graphs, with the scan's states kept (SAVE_STATES=1), and the CUDA tests.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session14
date -u; T0=$SECONDS; P=$PWD/platform
V='{"bwd": [{}, {"BWD_PRELOAD_PART": 1}, {"BWD_PREFETCH_PART": 0}]}'
timeout 120 env PYTHONPATH=$P python3 $D/bc_parts.py $OUT "$V" > $OUT/bc4.log 2>&1; echo "bc rc $? at $((SECONDS - T0)) s"
WIN=$(python3 - $OUT/bc_parts_3.json <<'PY' || echo 0
import json, sys
d = json.load(open(sys.argv[1])); win = True
for shape, r in d.items():
    print(shape, "nseg", r["nseg"], "bitwise", r["bitwise"], file=sys.stderr)
    for k, v in r["interleaved_ms"].items():
        print("  %-40s %.4f ms  %s" % (k, v, r["profiler"][k]), file=sys.stderr)
    t = r["interleaved_ms"]
    win = win and all(r["bitwise"].values()) and t["bwd: BWD_PRELOAD_PART=1"] < 0.995 * t["bwd: default"]
print(1 if win else 0)
PY
)
echo "BWD_PRELOAD_PART wins: $WIN"
export VIDEOMAMBA_TRITON_BWD_PRELOAD_PART=$WIN
B="python3 -m videomamba.bench.gpu --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs"
timeout 110 env PYTHONPATH=$P $B --models videomamba_tiny,attention_tiny --out $OUT/bench > $OUT/bench.log 2>&1
echo "bench rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench/results.md | cut -c1-200
timeout 80 env PYTHONPATH=$P VIDEOMAMBA_TRITON_SAVE_STATES=1 $B --models videomamba_tiny --out $OUT/bench_save > $OUT/bench_save.log 2>&1
echo "bench save-states rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench_save/results.md | cut -c1-200
timeout 230 env PYTHONPATH=$P python3 -m pytest tests/test_saved_activations.py tests/test_bimamba_inner.py tests/test_ops_triton.py -q -p no:cacheprovider -k "not subprocess and (fused_mixer or padded_rows or realistic or writes_forward or partials_loaded or (overrides and cuda and PRELOAD_PART))" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
