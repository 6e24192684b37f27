#!/usr/bin/env bash
# Build wheels of the optional CUDA extensions (mamba-ssm, causal-conv1d) from their PyPI source
# distributions for ONE GPU architecture, with the torch already installed (no build isolation).
# Their setup.py files compile for ~8 architectures by default (tens of minutes); one arch takes
# a few minutes. Used by cluster.yaml's setup commands and by the GPU benchmark runs.
#
#   scripts/build_cuda_extensions.sh SDIST_DIR OUT_DIR      # SDIST_DIR holds the .tar.gz files
#   CUDA_ARCH=90 MAX_JOBS=16 scripts/build_cuda_extensions.sh .whl dist-cuda
#
# Without SDIST_DIR contents it downloads the sdists with pip (needs network).
# LENIENT_MAMBA_INIT=1 makes `import mamba_ssm` survive missing optional deps of its Mamba-2/3
# modules (tilelang, quack-kernels) on offline machines; VideoMamba only needs its selective scan.
set -euo pipefail
SDIST_DIR=${1:-.whl}
OUT_DIR=${2:-dist-cuda}
PY=${PYTHON:-python3}
ARCH=${CUDA_ARCH:-$($PY -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}')")}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE
mkdir -p "$SDIST_DIR" "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d)
for pkg in mamba_ssm causal_conv1d; do
  sdist=$(ls "$SDIST_DIR"/${pkg}-*.tar.gz 2>/dev/null | head -n1 || true)
  if [ -z "$sdist" ]; then
    $PY -m pip download --no-deps --no-binary :all: -d "$SDIST_DIR" "${pkg//_/-}" || true
    sdist=$(ls "$SDIST_DIR"/${pkg}-*.tar.gz | head -n1)
  fi
  tar xzf "$sdist" -C "$WORK"
done
patch_arch() {  # keep only -gencode for $ARCH in setup.py's cc_flag list
  $PY - "$1" "$ARCH" <<'PYEOF'
import re, sys
path, arch = sys.argv[1], sys.argv[2]
src = open(path).read()
anchor = "    # HACK: The compiler flag -D_GLIBCXX_USE_CXX11_ABI"
assert anchor in src, f"unexpected setup.py layout in {path}"
line = (f'    cc_flag = [f for f in cc_flag if not (f == "-gencode" or f.startswith("arch="))]'
        f' + ["-gencode", "arch=compute_{arch},code=sm_{arch}"]\n')
open(path, "w").write(src.replace(anchor, line + anchor, 1))
PYEOF
}
build() {
  local dir=$1
  patch_arch "$dir/setup.py"
  (cd "$dir" && $PY -m pip wheel --no-build-isolation --no-deps -w "$OUT_DIR" . ) > "${LOG_DIR:-$OUT_DIR}/build-$(basename "$dir").log" 2>&1
}
mdir=$(ls -d "$WORK"/mamba_ssm-*); cdir=$(ls -d "$WORK"/causal_conv1d-*)
if [ "${LENIENT_MAMBA_INIT:-0}" = 1 ]; then
  $PY - "$mdir/mamba_ssm/__init__.py" <<'PYEOF'
import sys
p = sys.argv[1]; lines = open(p).read().splitlines()
keep = ("__version__", "from mamba_ssm.ops.selective_scan_interface")
out = [l if (not l.startswith("from ") or l.startswith(keep)) else f"try:\n    {l}\nexcept ImportError:  # optional deps missing\n    pass" for l in lines]
open(p, "w").write("\n".join(out) + "\n")
PYEOF
fi
# the two builds in parallel, each with half the cores
export MAX_JOBS=$(( MAX_JOBS > 1 ? MAX_JOBS / 2 : 1 ))
build "$mdir" & p1=$!
build "$cdir" & p2=$!
rc=0; wait $p1 || rc=1; wait $p2 || rc=1
ls -la "$OUT_DIR"
[ $rc = 0 ] || { tail -n 40 "${LOG_DIR:-$OUT_DIR}"/build-*.log; exit 1; }
