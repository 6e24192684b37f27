"""Same loop (bench_plain over the same rows), one at a time, alternating: in a Ray task vs in a plain spawned process."""
import os, sys, time, json
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
import multiprocessing as mp
import ray
from videomamba.data.config import DataConfig
def loop(cfg_json, manifest, epoch):
    from videomamba.data.config import DataConfig
    from videomamba.data.bench import bench_plain, _columns
    c = DataConfig.model_validate_json(cfg_json)
    cols = _columns(c, manifest)
    bench_plain(c, {k: v[:2] for k, v in cols.items()}, "train", epoch=99)
    n, s, cpu = bench_plain(c, cols, "train", epoch=epoch)
    return 1000 * cpu / n, os.environ.get("OMP_NUM_THREADS")
if __name__ == "__main__":
    manifest = sys.argv[1]; reps = int(sys.argv[2])
    cfg = DataConfig(num_frames=8, img_size=224, randaugment="rand-m7-n4-mstd0.5-inc1", classes_file="/tmp/i14o/classes.txt")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    rloop = ray.remote(num_cpus=1)(loop)
    ray.get(rloop.remote(cfg.model_dump_json(), manifest, 0))
    ctx = mp.get_context("spawn")
    res = {"ray": [], "plain": []}
    with ctx.Pool(1) as pool:
        pool.apply(loop, (cfg.model_dump_json(), manifest, 0))
        for r in range(reps):
            for kind in (("ray", "plain") if r % 2 == 0 else ("plain", "ray")):
                if kind == "ray":
                    ms, omp = ray.get(rloop.remote(cfg.model_dump_json(), manifest, r + 1))
                else:
                    ms, omp = pool.apply(loop, (cfg.model_dump_json(), manifest, r + 1))
                res[kind].append(ms); print(kind, f"{ms:.1f} ms/clip", "OMP", omp, "load", os.getloadavg()[0], flush=True)
    import statistics as st
    print({k: round(st.median(v), 2) for k, v in res.items()})
