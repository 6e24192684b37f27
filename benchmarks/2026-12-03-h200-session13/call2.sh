#!/usr/bin/env bash
# Call 2 of session 13: the conv kernels (SiLU by exp2 and rcp; the backward's position tiles grouped per program,
# the two-pass backward) against the code before the session, and the tile3d summaries with the unused segment
# skipped and their own position tiles; CUDA tests of both; Ti training with CUDA graphs at the defaults and at the
# fastest variants.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session13
date -u; T0=$SECONDS; P=$PWD/platform
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 150 env PYTHONPATH=$P python3 -m pytest tests/test_ops_triton_conv.py tests/test_ops_triton.py -q -p no:cacheprovider -k "not subprocess and (conv or realistic or SUM)" > $OUT/tests.log 2>&1; echo "tests rc $? at $((SECONDS - T0)) s"; tail -3 $OUT/tests.log | cut -c1-400
timeout 150 env PYTHONPATH=$P python3 $D/conv_parts.py $OUT > $OUT/conv.log 2>&1; echo "conv rc $? at $((SECONDS - T0)) s"
python3 - $OUT/conv_parts.json <<'PY'
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, "fwd ms old %.4f new %.4f" % (r["fwd"]["old"], r["fwd"]["new"]))
    for k, v in r["bwd"].items():
        ks = {a: b for a, b in r["kernels"][k].items() if "conv" in a}
        print(f"  bwd {k:18s} {v:.4f} ms  rel {r['max_rel_vs_old'][k]:.1e}  {ks}")
PY
timeout 150 env PYTHONPATH=$P python3 $D/scan_parts.py $OUT > $OUT/parts.log 2>&1; echo "parts rc $? at $((SECONDS - T0)) s"
python3 - $OUT/scan_parts.json <<'PY'
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    print(shape, r["cfg"])
    for k, v in r["interleaved_ms"].items():
        p = r["profiler_ms"].get(k, {})
        print(f"  {k:24s} {v:7.3f} ms  kernels {json.dumps({a: round(b, 3) if isinstance(b, float) else b for a, b in p.items()})}  rel {r['max_rel_vs_default'].get(k, 0):.1e}")
PY
# the fastest variants: conv backward (summed over both shapes), backward summary tiles (both shapes), forward (64f)
BEST=$(python3 - $OUT/conv_parts.json $OUT/scan_parts.json <<'PY'
import json, sys
c, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
env = []
tot = {k: sum(c[x]["bwd"][k] for x in c) for k in c["ti-8f"]["bwd"] if k != "old k4"}
best = min(tot, key=tot.get)
kern, lt = best.split(" LTILES=")
env += [f"VIDEOMAMBA_TRITON_CONV_BWD_KERNEL={kern}", f"VIDEOMAMBA_TRITON_CONV_BWD_LTILES={lt}"]
b = {k: sum(s[x]["interleaved_ms"][k] for x in s) for k in s["ti-8f"]["interleaved_ms"] if k.startswith("bwd:") and "SKIP" not in k}
kb = min(b, key=b.get)
if kb != "bwd: default" and b[kb] < 0.99 * b["bwd: default"]:
    env.append("VIDEOMAMBA_TRITON_" + kb.split(": ")[1])
f = {k: v for k, v in s["ti-64f"]["interleaved_ms"].items() if k.startswith("fwd:") and "SKIP" not in k}
kf = min(f, key=f.get)
if kf != "fwd: default" and f[kf] < 0.99 * f["fwd: default"]:
    env.append("VIDEOMAMBA_TRITON_" + kf.split(": ")[1])
print(" ".join(env))
PY
)
echo "best: '$BEST'"
run() {  # name, models, env
  timeout 100 env $3 PYTHONPATH=$P python3 -m videomamba.bench.gpu --models $2 --mode train --backends triton --frames 8,64 --repeats 15 --time-limit 85 --cuda-graphs --out $OUT/$1 > $OUT/$1.log 2>&1
  echo "bench $1 rc $? at $((SECONDS - T0)) s"; grep -E "^\| (videomamba|attention)" $OUT/$1/results.md | cut -c1-200
}
run bench videomamba_tiny,attention_tiny ""
if [ -n "${BEST// /}" ] && [ $((SECONDS - T0)) -lt 480 ]; then run best videomamba_tiny "$BEST"; fi
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
