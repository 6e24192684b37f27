"""BiMamba mixer (VideoMamba's bidirectional Mamba, "bimamba v2"): one input projection, a
forward and a backward SSM branch with their own conv/x_proj/dt_proj/A/D, outputs summed,
one output projection. Parameter names and shapes are the published ones."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops import (bimamba_fn, bimamba_inner_fn, check_backend, fastest_backend, has_fused_inner, has_fused_mixer,
                   mamba_inner_fn)
from ..ops.bimamba_inner import in_proj_bdl
from ..ops.projection import linear_from_bdl
from .tokens import take_tokens


def _wide(t: torch.Tensor) -> torch.Tensor:
    """At least fp32 (float64 parameters stay float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class BiMamba(nn.Module):
    """(B, L, D) -> (B, L, D).

    ``in_proj`` gives ``x, z`` (d_inner = expand * D each). Forward branch: causal depthwise
    conv + SiLU on ``x``, ``x_proj -> (dt, B, C)``, ``delta = softplus(dt_proj(dt))``, selective
    scan with ``A = -exp(A_log)``, skip ``D``, gate ``silu(z)``. Backward branch: the same with
    ``conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b`` on the reversed sequence (anti-causal conv,
    scan from the last position). ``out_proj(y_f + y_b)``.

    ``save_scan_states`` (training on triton): keep the scan's fp32 tile states and output for
    the backward (about 10% faster steps, about 4x the saved bytes per block) instead of re-running the
    forward scan kernel there; None: ``VIDEOMAMBA_TRITON_SAVE_STATES=1``, default off
    (benchmarks/README.md, issue 15). Model level: ``ssm_cfg={"save_scan_states": True}``.
    """

    def __init__(
        self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
        dt_rank: int | str = "auto", dt_min: float = 1e-3, dt_max: float = 1e-1,
        dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4,
        conv_bias: bool = True, bias: bool = False, backend: str = "auto", layer_idx: int | None = None,
        save_scan_states: bool | None = None, device=None, dtype=None,
    ):
        super().__init__()
        self.save_scan_states = save_scan_states
        fk = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.backend = check_backend(backend)
        self.layer_idx = layer_idx

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **fk)
        # per direction: conv1d{,_b}, x_proj{,_b}, dt_proj{,_b}, A{,_b}_log, D{,_b}
        for sfx, a_name, d_name in (("", "A_log", "D"), ("_b", "A_b_log", "D_b")):
            setattr(self, f"conv1d{sfx}", nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                                    padding=d_conv - 1, bias=conv_bias, **fk))
            setattr(self, f"x_proj{sfx}", nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **fk))
            setattr(self, f"dt_proj{sfx}", nn.Linear(self.dt_rank, self.d_inner, bias=True, **fk))
            A = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
            setattr(self, a_name, nn.Parameter(torch.log(A)))
            setattr(self, d_name, nn.Parameter(torch.ones(self.d_inner, device=device)))
            getattr(self, a_name)._no_weight_decay = True
            getattr(self, d_name)._no_weight_decay = True
            self._init_dt_proj(getattr(self, f"dt_proj{sfx}"), dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **fk)

    @torch.no_grad()
    def _init_dt_proj(self, dt_proj: nn.Linear, dt_init, dt_scale, dt_min, dt_max, dt_init_floor):
        """Weight U(+-dt_rank^-0.5 * scale) (or constant); bias = softplus^-1(dt), dt log-uniform
        in [dt_min, dt_max], floored at dt_init_floor (mamba-ssm)."""
        std = self.dt_rank ** -0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(dt_proj.weight, -std, std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        dt = torch.exp(torch.rand(self.d_inner, device=dt_proj.bias.device)
                       * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_init_floor)
        dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        dt_proj.bias._no_reinit = True

    def _direction_params(self, backward: bool) -> tuple:
        """(conv weight, conv bias, x_proj weight, dt_proj weight, A, D, delta bias) of one branch;
        A = -exp(A_log), and A, D, delta bias at least fp32."""
        sfx = "_b" if backward else ""
        conv, x_proj, dt_proj = (getattr(self, f"{m}{sfx}") for m in ("conv1d", "x_proj", "dt_proj"))
        A_log, D = (self.A_b_log, self.D_b) if backward else (self.A_log, self.D)
        return (conv.weight, conv.bias, x_proj.weight, dt_proj.weight, -torch.exp(_wide(A_log)), _wide(D),
                _wide(dt_proj.bias))

    def _in_proj(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, D) -> xz (B, 2 d_inner, L): one GEMM into the L-contiguous layout the
        conv and scan want (mamba-ssm's trick)."""
        return in_proj_bdl(hidden, self.in_proj.weight, self.in_proj.bias)

    def forward(self, hidden: torch.Tensor, index_b: torch.Tensor | None = None,
                recompute: bool | None = None) -> torch.Tensor:
        """hidden (B, L, D) -> (B, L, D). ``index_b`` ((L,) or (B, L) long): the backward branch
        scans the tokens ``hidden[:, index_b]`` from last to first instead of ``hidden``
        (default: the same sequence, reversed; see ``bi_selective_scan_fn``). While autograd
        records on ``triton`` without ``index_b``, the whole mixer is one op that saves only
        ``hidden`` and recomputes the rest in its backward (``ops.bimamba_fn``; about 1/20 of
        the composed form's saved bytes). ``recompute=False``: the ops are composed and keep
        their intermediates for the backward instead (a checkpointing block passes it);
        otherwise the op's default (``bimamba_inner_fn``). mamba-ssm's fused path always recomputes.
        ``backend="auto"`` on CUDA: the fastest installed backend for this input's shape, dtype
        and mode, measured on the first call (:func:`videomamba.ops.fastest_backend`, logged once)."""
        backend = self.backend
        if backend == "auto" and hidden.is_cuda:
            key = ("BiMamba", self.d_model, self.d_inner, self.d_state, tuple(hidden.shape), hidden.dtype,
                   torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None,
                   index_b is not None, self.training, recompute)
            backend = fastest_backend(key, lambda name: self._trial(name, hidden, index_b, recompute), hidden.device)
        return self._forward(hidden, index_b, recompute, backend)

    def _forward(self, hidden, index_b, recompute, backend):
        if has_fused_inner(backend, hidden.device):
            return self.forward_directional(hidden, index_b, backend=backend)
        if recompute is not False and torch.is_grad_enabled() and has_fused_mixer(backend, hidden.device, index_b):
            # training on triton: the mixer as one op that saves only its input (ops.bimamba_fn)
            return bimamba_fn(hidden, self.in_proj.weight, self.in_proj.bias, self._direction_params(False),
                              self._direction_params(True), self.out_proj.weight, self.out_proj.bias, backend=backend,
                              save_states=self.save_scan_states)
        xz = self._in_proj(hidden)
        y = bimamba_inner_fn(xz, self._direction_params(False), self._direction_params(True), backend=backend,
                             index_b=index_b, recompute=False if recompute is False else None)
        return linear_from_bdl(y, self.out_proj.weight, self.out_proj.bias)

    def _trial(self, backend, hidden, index_b, recompute):
        """One forward (and, in training mode, backward to the input only: parameter ``.grad`` is
        left alone) on a detached copy of ``hidden``: what ``fastest_backend`` times."""
        with torch.enable_grad() if self.training else torch.no_grad():
            h = hidden.detach().requires_grad_(self.training)
            out = self._forward(h, index_b, recompute, backend)
            if self.training:
                torch.autograd.grad(out, h, torch.ones_like(out))

    def forward_directional(self, hidden: torch.Tensor, index_b: torch.Tensor | None = None,
                            backend: str | None = None) -> torch.Tensor:
        """Same result as :meth:`forward`, one direction at a time: each direction is one
        ``mamba_inner_fn`` (fused by mamba-ssm: conv, projections, scan and ``out_proj`` with no
        layout copies, conv and delta recomputed in the backward) over its own token order. The
        backward direction runs causally on a reordered copy of ``xz`` (the published
        flip -> scan -> flip) and its output is put back in token order; ``out_proj`` is applied
        per direction (it is linear; its bias once). Used for kernels that cannot scan backwards."""
        xz = self._in_proj(hidden)
        order = None if index_b is None else index_b.flip(-1)  # backward scan order, first to last
        xz_b = xz.flip(-1) if order is None else take_tokens(xz, order, dim=-1)
        out = [
            mamba_inner_fn(xz_dir, cw, cb, xw, dw, self.out_proj.weight, out_bias, A, D, bias,
                           backend=backend or self.backend)
            for xz_dir, (cw, cb, xw, dw, A, D, bias), out_bias in (
                (xz, self._direction_params(False), self.out_proj.bias),
                (xz_b, self._direction_params(True), None),
            )
        ]
        if order is None:
            return out[0] + out[1].flip(1)
        inverse = torch.argsort(order, dim=-1)  # token t sits at position inverse[t] of the scan order
        return out[0] + take_tokens(out[1], inverse)
