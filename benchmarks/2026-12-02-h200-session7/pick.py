"""Print the --sweep entry (NAME=V,...) of the Triton config whose Ti fwd+bwd ms sum is lowest, or
nothing when the default is within 2% of it; the table of sums goes to stderr."""
import json, sys, collections
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["impl"] == "ours" and "error" not in r and r.get("fwd_bwd_ms")]
tot = collections.defaultdict(float)
for r in rows:
    k = "" if r["config"] == "default" else ",".join(f"{a}={b}" for a, b in r["config"].items())
    tot[k] += r["fwd_bwd_ms"]
for k, v in sorted(tot.items(), key=lambda kv: kv[1]):
    print(f"{v:8.3f}  {k or 'default'}", file=sys.stderr)
best = min(tot, key=tot.get)
print(best if tot[best] < 0.98 * tot[""] else "")
