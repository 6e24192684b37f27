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
from videomamba.objectives.contrastive import ContrastiveConfig, ContrastiveObjective, TextTowerConfig

#: ``objective.name`` -> Objective class
OBJECTIVES: dict[str, type[Objective]] = {
    "supervised": SupervisedObjective,
    "distill": DistillObjective,
    "masked_align": MaskedAlignObjective,
    "contrastive": ContrastiveObjective,
}

#: the ``objective:`` section: a union discriminated by ``name``
ObjectiveConfig = Annotated[
    Union[SupervisedConfig, DistillConfig, MaskedAlignConfig, ContrastiveConfig],  # noqa: UP007
    Field(discriminator="name"),
]


def build_objective(cfg: ObjectiveConfigBase, model: nn.Module) -> Objective:
    """Instantiate the objective named by ``cfg.name`` around ``model``."""
    try:
        cls = OBJECTIVES[cfg.name]
    except KeyError:
        raise ValueError(f"objective.name: unknown {cfg.name!r}; known: {sorted(OBJECTIVES)}") from None
    return cls(cfg, model)


def preflight(cfg: ObjectiveConfigBase) -> None:
    """The objective's cheap pre-start checks (e.g. that a text tower can be found)."""
    OBJECTIVES[cfg.name].preflight(cfg)


__all__ = [
    "Batch",
    "ContrastiveConfig",
    "ContrastiveObjective",
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
    "TextTowerConfig",
    "build_objective",
    "preflight",
]
