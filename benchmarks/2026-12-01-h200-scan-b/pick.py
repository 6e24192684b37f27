"""Pick the best state-loop forward and backward configs from a Ti sweep; print a --sweep entry."""
import json, sys, collections
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["impl"] == "ours" and "error" not in r and r.get("fwd_bwd_ms")]
fwd, bwd = collections.defaultdict(float), collections.defaultdict(float)
res = {}
for r in rows:
    k = json.dumps(r["config"], sort_keys=True)
    if r["resolved"]["fwd"]["kernel"] != "sloop":
        continue
    fwd[k] += r["fwd_ms"]; bwd[k] += r["fwd_bwd_ms"] - r["fwd_ms"]; res[k] = r["resolved"]
bf, bb = min(fwd, key=fwd.get), min(bwd, key=bwd.get)
f, b = res[bf]["fwd"], res[bb]["bwd"]
env = dict(BLOCK_D=f["BLOCK_D"], NS=f["NS"], NUM_WARPS=f["num_warps"], BWD_BLOCK_D=b["BLOCK_D"], BWD_NS=b["NS"],
           BWD_NUM_WARPS=b["num_warps"], BWD_SUB=b["SUB"])
if f.get("maxnreg"): env["MAXNREG"] = f["maxnreg"]
if b.get("maxnreg"): env["BWD_MAXNREG"] = b["maxnreg"]
print(f"best fwd {bf} {fwd[bf]:.3f}; best bwd {bb} {bwd[bb]:.3f}", file=sys.stderr)
print(",".join(f"{k}={v}" for k, v in env.items()))
