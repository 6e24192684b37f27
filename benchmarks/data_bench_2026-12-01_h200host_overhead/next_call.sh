#!/usr/bin/env bash
# Not run yet: the next GPU call's checks for the `data bench` driver crash (data_pipeline.md, 2026-12-01
# i14-overhead section). Same layout as run.sh (repo root, .device and .gpu-i14o carried). About 2.5 minutes.
G=$(cd "$(dirname "$0")" && pwd); OUT=${OUT:-/tmp/out14o}; mkdir -p $OUT; PY=${PY:-python3}; T0=$SECONDS
exec > >(tee $OUT/log_next.txt) 2>&1
[ -n "$SITE" ] || { bash .device/unpack.sh; SITE=/tmp/site; }
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=$SITE:$G/platform
V=$G/v; CPUS=$(($(nproc) - 2))
RA="--num-frames 8 --img-size 224 --randaugment rand-m7-n4-mstd0.5-inc1 --classes-file $V/classes.txt --cpus $CPUS --epochs 4"
echo "== 1: which import maps libinfinipath (the library whose signal handler faults first)"
for m in numpy pyarrow PIL torch decord ray ray.data videomamba.data.bench; do
  timeout 60 $PY -c "import $m; print('$m', 'maps libinfinipath:', any('infinipath' in l for l in open('/proc/self/maps')))"
done
echo "== 2: Ray side only, no bare-loop process pool (does the spawn pool matter?)"
timeout -k 5 50 $PY -m videomamba.cli data bench $V/prep384.csv $RA --plain-rows 1 --no-bare --json $OUT/no_bare.json
echo "rc=$? at $((SECONDS - T0)) s"; $PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
echo "== 3: PSM's own crash handlers off (IPATH_NO_BACKTRACE, believed to be libinfinipath's switch), with the bare loop"
IPATH_NO_BACKTRACE=1 timeout -k 5 70 $PY -m videomamba.cli data bench $V/prep384.csv $RA --plain-rows 1 \
  --json $OUT/no_psm_handler.json
echo "rc=$? at $((SECONDS - T0)) s"; $PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
