"""The GPU benchmark harness, exercised on the CPU at a tiny size: end to end (rows, ratios,
schema, files), failure rows (OOM, errors, missing backends, crashed workers), the floor
formula, profiles and the correctness checks."""

from __future__ import annotations

import json
import os

import pytest
import torch

from videomamba.bench import measure, report
from videomamba.bench import run as bench_run
from videomamba.bench import spec as bspec
from videomamba.bench.baseline import create_baseline
from videomamba.bench.floor import dims_of, floor_per_clip, mamba_dims, peaks_for


def _has_model() -> bool:
    try:
        import videomamba.models.videomamba  # noqa: F401
    except Exception:  # noqa: BLE001 - not written yet in this checkout
        return False
    return True


needs_model = pytest.mark.skipif(not _has_model(), reason="videomamba.models not available")


def _opts(tmp_path, **kw) -> bspec.Options:
    base = dict(models=["attention_tiny"], backends=["torch"], frames=[2, 4], batch={2: 2, 4: 2}, img_size=32,
                depth=1, num_classes=5, repeats=2, warmup=1, min_repeats=1, config_budget_s=0.05, isolate=False,
                out=str(tmp_path / "out"), device="cpu")
    base.update(kw)
    return bspec.Options(**base)


# --------------------------------------------------------------------------------------------
# pieces


def test_baseline_forward_and_fused_equals_math():
    torch.manual_seed(0)
    model = create_baseline(num_frames=2, img_size=32, num_classes=5, depth=2).eval()
    video = torch.randn(2, 3, 2, 32, 32)
    fused = model(video)
    assert fused.shape == (2, 5)
    for blk in model.blocks:
        blk.attn.attn_impl = "math"
    torch.testing.assert_close(model(video), fused, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="frames"):
        model(torch.randn(1, 3, 3, 32, 32))
    # DeiT-Ti at 64 frames: 12 layers x (24 L D^2 + 4 L^2 D) + patch embedding
    fl = floor_per_clip(dims_of(create_baseline(num_frames=64)), 64, 224, "infer", peaks_for(None))
    assert fl["flops"] == pytest.approx(12 * (24 * 12545 * 192**2 + 4 * 12545**2 * 192) + 2 * 768 * 192 * 12544)


def test_floor_formula_tiny_64_frames():
    peaks = peaks_for("NVIDIA H100 80GB HBM3")
    fl = floor_per_clip(mamba_dims(192, 24), 64, 224, "train", peaks)
    tokens, layers, e, n, r = 12545, 24, 384, 16, 12
    fwd_tok = 2 * 192 * 2 * e + 4 * e * (r + 2 * n) + 4 * r * e + 2 * e * 192
    assert fl["flops"] == pytest.approx(3 * (tokens * layers * fwd_tok + 2 * 768 * 192 * 12544))
    assert fl["bytes"] == pytest.approx(tokens * layers * (17 * e + 12 * n) * 2)
    assert fl["exps"] == pytest.approx(2 * tokens * layers * 2 * e * n)
    assert fl["t_floor"] == max(fl["t_mma"], fl["t_hbm"], fl["t_sfu"])
    assert 1e-3 < fl["t_floor"] < 3e-3  # ~1.8 ms per clip on an H100
    inf = floor_per_clip(mamba_dims(192, 24), 64, 224, "infer", peaks)
    assert inf["t_floor"] < fl["t_floor"]
    att = floor_per_clip(dims_of(create_baseline(num_frames=64)), 64, 224, "train", peaks)
    assert att["bound"] == "mma" and att["t_floor"] > fl["t_floor"]
    assert peaks_for("NVIDIA H200").hbm_bytes > peaks.hbm_bytes


