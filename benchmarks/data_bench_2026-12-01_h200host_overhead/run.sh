#!/usr/bin/env bash
# i14-overhead, 2026-12-01: `data bench` (streamed epochs) on the GPU host: prepared and raw 720p footage,
# RAY_enable_task_events=0 (the lead for the SIGSEGV in Ray's task-event flush), then, if time is left,
# the prepared run's Ray side with task events on (Ray's default) to see whether the crash comes back.
# Usage (repo root of the checkout that carries .device and .gpu-i14o): bash .gpu-i14o/run.sh
G=$(cd "$(dirname "$0")" && pwd); OUT=${OUT:-/tmp/out14o}; mkdir -p $OUT; PY=${PY:-python3}; T0=$SECONDS
exec > >(tee $OUT/log.txt) 2>&1
[ -n "$SITE" ] || { bash .device/unpack.sh; SITE=/tmp/site; }
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH=$SITE:$G/platform
V=$G/v; N=$(nproc); CPUS=${CPUS:-$((N - 2))}; E=${E:-4}
RA="--num-frames 8 --img-size 224 --randaugment rand-m7-n4-mstd0.5-inc1 --classes-file $V/classes.txt --cpus $CPUS --epochs $E"
date -u; echo "cores $N"; nvidia-smi -L 2>/dev/null; uptime; echo "unpacked after $((SECONDS - T0)) s"
echo "== prepared (s256_k8_fastdecode_b0) x384, RAY_enable_task_events=0"; uptime
RAY_enable_task_events=0 timeout -k 5 ${TP:-70} $PY -m videomamba.cli data bench $V/${P:-prep384}.csv $RA --plain-rows 4 \
  --json $OUT/bench_prepared.json; echo "rc=$? at $((SECONDS - T0)) s"; uptime
$PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
echo "== raw 720p x96, RAY_enable_task_events=0"; uptime
RAY_enable_task_events=0 timeout -k 5 ${TR:-65} $PY -m videomamba.cli data bench $V/${R:-raw96}.csv $RA --plain-rows 2 \
  --json $OUT/bench_raw.json; echo "rc=$? at $((SECONDS - T0)) s"; uptime
$PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
LEFT=$(( ${BUDGET:-165} - (SECONDS - T0) ))
if [ $LEFT -ge 25 ]; then
  echo "== prepared x384, task events ON (Ray's default), Ray side only, $LEFT s left"; uptime
  timeout -k 5 $LEFT $PY -m videomamba.cli data bench $V/${P:-prep384}.csv $RA --plain-rows 1 --no-bare \
    --json $OUT/bench_prepared_events_on.json; echo "rc=$? at $((SECONDS - T0)) s"
  $PY -m ray.scripts.scripts stop --force >/dev/null 2>&1
else echo "== skipped the task-events-on run ($LEFT s left)"; fi
date -u
