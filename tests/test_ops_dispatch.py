"""videomamba.ops.dispatch: the tables, mamba-ssm's both-directions-in-one-launch packing (checked
on the CPU with the float64 reference standing in for mamba-ssm's kernel, which takes the same
grouped B/C), and ``auto``'s measured choice per shape (timings faked)."""

from __future__ import annotations

import logging

import pytest
import torch

from videomamba.ops import dispatch
from videomamba.ops.selective_scan_ref import bi_selective_scan_ref, selective_scan_ref

F64 = torch.float64


def test_every_backend_has_a_scan_and_a_conv():
    for name in dispatch.BACKENDS[1:]:
        assert name in dispatch.SELECTIVE_SCAN and name in dispatch.CAUSAL_CONV1D


@pytest.mark.parametrize("length", [1, 7, 33])
@pytest.mark.parametrize("with_d", [True, False])
def test_mamba_ssm_packed_bidirectional_matches_reference(monkeypatch, length, with_d):
    """One launch over the packed (B, 2D, L) inputs with B/C as 2 groups == the two directions
    (flip -> scan -> flip for the backward one): values and the gradient of every input."""
    monkeypatch.setattr(dispatch, "_mamba_ssm_scan", selective_scan_ref)
    g = torch.Generator().manual_seed(length)
    batch, dim, n = 2, 6, 4
    r = lambda *s: torch.randn(*s, generator=g, dtype=F64)  # noqa: E731
    per_dir = lambda: dict(u=r(batch, dim, length), delta=r(batch, dim, length) * 0.5,  # noqa: E731
                           A=-torch.rand(dim, n, generator=g, dtype=F64) * 2 - 0.1, B=r(batch, n, length),
                           C=r(batch, n, length), D=r(dim) if with_d else None, delta_bias=r(dim) * 0.3)
    f, b = per_dir(), per_dir()
    order = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    leaves = [t.requires_grad_() if t is not None else None for t in [*(f[k] for k in order), *(b[k] for k in order), r(batch, dim, length)]]
    ref_leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in leaves]
    y = dispatch.bi_selective_scan_mamba_ssm(*leaves, delta_softplus=True)
    y_ref = bi_selective_scan_ref(*ref_leaves, delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    w = r(*y.shape)
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    for i, (a, e) in enumerate(zip(leaves, ref_leaves)):
        if a is not None:
            torch.testing.assert_close(a.grad, e.grad, rtol=1e-10, atol=1e-10, msg=f"input {i}")


class _FakeEvent:
    """torch.cuda.Event stand-in: the time between record() calls comes from ``clock``."""

    clock = [0.0]

    def __init__(self, enable_timing=True):
        self.t = None

    def record(self):
        self.t = _FakeEvent.clock[0]

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return end.t - self.t


def test_auto_picks_the_fastest_measured_backend_once(monkeypatch, caplog):
    cost = {"mamba_ssm": 7.0, "triton": 3.0}
    calls = []

    def trial(name):
        calls.append(name)
        _FakeEvent.clock[0] += cost[name]

    monkeypatch.setattr(dispatch, "_probe", lambda name: (name in cost or name == "torch", True, ""))
    monkeypatch.setattr(dispatch, "_fastest", {})
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    with caplog.at_level(logging.INFO, logger=dispatch.logger.name):
        assert dispatch.fastest_backend(("shape", 1), trial, "cuda") == "triton"
        n = len(calls)
        assert calls.count("mamba_ssm") == calls.count("triton") == 4  # warm-up + 3 timed each
        assert dispatch.fastest_backend(("shape", 1), trial, "cuda") == "triton"
        assert len(calls) == n  # cached: measured once per key
        cost["triton"] = 9.0
        assert dispatch.fastest_backend(("shape", 2), trial, "cuda") == "mamba_ssm"  # per shape
    logged = [r.getMessage() for r in caplog.records if "auto backend for" in r.getMessage()]
    assert len(logged) == 2 and "triton 3.000 ms" in logged[0]


def test_auto_without_a_choice_does_not_time(monkeypatch):
    monkeypatch.setattr(dispatch, "_fastest", {})
    assert dispatch.fastest_backend(("k",), lambda name: pytest.fail("timed"), "cpu") == "torch"
    monkeypatch.setattr(dispatch, "_probe", lambda name: (name in ("triton", "torch"), True, ""))
    assert dispatch.fastest_backend(("k",), lambda name: pytest.fail("timed"), "cuda") == "triton"


def test_auto_static_order_prefers_triton(monkeypatch):
    """Without timing (AUTO_TUNE=0, graph capture, compile tracing) auto takes the static order:
    triton > mamba_ssm > torch on CUDA (the Triton scan is the faster kernel at every measured shape
    since benchmarks/2026-12-02-h200-session9); mamba_ssm only where Triton cannot run."""
    monkeypatch.setattr(dispatch, "_fastest", {})
    monkeypatch.setenv("VIDEOMAMBA_AUTO_TUNE", "0")
    monkeypatch.setattr(dispatch, "_probe", lambda name: (name in ("mamba_ssm", "triton", "torch"), True, ""))
    assert dispatch.resolve_backend("auto", "cuda") == "triton"
    assert dispatch.fastest_backend(("k",), lambda name: pytest.fail("timed"), "cuda") == "triton"
    monkeypatch.setattr(dispatch, "_probe", lambda name: (name in ("mamba_ssm", "torch"),) * 2 + ("",))
    assert dispatch.resolve_backend("auto", "cuda") == "mamba_ssm"
    assert dispatch.available_backends() == ["mamba_ssm", "torch"]
