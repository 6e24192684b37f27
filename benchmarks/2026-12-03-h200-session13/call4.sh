#!/usr/bin/env bash
# Call 4 of session 13: the backward's segment count with the skipping summary (seg_parts.py), the RMSNorm weight
# gradient as landed (norm_parts.py), and 8-frame training at the fastest 8-frame segment count against the default.
set -u
export PYTHONUNBUFFERED=1
exec > >(tee $OUT/log.txt) 2>&1
FINAL=$OUT; OUT=$OUT/w; mkdir -p $OUT
D=benchmarks/2026-12-03-h200-session13
date -u; T0=$SECONDS; P=$PWD/platform
timeout 30 env PYTHONPATH=$P python3 $D/norm_parts.py $OUT > $OUT/norm.log 2>&1; echo "norm rc $? at $((SECONDS - T0)) s"; tail -1 $OUT/norm.log
timeout 150 env PYTHONPATH=$P python3 $D/seg_parts.py $OUT > $OUT/seg.log 2>&1; echo "seg rc $? at $((SECONDS - T0)) s"
python3 - $OUT/seg_parts.json <<'PY'
import json, sys
for shape, r in json.load(open(sys.argv[1])).items():
    for k, v in r["interleaved_ms"].items():
        print(f"{shape} {k:22s} {v:.3f} ms  kernels {json.dumps({a: round(b, 3) for a, b in r['profiler_ms'][k].items()})}")
PY
BEST=$(python3 - $OUT/seg_parts.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["ti-8f"]["interleaved_ms"]
d = [k for k in r if k.startswith("default")][0]
b = min(r, key=r.get)
print("" if b == d or r[b] > 0.98 * r[d] else "VIDEOMAMBA_TRITON_" + b)
PY
)
echo "best 8f: '$BEST'"
if [ -n "$BEST" ]; then
  for name in default best; do
    e=""; [ $name = best ] && e="$BEST"
    timeout 70 env $e PYTHONPATH=$P python3 -m videomamba.bench.gpu --models videomamba_tiny --mode train --backends triton --frames 8 --repeats 15 --time-limit 60 --cuda-graphs --out $OUT/b8_$name > $OUT/b8_$name.log 2>&1
    echo "bench 8f $name rc $? at $((SECONDS - T0)) s"; grep -E "^\| videomamba" $OUT/b8_$name/results.md | cut -c1-200
  done
fi
date -u
tar czf $FINAL/all.tgz -C $FINAL w && rm -rf $FINAL/w