def test_batch_parsing_and_quick_plan(tmp_path):
    assert bspec.parse_batch(None, [8, 64]) == {8: 32, 64: 4}
    assert bspec.parse_batch("3", [8, 64]) == {8: 3, 64: 3}
    assert bspec.parse_batch("64:2", [8, 64]) == {8: 32, 64: 2}
    opts = bspec.Options(models=["videomamba_tiny", "videomamba_middle", "attention_tiny"])
    specs = bspec.bench_specs(opts, ["triton", "torch"])
    frames = lambda m: sorted({s.frames for s in specs if s.model == m})  # noqa: E731
    assert frames("videomamba_tiny") == frames("attention_tiny") == [8, 16, 32, 64]
    assert frames("videomamba_middle") == [8, 64]
    assert {s.backend for s in specs if s.model == "attention_tiny"} == {"sdpa"}
    assert all(s.batch == 256 // s.frames for s in specs)  # same batch for every model at a frame count
    ck = bspec.bench_specs(bspec.Options(models=["videomamba_tiny", "attention_tiny"], ckpt_models=["videomamba_tiny"]),
                         ["triton"])
    ck = [s for s in ck if s.use_checkpoint]
    assert [(s.series(), s.mode, s.frames) for s in ck] == [("triton+ckpt", "train", f) for f in (8, 16, 32, 64)]
    full = bspec.bench_specs(bspec.Options(models=["videomamba_middle"], quick=False), ["torch"])
    assert sorted({s.frames for s in full}) == [8, 16, 32, 64]
    assert [s.backend for s in bspec.parse_profile("videomamba_tiny:all:64", opts, ["triton", "torch"])] == [
        "triton", "torch"]


def test_ratios_targets_and_schema():
    def row(model, backend, frames, mode, clips, peak, status="ok"):
        spec = bspec.Spec(model, backend, frames, 4, mode)
        r = {**bspec.base_row(spec), "status": status}
        if status == "ok":
            r.update(step_ms=4 / clips * 1e3, clips_per_s=clips, peak_mem_bytes=peak, step_ms_all=[1.0], n_repeats=1)
        else:
            r["error"] = "OOM at batch 4"
        return r

    ckpt = {**row("videomamba_tiny", "triton", 64, "train", 20.0, 2e9), "use_checkpoint": True}
    rows = [row("attention_tiny", "sdpa", 64, "train", 10.0, 8e9), row("videomamba_tiny", "triton", 64, "train", 40.0, 4e9),
            ckpt,
            row("videomamba_tiny", "torch", 64, "train", 0, 0, status="OOM"),
            row("videomamba_tiny", "triton", 8, "train", 50.0, 1e9)]
    report.attach_ratios(rows, "attention_tiny")
    assert rows[0]["thr_ratio"] == 1.0 and rows[1]["thr_ratio"] == 4.0 and rows[1]["mem_ratio"] == 0.5
    assert ckpt["thr_ratio"] == 2.0 and ckpt["mem_ratio"] == 0.25
    assert rows[3]["thr_ratio"] is None and rows[4]["thr_ratio"] is None  # OOM; no baseline at 8 frames
    targets = {(t["backend"], t["name"]): t["pass"] for t in report.evaluate_targets(rows)}
    assert targets[("triton", "64f train clips/s ratio >= 3")] is True
    assert targets[("triton", "64f train peak-memory ratio <= 1")] is True
    assert targets[("triton", "8f train clips/s ratio >= 1")] is None
    assert targets[("torch", "64f train clips/s ratio >= 3")] is None
    assert targets[("triton+ckpt", "64f train clips/s ratio >= 3")] is False
    assert targets[("triton+ckpt", "64f train peak-memory ratio <= 1")] is True
    results = {**report.new_results(bspec.Options()), "rows": rows}
    report.finalize(results)
    assert report.validate(results) == []
    results["rows"][1]["status"] = "weird"
    assert report.validate(results)


# --------------------------------------------------------------------------------------------
# end to end on the CPU


@needs_model
def test_end_to_end_tiny(tmp_path):
    opts = _opts(tmp_path, models=["videomamba_tiny", "attention_tiny"], backends=["torch", "mamba_ssm"],
                 memory_fit=True, memory_fit_model="videomamba_tiny", memory_fit_frames=2, memory_fit_batch=2)
    results = bench_run.run(opts)
    assert report.validate(results) == []
    rows = results["rows"]
    by = {(r["model"], r["backend"], r["frames"], r["mode"]): r for r in rows}
    assert len(rows) == 3 * 2 * 2  # (baseline, torch, mamba_ssm) x 2 frame counts x 2 modes
    for frames in (2, 4):
        for mode in ("infer", "train"):
            base, ours = by[("attention_tiny", "sdpa", frames, mode)], by[("videomamba_tiny", "torch", frames, mode)]
            assert base["status"] == ours["status"] == "ok"
            assert ours["thr_ratio"] == pytest.approx(ours["clips_per_s"] / base["clips_per_s"])
            assert ours["clips_per_s"] == pytest.approx(2 / (ours["step_ms"] / 1e3))
            assert ours["floor_ms"] > 0 and ours["dims"]["kind"] == "mamba"
            missing = by[("videomamba_tiny", "mamba_ssm", frames, mode)]
            assert missing["status"] == "unavailable" and "mamba_ssm" in missing["error"]
    assert [r["status"] for r in results["memory_fit"]] == ["ok"]
    assert results["memory_fit"][0]["use_checkpoint"] is True
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in saved["rows"]][:4] == ["attention_tiny"] * 4  # baseline group first
    assert saved["rows"] == json.loads(json.dumps(rows))
    md = (out / "results.md").read_text()
    assert "| videomamba_tiny | torch | 4 | 2 |" in md and "unavailable" in md and "Physical floor" in md
    assert (out / "bench.png").exists()


