#!/usr/bin/env bash
# i15-kernel GPU call 1: state-loop kernels vs tile3d (old), same run; CUDA tests; per-kernel profile
G=.gpu-i15k; export PYTHONPATH=$PWD/$G/platform PYTHONUNBUFFERED=1
T0=$(date +%s); nvidia-smi -L; python3 -c "import triton, torch; print(triton.__version__, torch.__version__)"
python3 -c "import triton.experimental.gluon as g; print('gluon ok')" 2>&1 | tail -1
SW="KERNEL=tile3d;BLOCK_L=16;BLOCK_D=16,NS=2;BLOCK_D=4,NS=8;BLOCK_D=16,NS=4,NUM_WARPS=2;BLOCK_D=32,NS=4,NUM_WARPS=4;BLOCK_D=16,NS=4;SEGMENTS=8;SEGMENTS=64"
timeout 330 python3 -m videomamba.bench.scan_kernels --out $OUT/scan --quick --repeats 10 --sweep "$SW" > $OUT/scan.log 2>&1
echo "scan rc=$? t=$(( $(date +%s) - T0 ))"
grep "^| ti" $OUT/scan/scan_kernels.md | cut -d'|' -f2,7,8,9,11,14
OUTF=$OUT/prof.json timeout 60 python3 $G/prof.py ti-64f "KERNEL=tile3d" "" 2>&1 | cut -c1-900
echo "t=$(( $(date +%s) - T0 ))"
timeout 120 python3 -m pytest -q -x -p no:cacheprovider $G/tests/test_ops_triton.py -k "cuda and (realistic or deterministic or L33)" 2>&1 | tail -5
echo "t=$(( $(date +%s) - T0 ))"
