"""The Ray Data pipeline end to end on the embedded Ray: rows, bad input, seeding, views, Ray Train."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from support.bad_videos import add_bad_entries

from videomamba.data import DataConfig, build_dataset, skip_report
from videomamba.data.check import check_manifest
from videomamba.data.manifest import read_manifest
from videomamba.data.pipeline import epoch_permutation
from videomamba.data.synth import make_synthetic_dataset

T, S = 4, 32
EXPECTED_SKIPS = {"empty": 1, "missing": 1, "unreadable": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    ds = make_synthetic_dataset(str(root), classes=4, videos_per_class=3, val_videos_per_class=1, seed=1)
    bad_manifest = str(root / "train_bad.csv")
    shutil.copy(ds.train_manifest, bad_manifest)
    bad = add_bad_entries(bad_manifest, label=2)
    all_bad = root / "all_bad.csv"
    all_bad.write_text("path,label\n" + "".join(f"{p},1\n" for p, r in bad.items() if r != "short"))
    return {"synth": ds, "bad_manifest": bad_manifest, "all_bad": str(all_bad), "root": root}


def config(data, **kw) -> DataConfig:
    args = dict(train_manifest=data["synth"].train_manifest, val_manifest=data["synth"].val_manifest,
                test_manifest=data["synth"].val_manifest, classes_file=data["synth"].classes_file,
                num_frames=T, img_size=S, randaugment=None, rows_per_block=3, decode_batch_size=2,
                decode_concurrency=2)
    args.update(kw)
    return DataConfig(**args)


def collect(ds, batch_size=5) -> dict[tuple[int, int], np.ndarray]:
    """{(index, view): video} over one epoch, checking the batch layout; duplicates fail."""
    out = {}
    for batch in ds.iter_torch_batches(batch_size=batch_size):
        video = batch["video"]
        assert video.ndim == 5 and tuple(video.shape[1:]) == (3, T, S, S) and str(video.dtype) == "torch.uint8"
        for key in ("label", "index", "view"):
            assert str(batch[key].dtype) == "torch.int64"
        for v, i, w in zip(video.numpy(), batch["index"].tolist(), batch["view"].tolist()):
            assert (i, w) not in out
            out[(i, w)] = v
    return out


def test_bad_input_is_skipped_counted_and_short_videos_padded(ray_local, data):
    cfg = config(data, train_manifest=data["bad_manifest"])
    records = read_manifest(data["bad_manifest"], classes_file=cfg.classes_file)
    good = {i for i, r in enumerate(records) if "/bad/" not in r.path or r.path.endswith("short.mp4")}
    ds = build_dataset(cfg, "train", scope="bad")
    for epoch in range(2):
        rows = collect(ds)
        assert set(rows) == {(i, 0) for i in good}  # every usable video exactly once
        rep = skip_report("train", epoch=epoch, scope="bad")
        assert (rep.skipped, rep.padded, rep.by_reason) == (5, 1, EXPECTED_SKIPS)
        assert {p.split("/bad/")[1] for p, _ in rep.examples} == {
            "missing.mp4", "empty.mp4", "truncated.mp4", "garbage_header.mp4", "not_a_video.mp4"}
    total = skip_report("train", scope="bad")
    assert (total.skipped, total.padded, total.epochs) == (10, 2, [0, 1])
    assert total.as_metrics()["data/skipped"] == 10.0


def test_an_all_bad_dataset_iterates_empty(ray_local, data):
    ds = build_dataset(config(data, train_manifest=data["all_bad"]), "train", scope="all_bad")
    assert collect(ds) == {}
    assert skip_report("train", epoch=0, scope="all_bad").skipped == 5


def test_seeded_epochs_are_reproducible_and_differ(ray_local, data):
    cfg = config(data, randaugment="rand-m9-n2-mstd0.5", num_frames=T)
    first = build_dataset(cfg, "train", seed=3, scope="seed")
    e0, e1 = collect(first), collect(first)  # two executions = epochs 0 and 1
    again = collect(build_dataset(cfg, "train", seed=3, scope="seed"))
    resumed = collect(build_dataset(cfg, "train", seed=3, epoch=1, scope="seed"))
    other_seed = collect(build_dataset(cfg, "train", seed=4, scope="seed"))
    assert set(e0) == set(e1) == set(again) == set(resumed) == {(i, 0) for i in range(12)}
    for key in e0:
        np.testing.assert_array_equal(e0[key], again[key])
        np.testing.assert_array_equal(e1[key], resumed[key])
    assert sum(not np.array_equal(e0[k], e1[k]) for k in e0) >= 10
    assert sum(not np.array_equal(e0[k], other_seed[k]) for k in e0) >= 10
    assert epoch_permutation(12, 3, 0).tolist() != epoch_permutation(12, 3, 1).tolist()
    assert sorted(epoch_permutation(12, 3, 1).tolist()) == list(range(12))


def test_eval_views_are_rows_with_index_and_view(ray_local, data):
    cfg = config(data, test_num_clips=2, test_num_crops=3)
    test = collect(build_dataset(cfg, "test", scope="views"))
    val = collect(build_dataset(cfg, "val", scope="views"))
    assert set(test) == {(i, v) for i in range(4) for v in range(6)}
    assert set(val) == {(i, 0) for i in range(4)}
    # eval is deterministic, 3 crops of a 32x32 frame at short side 32 are the same square
    np.testing.assert_array_equal(test[(0, 0)], test[(0, 1)])
    # 2 temporal clips differ from the single centred one
    assert not np.array_equal(test[(1, 1)], test[(1, 4)])


@pytest.mark.slow
def test_two_worker_ray_train_shards_are_disjoint_and_complete(ray_local, data, tmp_path):
    import ray.train
    from ray.train.torch import TorchTrainer

    cfg = config(data)
    out_dir = tmp_path / "shards"
    out_dir.mkdir()

    def loop(c):
        import hashlib as h
        import json as j

        import ray.train as rt

        rank = rt.get_context().get_world_rank()
        shard = rt.get_dataset_shard("train")
        for epoch in range(2):
            seen = {}
            for batch in shard.iter_torch_batches(batch_size=4, prefetch_batches=1):
                for v, i in zip(batch["video"].numpy(), batch["index"].tolist()):
                    seen[i] = h.sha1(v.tobytes()).hexdigest()
            with open(f"{c['out']}/{epoch}_{rank}.json", "w") as f:
                j.dump(seen, f)
            rt.report({"epoch": epoch})

    trainer = TorchTrainer(
        loop, train_loop_config={"out": str(out_dir)},
        scaling_config=ray.train.ScalingConfig(num_workers=2, use_gpu=False),
        datasets={"train": build_dataset(cfg, "train", seed=11, scope="train2")},
        run_config=ray.train.RunConfig(storage_path=str(tmp_path / "ray_results"), name="shards"),
    )
    trainer.fit()
    local = build_dataset(cfg, "train", seed=11, scope="train2-local")
    for epoch in range(2):
        shards = [json.loads((out_dir / f"{epoch}_{rank}.json").read_text()) for rank in range(2)]
        assert shards[0] and shards[1] and set(shards[0]).isdisjoint(shards[1])
        merged = {int(k): v for s in shards for k, v in s.items()}
        assert sorted(merged) == list(range(12))
        # same clips as a single-process iteration of the same seed and epoch
        expected = {i: hashlib.sha1(v.tobytes()).hexdigest() for (i, _), v in collect(local).items()}
        assert merged == expected


def test_check_manifest_counts(ray_local, data):
    rep = check_manifest(data["bad_manifest"], classes_file=data["synth"].classes_file)
    assert (rep.rows, rep.ok) == (18, 13)
    assert rep.reasons == EXPECTED_SKIPS
    assert rep.resolutions == {"64x64": 13} and rep.fps == {8.0: 13}
    assert sorted(rep.frames) == [3] + [16] * 12
    assert rep.class_counts == {0: 3, 1: 3, 2: 9, 3: 3}
    assert [b[1].split("/bad/")[1] for b in rep.bad] == [
        "missing.mp4", "empty.mp4", "truncated.mp4", "garbage_header.mp4", "not_a_video.mp4"]


def test_cli_check_and_bench(ray_local, data, tmp_path, capsys):
    from videomamba.cli import main
    from videomamba.data.bench import record, run_bench

    classes = data["synth"].classes_file
    assert main(["data", "check", data["synth"].val_manifest, "--classes-file", classes]) == 0
    assert main(["data", "check", data["bad_manifest"], "--classes-file", classes,
                 "--json", str(tmp_path / "check.json")]) == 1
    assert json.loads((tmp_path / "check.json").read_text())["reasons"] == EXPECTED_SKIPS
    assert "class balance" in capsys.readouterr().out
    res = run_bench(config(data), data["synth"].val_manifest, batch_size=2, epochs=2)
    assert res.videos == res.clips == 4 and res.plain_clips_per_s > 0 and res.ray_clips_per_s > 0
    record(res, str(tmp_path / "bench.md"))
    assert (tmp_path / "bench.md").read_text().count("\n| 20") == 1


def test_cli_synth(tmp_path):
    from videomamba.cli import main

    assert main(["data", "synth", str(tmp_path), "--classes", "2", "--videos-per-class", "2",
                 "--frames", "8", "--size", "32"]) == 0
    assert len(read_manifest(str(tmp_path / "train.csv"))) == 4
    assert len(read_manifest(str(tmp_path / "val.csv"))) == 4
