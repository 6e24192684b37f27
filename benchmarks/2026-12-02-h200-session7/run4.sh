#!/usr/bin/env bash
# Session 7 GPU call 4 (run4.sh): how many segments the sequence should be cut into, now that the kernels changed:
# explicit SEGMENTS (both passes) against the default heuristic (SEG_WAVES = 8), 8f shapes and 64f shapes.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --shapes ti-8f,s-8f,m-8f --sweep-all --repeats 10 --sweep "SEGMENTS=1;SEGMENTS=2;SEGMENTS=4;SEGMENTS=8" --out $OUT/seg8 > $OUT/seg8.log 2>&1; echo "seg8 rc $? at $((SECONDS - T0)) s"
grep -E "^\| (ti|s|m)-" $OUT/seg8/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11,13
timeout 150 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --shapes ti-64f,s-64f,m-64f --sweep-all --repeats 10 --sweep "SEGMENTS=11;SEGMENTS=16;SEGMENTS=32;SEGMENTS=64" --out $OUT/seg64 > $OUT/seg64.log 2>&1; echo "seg64 rc $? at $((SECONDS - T0)) s"
grep -E "^\| (ti|s|m)-" $OUT/seg64/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11,13
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
