#!/usr/bin/env bash
# Call 1 of session 14: the column picks (scan_parts.py: before / tree / tree + H_LOOP), Ti training with CUDA
# graphs at the new defaults, with the backward's H_LOOP and with the scan's states kept (SAVE_STATES=1), a
# profile of the 8-frame step, and the CUDA tests of the scan.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session14
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 150 env PYTHONPATH=$P python3 $D/scan_parts.py $OUT > $OUT/parts.log 2>&1; echo "parts rc $? at $((SECONDS - T0)) s"
python3 - $OUT/scan_parts.json <<'PY' || tail -20 $OUT/parts.log
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, r["cfg"]); [print("  %-22s %.4f ms  prof %s" % (k, v, r["profiler_ms"][k])) for k, v in r["interleaved_ms"].items()]
    print("  vs before:", r["vs_before"])
PY
B="python3 -m videomamba.bench.gpu --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs"
timeout 110 env PYTHONPATH=$P $B --models videomamba_tiny,attention_tiny --out $OUT/bench > $OUT/bench.log 2>&1
echo "bench rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench/results.md | cut -c1-200
timeout 80 env PYTHONPATH=$P VIDEOMAMBA_TRITON_BWD_H_LOOP=1 $B --models videomamba_tiny --out $OUT/bench_hloop > $OUT/bench_hloop.log 2>&1
echo "bench hloop rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench_hloop/results.md | cut -c1-200
timeout 80 env PYTHONPATH=$P VIDEOMAMBA_TRITON_SAVE_STATES=1 $B --models videomamba_tiny --out $OUT/bench_save > $OUT/bench_save.log 2>&1
echo "bench save-states rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench_save/results.md | cut -c1-200
timeout 60 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 8 --no-bench --profile videomamba_tiny:triton:8 --out $OUT/prof8 > $OUT/prof8.log 2>&1
echo "prof8 rc $? at $((SECONDS - T0)) s"; sed -n 2,30p $OUT/prof8/profile_videomamba_tiny_triton_8_train.txt | cut -c1-150
timeout 200 env PYTHONPATH=$P python3 -m pytest tests/test_saved_activations.py tests/test_bimamba_inner.py tests/test_ops_triton.py -q -p no:cacheprovider -k "not subprocess and (fused_mixer or padded_rows or realistic or writes_forward or (overrides and cuda and H_LOOP))" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
