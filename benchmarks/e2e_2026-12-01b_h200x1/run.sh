#!/usr/bin/env bash
# Lead's GPU call (2026-12-01, session 4): issue 14 item 5 on ONE H200 with its 16 cores
# (the 2-GPU kind is withheld this session): prepared-from-720p first, then raw, 1 and 2 clips per video.
bash .device/unpack.sh >/dev/null
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD/platform
V=$PWD/.gpu-i14/v
exec > >(tee $OUT/log.txt) 2>&1
date -u; nproc; nvidia-smi -L; git log --oneline -1; uptime
timeout -k 10 500 python3 -m videomamba.cli bench e2e -c configs/bench_e2e_videomamba_tiny_f8.yaml \
  --manifest raw=$V/raw768.csv --manifest prepared=$V/prep768.csv --set data.classes_file=$V/classes.txt \
  --num-workers 1 --cases model,prepared:1,prepared:2,raw:2,raw:1 --e2e-out $OUT
echo rc=$?; date -u
