#!/usr/bin/env bash
# Call 2 of session 12: the sloop backward's state loop unrolled (VIDEOMAMBA_TRITON_BWD_UNROLL, default) on top of
# the B/C vector loads. CUDA tests (scan and mixer), the scan's launches (scan_parts.py call2: unrolled / rolled /
# rolled without vector loads, interleaved), Ti training with CUDA graphs, unrolled against rolled.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 100 env PYTHONPATH=$P python3 benchmarks/2026-12-03-h200-session12/scan_parts.py $OUT call2 > $OUT/parts.log 2>&1; echo "parts rc $? at $((SECONDS - T0)) s"; grep -E "check|BC_VEC" $OUT/parts.log
run() {  # name, models, extra args, env
  timeout 90 env $4 PYTHONPATH=$P python3 -m videomamba.bench.gpu --models $2 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 80 $3 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md | cut -c1-200
}
run unrolled videomamba_tiny,attention_tiny --cuda-graphs VIDEOMAMBA_TRITON_BWD_UNROLL=1
run rolled videomamba_tiny --cuda-graphs VIDEOMAMBA_TRITON_BWD_UNROLL=0
timeout 170 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py tests/test_bimamba_inner.py tests/test_saved_activations.py -q -p no:cacheprovider -x -k "(cuda and (bc_vec or realistic or bi_selective or last_state or deterministic)) or padded_rows or writes_forward or fused_mixer" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -5 $OUT/tests.log | cut -c1-400
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
