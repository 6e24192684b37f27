#!/usr/bin/env bash
# Lead's GPU call 3 (2026-12-01): issue 14, `data bench` WITH the bare loop and libinfinipath's
# crash handlers off (IPATH_NO_BACKTRACE=1; decord's FFmpeg maps libinfinipath, call 2).
set -u
export PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS
bash .device/unpack.sh; export PYTHONPATH=/tmp/site:$PWD/platform; V=$PWD/.gpu-i14o/v
RA="--num-frames 8 --img-size 224 --randaugment rand-m7-n4-mstd0.5-inc1 --classes-file $V/classes.txt --cpus 14 --epochs 8"
IPATH_NO_BACKTRACE=1 timeout -k 5 100 python3 -m videomamba.cli data bench $V/prep384.csv $RA --plain-rows 2 --json $OUT/with_bare_ipath_off.json
echo "rc=$? at $((SECONDS - T0)) s"; date -u
