"""Timing of benchmark steps: warm-up, then steps launched back to back with a CUDA event
between consecutive steps (no host sync inside the timed window; ``perf_counter`` on CPU).
The benchmark reports the median step time; clips/s = batch / median."""

from __future__ import annotations

import time
from typing import Callable


class Clock:
    """CUDA events on GPU, perf_counter on CPU."""

    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def ms(self, a, b) -> float:
        return a.elapsed_time(b) if self.cuda else (b - a) * 1e3


def time_steps(step: Callable[[], None], clock: Clock, *, warmup: int, repeats: int, budget_s: float,
               min_repeats: int = 3) -> tuple[list[float], int]:
    """Warm up, then time ``n`` steps back to back. Warm-up runs at least 2 steps (the first
    one compiles; the second gives a clean step-time estimate) unless the first alone exceeds
    the budget, and continues up to ``warmup`` steps or 30 % of the budget. ``n`` fills the
    rest of the budget within ``[min_repeats, repeats]`` (1 when a step is over half the
    budget). Returns (ms per step, n_warmup)."""
    t0 = time.perf_counter()
    n_warm, last = 0, 0.0
    while True:
        ts = time.perf_counter()
        step()
        clock.sync()
        last = time.perf_counter() - ts
        n_warm += 1
        if n_warm == 1 and last > budget_s:
            break
        if n_warm >= max(2, warmup) or (n_warm >= 2 and time.perf_counter() - t0 > 0.3 * budget_s):
            break
    left = budget_s - (time.perf_counter() - t0)
    floor_n = 1 if last > 0.5 * budget_s else min(min_repeats, repeats)
    n = max(floor_n, min(repeats, int(left / max(last, 1e-6))))
    marks = [clock.mark()]
    for _ in range(n):
        step()
        marks.append(clock.mark())
    clock.sync()
    return [clock.ms(a, b) for a, b in zip(marks, marks[1:])], n_warm


__all__ = ["Clock", "time_steps"]
