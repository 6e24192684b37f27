#!/usr/bin/env bash
# Call 1 of session 11: the CUDA tests of the refactored CUDA-graph bench step (not yet run on a GPU) and
# of the scan; the sloop backward under ptxas register caps 192 / 168 / 128 (10 / 12 / 16 resident one-warp
# programs per SM instead of 8; its segments now follow the cap) against the uncapped default, and the
# conv backward's blocks, both timed interleaved (--interleave: rotating rounds, so a row's place in the
# run cannot favour it, as it did in session 10's conv sweeps).
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 150 env PYTHONPATH=$P python3 -m pytest tests/test_bench.py tests/test_ops_triton.py -q -p no:cacheprovider -k "cuda" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
timeout 260 env PYTHONPATH=$P python3 -m videomamba.bench.scan_kernels --out $OUT/scan --shapes ti-8f,ti-64f,s-64f --sweep-all --repeats 20 --interleave 5 --sweep "BWD_MAXNREG=192;BWD_MAXNREG=168;BWD_MAXNREG=128" > $OUT/scan.log 2>&1
echo "scan rc $? at $((SECONDS - T0)) s"; grep -E "^\| (ti|s|m)-" $OUT/scan/scan_kernels.md | cut -d'|' -f2,6,7,8,9,11,14
timeout 120 env PYTHONPATH=$P python3 -m videomamba.bench.conv_kernels --out $OUT/conv --repeats 30 --interleave 6 --sweep-all --shapes ti-8f,ti-64f,s-64f,m-64f --sweep "BWD_BLOCK_D=4,BWD_BLOCK_L=512,BWD_NUM_WARPS=8;BWD_BLOCK_L=512;BWD_BLOCK_D=4;BWD_BLOCK_D=4,BWD_BLOCK_L=128" > $OUT/conv.log 2>&1
echo "conv rc $? at $((SECONDS - T0)) s"; grep -E "^\| (ti|s|m)-" $OUT/conv/conv_kernels.md | grep ours | cut -d'|' -f2,6,7,9,10
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
