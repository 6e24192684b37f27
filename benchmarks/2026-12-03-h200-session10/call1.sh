#!/usr/bin/env bash
# Call 1 of session 10: the fused add + RMSNorm on torch's fused kernels (its CUDA test), where the Ti
# training step's time goes now (torch profiler, one step at 64 and 8 frames, triton), and Ti training,
# same run: main before this session (6664390, carried in .gpu-lead/old), now, now with
# VIDEOMAMBA_TRITON_SAVE_STATES=1 (no forward re-run in the backward), and the FlashAttention ViT-Ti.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
date -u; T0=$SECONDS; P=$PWD/platform; OLD=$PWD/.gpu-lead/old/platform
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 120 env PYTHONPATH=$P python3 -m pytest tests/test_saved_activations.py -q -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-300
for f in 64 8; do
  timeout 90 env PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --backends triton --mode train \
    --frames $f --no-bench --profile videomamba_tiny:triton:$f --time-limit 80 --out $OUT/prof$f > $OUT/prof$f.log 2>&1
  echo "prof $f rc $? at $((SECONDS - T0)) s"; head -40 $OUT/prof$f/profile_videomamba_tiny_triton_${f}_train.txt | cut -c1-160
done
run() {  # name, PYTHONPATH, models, extra env
  timeout 110 env $4 PYTHONPATH=$2 python3 -m videomamba.bench.gpu --models $3 --mode train --backends triton --frames 8,64 --time-limit 100 --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md
}
run now $P videomamba_tiny,attention_tiny X=1
run old $OLD videomamba_tiny X=1
run save $P videomamba_tiny VIDEOMAMBA_TRITON_SAVE_STATES=1
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
