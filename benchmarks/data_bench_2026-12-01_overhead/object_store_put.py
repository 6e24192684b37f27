import time, os, numpy as np
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
import ray, pyarrow as pa
from ray.data.block import BlockAccessor
ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
rng = np.random.default_rng(0)
b = {"video": rng.integers(0, 255, (4, 3, 8, 224, 224), dtype=np.uint8), "label": np.arange(4), "index": np.arange(4), "view": np.zeros(4, np.int64)}
blk = BlockAccessor.batch_to_block(b)
print(blk.schema)
def T(name, f, clips=4, reps=30):
    f(); t = time.process_time(); w = time.perf_counter()
    for _ in range(reps): r = f()
    print(f"{name:45s} {1000*(time.process_time()-t)/reps/clips:7.3f} ms CPU/clip  {1000*(time.perf_counter()-w)/reps/clips:7.3f} wall", flush=True)
ctx = ray._private.worker.global_worker.get_serialization_context()
s = ctx.serialize(blk); print("serialized", type(s).__name__, s.total_bytes, "inband", len(getattr(s, "inband", b"") or b""))
T("ray.put arrow block", lambda: ray.put(blk))
T("ray.put numpy", lambda: ray.put(b["video"]))
T("ray.put dict of numpy", lambda: ray.put(b))
import pickle
T("pickle5 oob arrow block", lambda: pickle.dumps(blk, protocol=5, buffer_callback=lambda x: None))
from ray._private.arrow_serialization import _arrow_table_reduce
T("_arrow_table_reduce", lambda: _arrow_table_reduce(blk))
