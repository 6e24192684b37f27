"""Training objectives: an :class:`Objective` (``nn.Module`` holding the student as ``.model``)
built from the ``objective:`` config section by :func:`build_objective`.

To add one: subclass :class:`ObjectiveConfigBase` with ``name: Literal["x"]``, subclass
:class:`Objective`, and add both to ``OBJECTIVES`` and ``ObjectiveConfig`` below.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field
from torch import nn

from videomamba.objectives.base import Batch, Objective, ObjectiveConfigBase
from videomamba.objectives.supervised import MixupConfig, SupervisedConfig, SupervisedObjective
from videomamba.objectives.distill import DistillConfig, DistillObjective
from videomamba.objectives.masked_align import MaskConfig, MaskedAlignConfig, MaskedAlignObjective

#: ``objective.name`` -> Objective class
OBJECTIVES: dict[str, type[Objective]] = {
    "supervised": SupervisedObjective,
    "distill": DistillObjective,
    "masked_align": MaskedAlignObjective,
}

#: the ``objective:`` section: a union discriminated by ``name``
ObjectiveConfig = Annotated[Union[SupervisedConfig, DistillConfig, MaskedAlignConfig], Field(discriminator="name")]  # noqa: UP007


def build_objective(cfg: ObjectiveConfigBase, model: nn.Module) -> Objective:
    """Instantiate the objective named by ``cfg.name`` around ``model``."""
    try:
        cls = OBJECTIVES[cfg.name]
    except KeyError:
        raise ValueError(f"objective.name: unknown {cfg.name!r}; known: {sorted(OBJECTIVES)}") from None
    return cls(cfg, model)


__all__ = [
    "Batch",
    "DistillConfig",
    "DistillObjective",
    "MaskConfig",
    "MaskedAlignConfig",
    "MaskedAlignObjective",
    "MixupConfig",
    "OBJECTIVES",
    "Objective",
    "ObjectiveConfig",
    "ObjectiveConfigBase",
    "SupervisedConfig",
    "SupervisedObjective",
    "build_objective",
]