def test_failures_become_rows(tmp_path, monkeypatch):
    real_build = measure.build_model

    def flaky_build(spec, device):
        if spec.frames == 4 and spec.mode == "train":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if spec.frames == 4:
            raise RuntimeError("kernel exploded")
        return real_build(spec, device)

    monkeypatch.setattr(measure, "build_model", flaky_build)
    results = bench_run.run(_opts(tmp_path))
    status = {(r["frames"], r["mode"]): (r["status"], r["error"]) for r in results["rows"]}
    assert status[(2, "infer")][0] == status[(2, "train")][0] == "ok"
    assert status[(4, "infer")] == ("error", "RuntimeError: kernel exploded")
    assert status[(4, "train")] == ("OOM", "OOM at batch 2")
    assert report.validate(results) == []
    assert "| attention_tiny | sdpa | 4 | 2 | - | - | - | - | - | - | OOM |" in (tmp_path / "out" / "results.md").read_text()


def test_slow_series_and_deadline_skip(tmp_path):
    opts = _opts(tmp_path, modes=["infer"], max_step_s=0.0)  # every step is "too slow"
    rows = []
    measure.run_specs(bspec.bench_specs(opts, []), torch.device("cpu"), opts, rows.append)
    assert [r["status"] for r in rows] == ["ok", "skipped"] and "max-step" in rows[1]["error"]
    rows.clear()
    measure.run_specs(bspec.bench_specs(opts, []), torch.device("cpu"), opts, rows.append, deadline=0.0)
    assert {r["error"] for r in rows} == {"skipped: time limit"}


def test_crashed_worker_rows():
    specs = [bspec.Spec("m", "b", f, 1, "infer") for f in (1, 2)]
    got = {0: {**bspec.base_row(specs[0]), "status": "ok"}}
    rows = bench_run.fill_missing(specs, got, {"rc": -11, "log_tail": "...\nSegmentation fault"})
    assert rows[0]["status"] == "ok" and rows[1]["status"] == "error" and "rc=-11" in rows[1]["error"]
    rows = bench_run.fill_missing(specs, {}, {"rc": None, "log_tail": ""})
    assert {r["status"] for r in rows} == {"skipped"}


def test_isolated_worker_subprocess(tmp_path):
    """The default mode: the env probe and each bench group run as worker subprocesses."""
    opts = _opts(tmp_path, frames=[2], batch={2: 2}, modes=["infer"], isolate=True)
    results = bench_run.run(opts)
    assert [r["status"] for r in results["rows"]] == ["ok"]
    assert results["env"]["torch"] == torch.__version__
    assert (tmp_path / "out" / "logs" / "bench_sdpa.jsonl").read_text().count("\n") == 1


