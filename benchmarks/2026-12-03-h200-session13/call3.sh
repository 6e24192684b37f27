#!/usr/bin/env bash
# Call 3 of session 13: CUDA tests at the final defaults (conv, scan summaries, the fused norm, the mixer), the
# RMSNorm weight gradient before / now, Ti training with CUDA graphs and a profile of the 8-frame step.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session13
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 30 env PYTHONPATH=$P python3 $D/norm_parts.py $OUT > $OUT/norm.log 2>&1; echo "norm rc $? at $((SECONDS - T0)) s"; cat $OUT/norm.log | tail -2
timeout 100 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs --out $OUT/bench > $OUT/bench.log 2>&1
echo "bench rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/bench/results.md | cut -c1-200
timeout 60 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 8 --no-bench --profile videomamba_tiny:triton:8 --out $OUT/prof8 > $OUT/prof8.log 2>&1
echo "prof8 rc $? at $((SECONDS - T0)) s"; sed -n 2,40p $OUT/prof8/profile_videomamba_tiny_triton_8_train.txt | cut -c1-150
timeout 200 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton_conv.py tests/test_saved_activations.py tests/test_bimamba_inner.py tests/test_ops_triton.py -q -p no:cacheprovider -k "not subprocess and (conv or norm or fused_mixer or padded_rows or realistic or SUM or writes_forward)" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
