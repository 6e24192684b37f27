#!/usr/bin/env bash
# Call 3 of session 10: the conv backward's new default blocks (4, 512, 8) against the previous (2, 256, 4)
# at every shape (same run); the CUDA tests of the conv, the fused norm and the CUDA-graph bench step (its
# inputs now outlive the capture; call 2's replays read freed labels); Ti training against the
# FlashAttention ViT-Ti with --cuda-graphs (now; peak memory now counted from before the capture) and eager
# (now, and main before this session from .gpu-lead/old).
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform; OLD=$PWD/.gpu-lead/old/platform
timeout 100 env PYTHONPATH=$P python3 -m pytest tests/test_saved_activations.py tests/test_bench.py tests/test_ops_triton_conv.py -q -p no:cacheprovider -k "cuda or add_rms or gpu" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
timeout 100 env PYTHONPATH=$P python3 -m videomamba.bench.conv_kernels --out $OUT/conv --repeats 30 --sweep-all --sweep "BWD_BLOCK_D=2,BWD_BLOCK_L=256,BWD_NUM_WARPS=4" > $OUT/conv.log 2>&1
echo "conv rc $? at $((SECONDS - T0)) s"; grep -E "^\| (ti|s|m)-" $OUT/conv/conv_kernels.md | grep ours_bi | cut -d'|' -f2,7,10,13
run() {  # name, PYTHONPATH, models, extra args
  timeout 100 env PYTHONPATH=$2 python3 -m videomamba.bench.gpu --models $3 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 90 $4 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md
}
run graphs $P videomamba_tiny,attention_tiny --cuda-graphs
run now $P videomamba_tiny,attention_tiny ""
run old $OLD videomamba_tiny ""
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
