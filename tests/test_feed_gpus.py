"""Issue 14 (feed the GPUs): multi-epoch streaming of the training dataset, the data-wait hint,
``bench e2e`` cases, the Ray CPU meter."""

from __future__ import annotations

import numpy as np
import pytest

from videomamba.data import pipeline
from videomamba.train.data_wait import data_wait_hint


@pytest.fixture
def columns(monkeypatch):
    n = 7
    cols = {"path": np.array([f"v{i}.mp4" for i in range(n)], dtype=object), "label": np.arange(n) % 2,
            "start_sec": np.full(n, np.nan), "end_sec": np.full(n, np.nan)}
    monkeypatch.setattr(pipeline, "_manifest", lambda ref: cols)
    monkeypatch.setattr(pipeline, "current_execution_index", lambda: 0)
    return cols


def test_select_rows_spanning_epochs_equals_one_execution_per_epoch(columns):
    n = len(columns["label"])
    span = pipeline.select_rows({"id": np.arange(3 * n)}, manifest=None, seed=5, epoch=2, shuffle=True, epochs=3)
    for k in range(3):  # positions k*n..(k+1)*n-1 are epoch 2+k, exactly as a one-epoch dataset of that epoch
        one = pipeline.select_rows({"id": np.arange(n)}, manifest=None, seed=5, epoch=2 + k, shuffle=True)
        part = slice(k * n, (k + 1) * n)
        assert np.array_equal(span["index"][part], one["index"]) and set(one["epoch"]) == {2 + k}
        assert np.array_equal(span["epoch"][part], one["epoch"])
        assert sorted(span["index"][part]) == list(range(n))  # every video once per epoch
    assert not np.array_equal(span["index"][:n], span["index"][n:2 * n])  # reshuffled every epoch
    # a block straddling an epoch boundary (Ray Data cuts blocks anywhere)
    straddle = pipeline.select_rows({"id": np.arange(n - 2, n + 3)}, manifest=None, seed=5, epoch=2, shuffle=True,
                                    epochs=3)
    assert np.array_equal(straddle["index"], span["index"][n - 2:n + 3])
    assert list(straddle["epoch"]) == [2, 2, 3, 3, 3]


def test_select_rows_second_execution_continues_after_the_span(columns, monkeypatch):
    n = len(columns["label"])
    monkeypatch.setattr(pipeline, "current_execution_index", lambda: 1)  # e.g. a restarted worker group
    again = pipeline.select_rows({"id": np.arange(n)}, manifest=None, seed=5, epoch=0, shuffle=True, epochs=4)
    assert set(again["epoch"]) == {4}


def test_data_wait_hint_names_cause_and_fixes():
    assert data_wait_hint(0.04, epoch=1, epoch_s=10, clips_per_s=100) is None
    raw = data_wait_hint(0.48, epoch=3, epoch_s=20.0, clips_per_s=67, decode_cpus=30, prepared=False)
    assert "epoch 3" in raw and "48%" in raw and "~30 CPUs" in raw
    assert "videomamba data prepare" in raw and "clips_per_video=2" in raw and "decode" in raw
    assert "\n" not in raw  # one line
    prepared = data_wait_hint(0.3, epoch=0, epoch_s=5, clips_per_s=50, prepared=True, clips_per_video=2)
    assert "data prepare" not in prepared and "clips_per_video" not in prepared and "CPUs or nodes" in prepared


def test_e2e_case_parsing():
    from videomamba.bench.e2e import parse_case

    assert parse_case("model").model_only
    c = parse_case("prepared:2:nostream:data.decode_concurrency=16")
    assert (c.manifest, c.clips_per_video, c.stream_epochs, c.overrides) == ("prepared", 2, False,
                                                                           ["data.decode_concurrency=16"])


def test_ray_cpu_meter_reads_proc():
    from videomamba.data.bench import _proc_table

    import os

    table = _proc_table()
    if not table:
        pytest.skip("no /proc")
    assert os.getpid() in table and table[os.getpid()][1] > 0


def test_num_blocks_gives_every_decode_core_a_task():
    from videomamba.data.pipeline import num_blocks

    assert num_blocks(128, 16, 16) == 64  # was 8 blocks: half of 16 decode cores idle; then 16: one wave
    assert num_blocks(10_000, 16, 16) == 625  # large datasets keep rows_per_block
    assert num_blocks(40, 16, 16) == 40  # at most one block per row
    assert num_blocks(3, 16, 16) == 3  # never more blocks than rows
    assert num_blocks(0, 16, 4) == 1


