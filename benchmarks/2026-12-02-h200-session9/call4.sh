#!/usr/bin/env bash
# Call 4 of session 9 (main with FWD_SPLIT and BWD_SPLIT_HEAD on by default too): the CUDA tests of the fused
# mixer and of the scan's block/segment/switch configurations (compiled, against the float64 reference), then
# Ti training with the defaults against the FlashAttention ViT-Ti.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
timeout 270 env PYTHONPATH=$P python3 -m pytest tests/test_bimamba_inner.py tests/test_ops_triton.py -p no:cacheprovider -v -k "not test_ops_triton or overrides or realistic" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"
grep -cE " PASSED" $OUT/tests.log; grep -E " (FAILED|ERROR)" $OUT/tests.log | cut -c1-200; tail -1 $OUT/tests.log
timeout 100 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 8,64 --time-limit 90 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