def test_worker_runs_through_its_own_entry_point(tmp_path):
    """``python -m videomamba.bench.worker TASK.json`` runs a task and streams its rows, without
    going through the command line (no ``videomamba.cli`` / ``videomamba.commands`` import)."""
    import dataclasses
    import subprocess
    import sys

    opts = _opts(tmp_path)
    spec = bspec.Spec("attention_tiny", "sdpa", 2, 2, "infer", 32, 5, 1)
    results = tmp_path / "rows.jsonl"
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"kind": "bench", "options": opts.to_dict(), "specs": [dataclasses.asdict(spec)],
                                "deadline": None, "results": str(results)}))
    env = {**os.environ, "PYTHONPATH": bench_run.package_root()}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", bench_run.WORKER_MODULE, str(task)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["type"], r["index"], r["status"], r["model"]) for r in rows] == [("row", 0, "ok", "attention_tiny")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "videomamba.bench.measure" in imported
    assert not {m for m in imported if m.startswith(("videomamba.cli", "videomamba.commands"))}
    usage = subprocess.run([sys.executable, "-m", bench_run.WORKER_MODULE], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "TASK.json" in usage.stderr


def test_profile_writes_kernel_table(tmp_path):
    from videomamba.bench.profiling import profile_spec

    opts = _opts(tmp_path)
    spec = bspec.Spec("attention_tiny", "sdpa", 2, 2, "train", 32, 5, 1)
    summary = profile_spec(spec, torch.device("cpu"), opts, tmp_path, warmup=1)
    assert "error" not in summary, summary
    text = (tmp_path / "profile_attention_tiny_sdpa_2_train.txt").read_text()
    assert "by category" in text and summary["total_ms"] > 0
    assert "gemm" in summary["categories"]


def test_cli_registers_bench():
    from videomamba.cli import build_parser

    args = build_parser().parse_args(["bench", "--frames", "8,64", "--batch", "64:2", "--full", "--check"])
    from videomamba.commands.bench import options_from_args

    opts = options_from_args(args)
    assert opts.frames == [8, 64] and opts.batch == {8: 32, 64: 2} and not opts.quick and opts.check
    assert opts.repeats == 20 and opts.config_budget_s == 10.0 and not opts.cuda_graphs
    assert options_from_args(build_parser().parse_args(["bench", "--cuda-graphs"])).cuda_graphs


def test_cuda_graphs_off_cuda_is_an_error_row_naming_the_flag(tmp_path):
    spec = bspec.Spec(model="attention_tiny", backend="sdpa", frames=2, batch=2, mode="train", img_size=32,
                      num_classes=5, depth=1)
    with pytest.raises(ValueError, match="--cuda-graphs needs a CUDA device, got cpu"):
        measure.make_step(measure.build_model(spec, torch.device("cpu")), spec, torch.device("cpu"), cuda_graph=True)
    row = measure.measure(spec, torch.device("cpu"), _opts(tmp_path, cuda_graphs=True))
    assert row["status"] == "error" and "--cuda-graphs needs a CUDA device" in row["error"]


@pytest.mark.gpu
@pytest.mark.parametrize("model_name", ["videomamba_tiny", "attention_tiny"])
def test_cuda_graph_step_replays_training(gpu, model_name):
    """--cuda-graphs: the captured training step (forward, backward, fused AdamW) replays and keeps
    training: each replay moves the weights."""
    spec = bspec.Spec(model=model_name, backend="triton" if model_name.startswith("videomamba") else "sdpa", frames=8,
                batch=2, mode="train", img_size=64, num_classes=10, depth=2)
    model = measure.build_model(spec, gpu)
    step, release = measure.make_step(model, spec, gpu, "bf16", cuda_graph=True)
    w = next(model.parameters())
    before = w.detach().clone()
    step()
    mid = w.detach().clone()
    step()
    torch.cuda.synchronize()
    assert not torch.equal(before, mid) and not torch.equal(mid, w.detach())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    release()


@needs_model
def test_checks_on_cpu():
    from videomamba.bench.checks import run_checks

    recs = []
    run_checks(torch.device("cpu"), ["torch"], recs.append, depth=1, img_size=32, num_classes=5,
               cases=[(2, 1, None, ("fp32",))])
    keys = next(r for r in recs if r["kind"] == "keys")
    assert keys["pass"], keys
    assert [r["pass"] for r in recs if r["kind"] == "load"] == [True]
    agree = [r for r in recs if r["kind"] == "agreement"]
    assert agree and all(r["pass"] and r["logits_rel"] == 0.0 for r in agree)


def test_scan_kernels_sweep_env_and_report(monkeypatch):
    """The kernel benchmark's CPU-side pieces: sweep parsing (bad names rejected by name), the
    env overrides it sets are restored, ratios are mamba-ssm / ours per shape, and the report
    shows resolved configs and agreement."""
    from videomamba.bench import scan_kernels as sk

    assert sk.parse_sweep("BLOCK_L=8,bwd_block_d=16; SEGMENTS=1") == [{"BLOCK_L": 8, "BWD_BLOCK_D": 16},
                                                                       {"SEGMENTS": 1}]
    assert sk.parse_sweep("KERNEL=tile3d;NS=2,BWD_SUB=1") == [{"KERNEL": "tile3d"}, {"NS": 2, "BWD_SUB": 1}]
    for bad in ("FOO=1", "BLOCK_L=x", "KERNEL=fast"):
        with pytest.raises(ValueError, match="BLOCK_D"):
            sk.parse_sweep(bad)
    monkeypatch.setenv("VIDEOMAMBA_TRITON_BLOCK_L", "32")
    monkeypatch.delenv("VIDEOMAMBA_TRITON_SEGMENTS", raising=False)
    with sk.triton_env({"BLOCK_L": 8, "SEGMENTS": 4}):
        assert os.environ["VIDEOMAMBA_TRITON_BLOCK_L"] == "8" and os.environ["VIDEOMAMBA_TRITON_SEGMENTS"] == "4"
    assert os.environ["VIDEOMAMBA_TRITON_BLOCK_L"] == "32" and "VIDEOMAMBA_TRITON_SEGMENTS" not in os.environ
    cfg = {"kernel": "sloop", "BLOCK_D": 8, "NS": 4, "BLOCK_L": 16, "nseg": 6, "num_warps": 4, "SUB": 1,
           "maxnreg": None, "dbc_scatter": False, "prefetch": False, "preload": False,
           "split_tail": False, "split_head": False, "fwd_split": False}
    rows = [dict(shape="ti-64f", d_inner=384, batch=4, L=12545, impl="mamba_ssm", config="-", resolved={},
                 fwd_ms=1.5, fwd_bwd_ms=7.0),
            dict(shape="ti-64f", d_inner=384, batch=4, L=12545, impl="ours", config="default",
                 resolved={"fwd": cfg, "bwd": {**cfg, "BLOCK_D": 16}}, fwd_ms=3.0, fwd_bwd_ms=14.0),
            dict(shape="ti-8f", d_inner=384, batch=32, L=1569, impl="ours", config={"SEGMENTS": 1}, resolved={},
                 error="OutOfResources: shared memory")]
    sk._ratios(rows, peaks_for("NVIDIA H200"))
    assert rows[1]["fwd_x"] == pytest.approx(0.5) and rows[1]["fwd_bwd_x"] == pytest.approx(0.5)
    floor_ms = sk.scan_floor(384, 4, 12545, peaks_for("NVIDIA H200"))["fwd_bwd"]["t_floor"] * 1e3
    assert rows[1]["fwd_bwd_floor_x"] == pytest.approx(14.0 / floor_ms)
    assert "fwd_x" not in rows[2]  # no baseline for that shape
    text = sk.report({"date": "d", "env": {"device": "H100"}, "rows": rows,
                      "agreement": {"ti-64f": {"out_rel": 5e-3, "grad_rel_max": 7e-3, "worst_grad": "z"}}})
    flags = ", ".join(["False"] * 6)  # dbc_scatter, prefetch, preload, split_tail, split_head, fwd_split
    assert f"| sloop, 8, 4, 16, 6, 4, 1, None, {flags} / sloop, 16, 4, 16, 6, 4, 1, None, {flags} |" in text
    assert "| 0.50 |" in text
    assert f"| {14.0 / floor_ms:.1f} |" in text
    assert "SEGMENTS=1" in text and "OutOfResources" in text and "| ti-64f | 5.00e-03 | 7.00e-03 | z |" in text


def test_interleaved_timing_rotates_the_order_under_each_entrys_env(monkeypatch):
    """Kernel benchmarks' --interleave: every entry runs per_round timed calls (plus one untimed) per
    round under its own VIDEOMAMBA_TRITON_* overrides; the first entry of a round rotates, and every
    other round runs the rest in reverse, so no entry always runs first or after the same one; rows
    keep their sequential times."""
    from videomamba.bench import scan_kernels as sk

    monkeypatch.delenv("VIDEOMAMBA_TRITON_BLOCK_L", raising=False)
    calls = []

    def fn(tag):
        return lambda: calls.append((tag, os.environ.get("VIDEOMAMBA_TRITON_BLOCK_L")))

    entries = [(None, fn("a")), ({"BLOCK_L": 8}, fn("b")), ({"BLOCK_L": 32}, fn("c"))]
    meds = sk.time_interleaved(entries, rounds=4, per_round=2, device="cpu")
    assert len(meds) == 3 and all(m >= 0 for m in meds)
    assert len(calls) == 4 * 3 * 3 and "VIDEOMAMBA_TRITON_BLOCK_L" not in os.environ
    assert {c for c in calls if c[0] == "b"} == {("b", "8")} and {c for c in calls if c[0] == "a"} == {("a", None)}
    orders = ["".join(c[0] for c in calls[r * 9:(r + 1) * 9:3]) for r in range(4)]
    assert orders == ["abc", "bac", "cab", "acb"]
    rows = [{"fwd_ms": 9.0, "fwd_bwd_ms": 9.0}, {"error": "x"}]
    sk.retime_interleaved([(rows[0], None, fn("a"), fn("a")), (rows[1], None, fn("b"), fn("b"))], 2, 1, "cpu")
    assert rows[0]["fwd_seq_ms"] == 9.0 and rows[0]["fwd_ms"] < 9.0 and "interleaved" in rows[0]["timing"]
    assert "fwd_ms" not in rows[1]


def test_git_commit_env_wins(monkeypatch):
    """A copied checkout's .git may lag its files: an explicit GIT_COMMIT is what gets recorded."""
    monkeypatch.setenv("GIT_COMMIT", "abc1234")
    assert measure.environment(torch.device("cpu"))["git_commit"] == "abc1234"


def test_scan_floor_ti_64_frames():
    """The bidirectional scan op's own floor (bench/scan_kernels' floor column): Ti at 64 frames,
    batch 4, on an H200 is SFU-bound, ~0.15 ms forward and twice that forward + backward."""
    from videomamba.bench.floor import PEAKS, scan_floor

    fl = scan_floor(384, 4, 12545, PEAKS["h200"])
    for mode in ("fwd", "fwd_bwd"):
        assert fl[mode]["t_floor"] == max(fl[mode]["t_hbm"], fl[mode]["t_sfu"]) == fl[mode]["t_sfu"]
    assert 1.2e-4 < fl["fwd"]["t_floor"] < 1.8e-4
    assert fl["fwd_bwd"]["t_floor"] == 2 * fl["fwd"]["t_floor"]


def test_profile_source_table_names_our_lines():
    """Device (here CPU) time by our source line: forward operators land on the videomamba frame
    that called them (a conv inside ``causal_conv1d_torch``), backward operators on their forward's
    line, marked ``bwd``."""
    from torch.profiler import ProfilerActivity, profile

    from videomamba.bench.profiling import format_sources, source_table
    from videomamba.modules import BiMamba

    m = BiMamba(16, backend="torch")
    h = torch.randn(1, 12, 16, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        m(h).sum().backward()
    rows = source_table(prof, device=False, top=500)
    conv = [r for r in rows if "causal_conv1d_torch" in r["where"] and "conv" in r["op"]]
    assert any(not r["where"].startswith("bwd ") for r in conv), rows[:10]
    assert any(r["where"].startswith("bwd ") for r in conv), rows[:10]
    assert "by source line" in format_sources(rows)