def test_loop_timings_steady_state_leaves_out_start_up_and_drain():
    from videomamba.data.bench import LoopTimings

    # 4 epochs of 10 clips: a slow start (first batch at 5 s), 1 s per epoch after, a slow drain
    marks = [(5.0, 5, None), (5.5, 10, 1.0), (6.0, 15, None), (6.5, 20, 2.0), (7.0, 25, None),
             (7.5, 30, 3.0), (9.0, 35, None), (12.0, 40, 5.0)]
    t = LoopTimings(marks, per_epoch=10, epochs=4, startup_s=5.0, driver_cpu=[None, 0.1, None, 0.2, None, 0.3, None, 0.5])
    assert t.steady() == (20, 2.0, 2.0)  # epochs 1 and 2: from the end of epoch 0 to the end of epoch 2
    assert t.epoch_seconds() == [5.5, 1.0, 1.0, 4.5]
    assert t.steady_driver_cpu() == pytest.approx(0.2)
    two = LoopTimings(marks[:4], per_epoch=10, epochs=2)
    assert two.steady() == (10, 1.0, 1.0)  # 2 epochs: the second one
    # skipped videos: 16 of 20 clips came; the passes are the delivered clips split evenly
    short = LoopTimings([(1.0, 4, None), (2.0, 8, 1.0), (3.0, 12, None), (4.0, 16, 3.0)], per_epoch=10, epochs=2)
    assert short.steady() == (8, 2.0, 2.0)


def test_ray_cpu_meter_without_ray_keeps_no_reading():
    from videomamba.data.bench import RayCpuMeter

    meter = RayCpuMeter()
    assert meter.idle_rate == 0.0  # was set only by measure_idle (AttributeError in stop() otherwise)
    assert meter.read() is None
    meter.stop()
    assert meter.seconds is None


def test_decode_probe_splits_task_cpu_inside_and_around_the_decode_function():
    from videomamba.data.bench import DecodeProbe, LoopTimings, _probe_split

    probe = DecodeProbe()
    try:
        wrapped = probe.wrap(lambda batch: {"label": batch["label"][:3]})  # a decode dropping one bad row
        assert wrapped({"label": np.arange(4)})["label"].tolist() == [0, 1, 2]  # same output as the function
        assert len(probe.calls()) == 1 and probe.calls()[next(iter(probe.calls()))][0][3] == 3
        # two worker processes: (wall start, CPU at start, CPU at end, clips)
        for pid, rows in {11: [(100.0, 1.0, 1.4, 4), (101.0, 1.5, 1.9, 4), (102.0, 2.0, 2.4, 4)],
                          12: [(100.5, 5.0, 5.4, 4), (101.5, 5.6, 6.0, 4), (200.0, 7.0, 7.4, 4)]}.items():
            with open(f"{probe.folder}/{pid}.txt", "w") as f:
                f.writelines(f"{a!r} {b!r} {c!r} {d}\n" for a, b, c, d in rows)
        # calls starting in [100.8, 150]: 3 of them, 0.4 CPU-s each inside, gaps 0.1 + 0.1 + 0.2 around
        clips, inside, between = probe.window(100.8, 150.0)
        assert (clips, inside, between) == (12, pytest.approx(1.2), pytest.approx(0.4))
        # the consumer's window 100.8..150 s: 12 clips, 2.0 CPU-s on the Ray side of which 0.3 the consumer's
        # (0.1 normalising) and 1.6 the decode workers
        run = LoopTimings([(0.8, 4, 0.0), (50.0, 16, 2.0)], per_epoch=4, epochs=4, driver_cpu=[0.0, 0.3],
                          worker_cpu=[0.0, 1.6], normalize_cpu=[0.0, 0.1], start_wall=100.0)
        assert run.steady_wall() == (100.8, 150.0)
        fn, extra, share = _probe_split(probe, run)
        # Ray's share: 1 - 0.1 / (0.1 + 0.0333 + 0.2/12 + 0.1/12) per clip
        assert (fn, extra) == (pytest.approx(0.1), pytest.approx(0.4 / 12))
        assert share == pytest.approx(1 - 0.1 / (0.1 + 0.4 / 12 + 0.2 / 12 + 0.1 / 12))
        assert _probe_split(None, run) == (None, None, None)
    finally:
        probe.close()


def test_build_dataset_wraps_the_decode_stage(monkeypatch, tmp_path):
    from videomamba.data.config import DataConfig

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.mp4,0\nb.mp4,1\n")
    seen = {}
    monkeypatch.setattr(pipeline, "stream_rows", lambda cfg, columns, **kw: seen.update(kw) or "ds")
    wrap = lambda fn: ("wrapped", fn)  # noqa: E731
    assert pipeline.build_dataset(DataConfig(), "train", manifest=str(manifest), wrap_decode=wrap) == "ds"
    tag, decode = seen["decode"]
    assert tag == "wrapped" and decode.func is pipeline.decode_batch
    pipeline.build_dataset(DataConfig(), "train", manifest=str(manifest))
    assert seen["decode"].func is pipeline.decode_batch  # unwrapped by default
