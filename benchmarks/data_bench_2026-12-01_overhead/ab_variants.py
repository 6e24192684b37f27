"""ABAB in one Ray instance: per-clip CPU of the Ray side (probe split) for DataContext / DataConfig variants."""
import os, sys, json, time
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
import ray
from videomamba.data.config import DataConfig
import videomamba.data.pipeline as P
from videomamba.data import bench as B
manifest, epochs, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
variants = json.loads(sys.argv[4])
cfg0 = DataConfig(num_frames=8, img_size=224, randaugment="rand-m7-n4-mstd0.5-inc1", classes_file="/tmp/i14o/classes.txt")
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
B.ensure_ledger("bench")
orig = P.stream_rows
res = {k: [] for k in variants}
for r in range(rounds):
    for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
        v = variants[name]
        def patched(*a, **kw):
            ds = orig(*a, **kw)
            for k, val in v.get("ctx", {}).items():
                setattr(ds.context, k, val)
            return ds
        P.stream_rows = patched
        P.BLOCKS_PER_CPU = v.get("bpc", 4)
        cfg = cfg0.model_copy(update=v.get("cfg", {}))
        m = B.RayCpuMeter(); m.measure_idle(2.0); probe = B.DecodeProbe()
        t0 = time.perf_counter()
        run = B.bench_ray_stream(cfg, manifest, "train", 8, epochs, m, probe)
        fn, extra, share = B._probe_split(probe, run); probe.close()
        clips, secs, cpu = run.steady()
        d = run.steady_driver_cpu(); n = run.steady_driver_cpu("normalize_cpu"); w = run.steady_driver_cpu("worker_cpu")
        out = dict(load=os.getloadavg()[0], cps=clips / secs, startup=run.startup_s, fn=1000 * fn, extra=1000 * extra,
                   consumer=1000 * (d - n) / clips, others=1000 * (cpu - w - d) / clips, share=100 * share)
        res[name].append(out)
        print(name, " ".join(f"{k}={x:.2f}" for k, x in out.items()), flush=True)
import statistics as st
for name, rs in res.items():
    print("MEDIAN", name, " ".join(f"{k}={st.median(x[k] for x in rs):.2f}" for k in rs[0]))
