#!/usr/bin/env bash
# Lead's GPU call (2026-12-01): issue 14 item 3, raw 720p vs prepared end to end on 2 GPUs, uint8 clips.
bash .device/unpack.sh
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD/platform
V=$PWD/.gpu-i14/v
exec > >(tee $OUT/log.txt) 2>&1
date -u; nproc; nvidia-smi -L; git log --oneline -1
timeout -k 10 290 python3 -m videomamba.cli bench e2e -c configs/bench_e2e_videomamba_tiny_f8.yaml \
  --manifest raw=$V/raw768.csv --manifest prepared=$V/prep768.csv --set data.classes_file=$V/classes.txt \
  --cases model,raw:1,raw:2,prepared:1 --e2e-out $OUT
echo rc=$?; date -u
