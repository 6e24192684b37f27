"""The search-space file's schema (pydantic): parameter distributions and search settings.
Each distribution knows how to suggest a value to an Optuna trial, its representative values
(checked against the base config) and its grid."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = Union[str, int, float, bool, None]  # noqa: UP007 - pydantic union of JSON scalars


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ParamBase(_Strict):
    path: str | None = Field(None, description="dotted training-config path (default: the parameter's name)")
    when: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict, description="path -> value(s) for this to be sampled")


class UniformParam(_ParamBase):
    type: Literal["uniform"]
    low: float
    high: float
    step: float | None = Field(None, gt=0)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def representatives(self) -> list[Any]:
        return [self.low, self.high]

    def describe(self) -> str:
        return f"uniform({self.low:g}, {self.high:g}{f', step={self.step:g}' if self.step else ''})"


class LogUniformParam(_ParamBase):
    type: Literal["loguniform"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def representatives(self) -> list[Any]:
        return [self.low, self.high]

    def describe(self) -> str:
        return f"loguniform({self.low:g}, {self.high:g})"


class IntParam(_ParamBase):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def representatives(self) -> list[Any]:
        return [self.low, self.high]

    def grid(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def describe(self) -> str:
        extra = (f", step={self.step}" if self.step != 1 else "") + (", log" if self.log else "")
        return f"int({self.low}, {self.high}{extra})"


class ChoiceParam(_ParamBase):
    type: Literal["choice"]
    values: list[Scalar] = Field(min_length=1)

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def representatives(self) -> list[Any]:
        return list(self.values)

    def grid(self) -> list[Any]:
        return list(self.values)

    def describe(self) -> str:
        return "choice(" + ", ".join(map(repr, self.values)) + ")"


Param = Annotated[Union[UniformParam, LogUniformParam, IntParam, ChoiceParam], Field(discriminator="type")]  # noqa: UP007


class AshaSettings(_Strict):
    """ASHA (``ray.tune.schedulers.ASHAScheduler``) on the first metric, one rung step per epoch."""

    type: Literal["asha"]
    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it can be stopped")
    reduction_factor: float = Field(2, gt=1)
    max_t: int | None = Field(None, ge=1, description="default: the base config's train.epochs")


class FifoSettings(_Strict):
    """No early stopping: every trial runs all its epochs."""

    type: Literal["fifo"]


class SearchSettings(_Strict):
    metric: str | list[str] = "val/top1"
    mode: Literal["max", "min"] | list[Literal["max", "min"]] = "max"
    algorithm: Literal["tpe", "random", "grid"] = "tpe"
    num_samples: int | None = Field(None, ge=1, description="default: grid size for grid, else 8")
    max_concurrent: int = Field(1, ge=1)
    seed: int = 0
    scheduler: Annotated[Union[AshaSettings, FifoSettings], Field(discriminator="type")] = AshaSettings(type="asha")  # noqa: UP007
    points_to_evaluate: list[dict[str, Scalar]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _metrics_and_modes(self) -> SearchSettings:
        if len(self.metrics) != len(self.modes):
            raise ValueError(f"{len(self.metrics)} metric(s) but {len(self.modes)} mode(s)")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metrics must differ")
        return self

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    @property
    def modes(self) -> list[str]:
        """One mode per metric (a single ``mode`` applies to all)."""
        return [self.mode] * len(self.metrics) if isinstance(self.mode, str) else list(self.mode)


class SpaceFile(_Strict):
    description: str | None = None
    search: SearchSettings = Field(default_factory=SearchSettings)
    parameters: dict[str, Param] = Field(min_length=1)
