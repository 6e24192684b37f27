#!/usr/bin/env bash
# Call 3 of session 12: the CUDA tests of the scan and the mixer at the final defaults (B/C vector loads on, the
# backward's state loop rolled), as many as the time allows.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
date -u; T0=$SECONDS; P=$PWD/platform
timeout 200 env PYTHONPATH=$P python3 -m pytest tests/test_bimamba_inner.py tests/test_saved_activations.py tests/test_ops_triton.py -q -p no:cacheprovider -k "cuda or not interpret" -rA > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; grep -E "^(PASSED|FAILED|ERROR)" $OUT/tests.log | cut -c1-150; tail -3 $OUT/tests.log | cut -c1-300
