#!/usr/bin/env bash
# Issue 14's GPU-host measurements in one call (raw vs prepared per core, data bench streamed,
# bench e2e), as run on 2026-12-01 (benchmarks/prepare_per_core.md, data_pipeline.md, e2e.md).
# Beside this script the run folder held platform/, configs/, benchmarks/prepare_per_core.py and v/:
# bigbuckbunny.mp4, prep/<variant>.mp4 (prepare_per_core.py --prepare-only), classes.txt and
# manifests NAME.csv of N rows of one video (raw64/raw96: bigbuckbunny, prep*: the default variant).
# SMALL=1: a tiny local dry run (no e2e). PY: the python to use. SITE: the GPU bundle (.device).
G=$(cd "$(dirname "$0")" && pwd); OUT=${OUT:-/tmp/out14}; mkdir -p $OUT; PY=${PY:-python3}
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=${SITE:-/tmp/site}:$G/platform
cd $G
V=$G/v; S=${SMALL:-0}
N=$(nproc); CPUS=$((N - 2)); PROCS=$((N < 16 ? N : 16))  # 2 cores: the consumer (training worker) and Ray itself
if [ $N -ge 32 ]; then R=raw96; P=prep384; ER=raw768; EP=prep768; else R=raw64; P=prep256; ER=raw384; EP=prep384e; fi
PR=8; E=4; C=24
if [ $S = 1 ]; then R=raw96; P=prep96; PR=2; E=3; C=4; CPUS=2; fi
exec > >(tee $OUT/log.txt) 2>&1
date -u; nproc; nvidia-smi -L 2>/dev/null; uptime
echo "== item 2: raw vs prepared per core (720p)"
timeout -k 10 50 $PY benchmarks/prepare_per_core.py $V/bigbuckbunny.mp4 --work $V/prep \
  --variants s256_k8,s256_k8_fastdecode,s256_k8_fastdecode_b0,s224_k8 --clips $C --repeats 2 --procs $PROCS \
  --out $OUT/prepare_per_core.json
RA="--num-frames 8 --img-size 224 --randaugment rand-m7-n4-mstd0.5-inc1 --classes-file $V/classes.txt"
echo "== item 1: data bench, raw 720p (streamed epochs)"; uptime
timeout -k 10 70 $PY -m videomamba.cli data bench $V/$R.csv $RA --prepared $V/prep96.csv --epochs $E --plain-rows $PR \
  --cpus $CPUS --json $OUT/bench_raw.json
[ $S = 1 ] || $PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
echo "== item 1: data bench, prepared (streamed epochs)"; uptime
timeout -k 10 60 $PY -m videomamba.cli data bench $V/$P.csv $RA --epochs $E --plain-rows $((PR * 4)) --cpus $CPUS \
  --json $OUT/bench_prepared.json
[ $S = 1 ] || $PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
[ $S = 1 ] && exit 0
echo "== item 3: e2e"; uptime
timeout -k 10 235 $PY -m videomamba.cli bench e2e -c configs/bench_e2e_videomamba_tiny_f8.yaml \
  --manifest raw=$V/$ER.csv --manifest prepared=$V/$EP.csv --set data.classes_file=$V/classes.txt \
  --cases model,prepared:1,raw:1,raw:2 --e2e-out $OUT
date -u
