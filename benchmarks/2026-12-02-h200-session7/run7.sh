#!/usr/bin/env bash
# Session 7 GPU call 7 (run7.sh): the backward's per-state carries in memory (BWD_CARRY_MEM=1) against the default at
# every shape, same run; CUDA scan tests and Ti training under it.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
pack() { tar czf $FINAL/all.tgz -C $FINAL w; }
timeout 75 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --repeats 10 --sweep-all --sweep "BWD_CARRY_MEM=1" --out $OUT/scan > $OUT/scan.log 2>&1; echo "scan rc $? at $((SECONDS - T0)) s"
grep -E "^\| (ti|s|m)-" $OUT/scan/scan_kernels.md | cut -d'|' -f2,6,7,9,11,13; pack
export VIDEOMAMBA_TRITON_BWD_CARRY_MEM=1
timeout 60 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton.py -q -p no:cacheprovider -k "cuda and (realistic or dbc or deterministic or L63 or L130)" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-300; pack
timeout 80 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton --frames 64,8 --time-limit 70 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc $? at $((SECONDS - T0)) s"
grep -E "^\| (videomamba|attention)" $OUT/bench/results.md; pack
date -u
