#!/usr/bin/env bash
# i15-kernel GPU call 2: Ti sweep of the state-loop kernels (mamba-ssm building meanwhile), then the best
# fwd/bwd configs against tile3d (old) and mamba-ssm at every shape, same run; auto backend; CUDA tests
G=.gpu-i15k; export PYTHONUNBUFFERED=1; P=$PWD/$G/platform
T0=$(date +%s); mkdir -p /tmp/cx /tmp/w $OUT/final
(
  cd /tmp/w && tar xzf $OLDPWD/$G/sdist/mamba_ssm-*.tar.gz && cd mamba_ssm-* &&
  python3 - <<'PY'
p = "setup.py"; s = open(p).read()
a = "    # HACK: The compiler flag -D_GLIBCXX_USE_CXX11_ABI"
s = s.replace(a, '    cc_flag = [f for f in cc_flag if not (f == "-gencode" or f.startswith("arch="))] + ["-gencode", "arch=compute_90,code=sm_90"]\n' + a, 1)
open(p, "w").write(s)
p = "mamba_ssm/__init__.py"; lines = open(p).read().splitlines()
keep = ("__version__", "from mamba_ssm.ops.selective_scan_interface")
open(p, "w").write("\n".join(l if (not l.startswith("from ") or l.startswith(keep)) else f"try:\n    {l}\nexcept ImportError:\n    pass" for l in lines) + "\n")
PY
  MAMBA_FORCE_BUILD=TRUE MAX_JOBS=12 python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/cx . > $OUT/final/build.log 2>&1
  echo "build rc $? at $(( $(date +%s) - T0 )) s" >> $OUT/final/build.log
) &
BP=$!
SW="KERNEL=tile3d;BWD_SUB=1;BLOCK_D=16,NS=2,NUM_WARPS=1;BLOCK_D=8,NS=8,NUM_WARPS=2;BWD_MAXNREG=128;BLOCK_D=16,NS=2,NUM_WARPS=1,BWD_MAXNREG=128;BLOCK_D=32,NS=4,NUM_WARPS=4"
PYTHONPATH=$P timeout 200 python3 -m videomamba.bench.scan_kernels --out $OUT/sweep --quick --repeats 10 --sweep "$SW" > $OUT/sweep.log 2>&1
echo "sweep rc=$? t=$(( $(date +%s) - T0 ))"
grep "^| ti" $OUT/sweep/scan_kernels.md | cut -d'|' -f2,7,8,9,11
BEST=$(python3 $G/pick.py $OUT/sweep/scan_kernels.json); echo "BEST=$BEST"
for i in $(seq 1 200); do kill -0 $BP 2>/dev/null || break; [ $(( $(date +%s) - T0 )) -ge 260 ] && break; sleep 2; done
tail -1 $OUT/final/build.log; echo "t=$(( $(date +%s) - T0 ))"
export PYTHONPATH=$P:/tmp/cx
timeout 130 python3 -m videomamba.bench.scan_kernels --out $OUT/final --repeats 8 --sweep-all --sweep "KERNEL=tile3d;$BEST" > $OUT/final/scan.log 2>&1
echo "final rc=$? t=$(( $(date +%s) - T0 ))"
grep "^| [tsm]" $OUT/final/scan_kernels.md | cut -d'|' -f2,6,7,9,11,12,13
tail -9 $OUT/final/scan_kernels.md
timeout 40 python3 - <<'PY' 2>&1 | grep -i "backend\|fastest\|auto\|Error" | head -5
import logging, torch; logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from videomamba.modules.bimamba import BiMamba
m = BiMamba(192, backend="auto").cuda()
x = torch.randn(4, 12545, 192, device="cuda", requires_grad=True)
with torch.autocast("cuda", torch.bfloat16):
    y = m(x)
y.float().sum().backward(); torch.cuda.synchronize(); print("auto done")
PY
echo "t=$(( $(date +%s) - T0 ))"
export $(echo "$BEST" | tr ',' '\n' | sed 's/^/VIDEOMAMBA_TRITON_/')
PYTHONPATH=$P timeout 60 python3 -m pytest -q -x -p no:cacheprovider $G/tests/test_ops_triton.py -k "cuda and realistic" 2>&1 | tail -3
echo "t=$(( $(date +%s) - T0 ))"
