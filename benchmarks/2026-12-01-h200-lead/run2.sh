#!/usr/bin/env bash
# Lead's GPU call 2 (2026-12-01): (A) issue 15: Ti training with the merged state-loop Triton scan and
# the memory changes against the FlashAttention ViT-Ti, same run, 64 then 8 frames; (B) issue 14: the
# `data bench` driver crash checks (which import maps libinfinipath; Ray side alone, no bare loop).
set -u
export PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled GIT_COMMIT=$(cat .gpu-lead/COMMIT)
exec > >(tee $OUT/log.txt) 2>&1
date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; T0=$SECONDS
P=$PWD/platform
B="python3 -m videomamba.bench.gpu --models videomamba_tiny,attention_tiny --mode train --backends triton"
timeout 80 env PYTHONPATH=$P $B --frames 64 --time-limit 65 --out /tmp/r64; echo "64f rc $? at $((SECONDS - T0)) s"
timeout 65 env PYTHONPATH=$P $B --frames 8 --time-limit 50 --out /tmp/r8; echo "8f rc $? at $((SECONDS - T0)) s"
for f in 64 8; do cp /tmp/r$f/results.md $OUT/model$f.md; cp /tmp/r$f/results.json $OUT/model$f.json; done
grep -E "videomamba_tiny|attention_tiny" /tmp/r64/results.md /tmp/r8/results.md | head -20
bash .device/unpack.sh; export PYTHONPATH=/tmp/site:$P; V=$PWD/.gpu-i14o/v
echo "== which import maps libinfinipath"
for m in numpy pyarrow PIL torch decord ray ray.data videomamba.data.bench; do
  timeout 60 python3 -c "import $m; print('$m', 'maps libinfinipath:', any('infinipath' in l for l in open('/proc/self/maps')))"
done
echo "== data bench, Ray side only (no bare-loop pool), at $((SECONDS - T0)) s"
RA="--num-frames 8 --img-size 224 --randaugment rand-m7-n4-mstd0.5-inc1 --classes-file $V/classes.txt --cpus 14 --epochs 3"
timeout -k 5 60 python3 -m videomamba.cli data bench $V/prep384.csv $RA --plain-rows 1 --no-bare --json $OUT/no_bare.json
echo "rc=$? at $((SECONDS - T0)) s"; date -u
