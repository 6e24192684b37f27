"""Sampling a search space with Optuna: the parameters as sampled (:class:`Parameter`, with their
``when`` conditions), the define-by-run function handed to ``OptunaSearch`` and a grid sampler
that Tune's ask/tell drive can use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.samplers import GridSampler

from videomamba.tune.paths import get_dotted
from videomamba.tune.space_schema import ChoiceParam, IntParam, LogUniformParam, UniformParam


MISSING = object()


@dataclass(frozen=True)
class Parameter:
    """One entry of ``parameters:`` (``name`` is Optuna's parameter name)."""

    name: str
    path: str
    dist: UniformParam | LogUniformParam | IntParam | ChoiceParam
    when: dict[str, tuple[Any, ...]]
    line: int

    def active(self, chosen: dict[str, Any], base: dict) -> bool:
        """Whether every ``when`` holds, looking at values sampled so far (by path), then the base."""
        for path, accepted in self.when.items():
            value = chosen.get(path, MISSING)
            if value is MISSING:
                value = get_dotted(base, path)
            if value not in accepted:
                return False
        return True


class OptunaSpace:
    """The define-by-run function for ``OptunaSearch`` (picklable: the Tuner checkpoints it)."""

    def __init__(self, params: Sequence[Parameter], base: dict):
        self.params = tuple(params)
        self.base = base

    def __call__(self, trial) -> None:
        chosen: dict[str, Any] = {}
        for p in self.params:
            if p.active(chosen, self.base):
                chosen[p.path] = p.dist.suggest(trial, p.name)
        return None  # OptunaSearch collects the suggest_* values by name


class AskTellGridSampler(GridSampler):
    """``GridSampler`` without its ``study.stop()`` after the last grid point: that call is only
    legal inside ``study.optimize`` and Tune drives Optuna with ask/tell (``num_samples`` bounds
    the trials instead)."""

    def after_trial(self, study, trial, state, values) -> None:
        return None
