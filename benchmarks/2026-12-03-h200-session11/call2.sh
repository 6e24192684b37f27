#!/usr/bin/env bash
# Call 2 of session 11: the Ti scan's launches one by one (scan_parts.py): how the backward's states-only
# re-run compares with the forward it repeats, and the backward with its summary launch.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS
timeout 200 env PYTHONPATH=$PWD/platform python3 benchmarks/2026-12-03-h200-session11/scan_parts.py $OUT
echo "rc $? at $((SECONDS - T0)) s"; date -u
