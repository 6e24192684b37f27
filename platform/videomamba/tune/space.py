"""Search spaces as data: a YAML file of typed distributions over training-config paths.

```yaml
description: what this search is for
search:                      # defaults; ``videomamba tune`` flags override them
  metric: val/top1           # or a list of two+ metrics: multi-objective
  mode: max                  # or a list, one per metric
  algorithm: tpe             # tpe | random | grid (grid: choice/int parameters, no `when`)
  num_samples: 8             # grid: default = number of grid points
  max_concurrent: 1
  seed: 0
  scheduler: {type: asha, grace_period: 1, reduction_factor: 2}   # or {type: fifo}
  points_to_evaluate: [{objective.mask.ratio: 0.75}]              # tried first (Optuna enqueue)
parameters:                  # name -> distribution; the name is the config path unless `path:` says
  objective.mask.ratio: {type: uniform, low: 0.5, high: 0.9}      # + step
  optim.lr: {type: loguniform, low: 1.0e-4, high: 3.0e-3}
  model.overrides.depth: {type: int, low: 2, high: 8, step: 2}    # + log
  objective.mask.type:
    type: choice
    values: [random, tube, clip_row, frame_row]
    when: {objective.teacher.kind: videomamba}     # only sampled when this holds
```

``when`` maps a path to a value (or a list of accepted values); the path is an earlier
parameter's path or a base-config path. Two parameters may share a path only when their ``when``
conditions on a common path are disjoint. Everything is checked before any trial starts
(:func:`load_space`, then :meth:`SearchSpace.check_base`): the file's structure and types,
bounds, empty choices, parameter paths against the training config schema (``TrainConfig`` and
the pydantic models below it), and every choice / bound plugged into the base config and
validated by ``validate_config``. Errors name the file and line.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from optuna.samplers import GridSampler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = logging.getLogger(__name__)

Scalar = Union[str, int, float, bool, None]  # noqa: UP007 - pydantic union of JSON scalars


class SpaceError(ValueError):
    """An invalid search space; the message has one ``file:line: where: problem`` line per error."""


# ------------------------------------------------------------------------------------------------
# YAML with line numbers
class _LineDict(dict):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _LineList(list):
    line: int = 0
    item_lines: list

    def line_of(self, index: Any) -> int:
        return self.item_lines[index] if isinstance(index, int) and 0 <= index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings and sequences carry line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {out.key_lines[key]})", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.item_lines = node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_at(tree: Any, loc: Sequence[Any]) -> int:
    """The line of the deepest node of ``tree`` reached by following ``loc`` (pydantic error
    locations: components that are not keys, e.g. a union tag, are skipped)."""
    line, node = getattr(tree, "line", 1), tree
    for part in loc:
        if isinstance(node, (_LineDict, _LineList)) and (
            (isinstance(node, _LineDict) and part in node) or (isinstance(node, _LineList) and isinstance(part, int))
        ):
            line = node.line_of(part)
            try:
                node = node[part]
            except (KeyError, IndexError):
                break
    return line


# ------------------------------------------------------------------------------------------------
# the file's schema
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


class _SpaceFile(_Strict):
    description: str | None = None
    search: SearchSettings = Field(default_factory=SearchSettings)
    parameters: dict[str, Param] = Field(min_length=1)


# ------------------------------------------------------------------------------------------------
# paths against the training config schema
def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _videomamba_kwargs() -> set[str]:
    from videomamba.models.videomamba import VideoMamba

    return {n for n in inspect.signature(VideoMamba.__init__).parameters if n != "self"}


#: free-form ``dict`` sections of the training config whose keys are checked against a callable's
#: signature (the schema only says ``dict[str, Any]`` there)
FREEFORM_KEYS: dict[str, Any] = {"model.overrides": _videomamba_kwargs}


def schema_path_error(path: str, root: type[BaseModel] | None = None) -> str | None:
    """None if dotted ``path`` names a field of the training config schema (``TrainConfig``,
    walking nested models, unions of models and free-form dicts), else why not."""
    if root is None:
        from videomamba.train.config import TrainConfig as root  # noqa: N813
    parts = path.split(".")
    if not all(p.isidentifier() for p in parts):
        return f"{path!r} is not a dotted path of identifiers"
    return _walk(root, parts, [])


def _walk(annotation: Any, parts: list[str], done: list[str]) -> str | None:
    annotation = _strip(annotation)
    if not parts or annotation is Any:
        return None
    here = ".".join(done) or "<config>"
    if _is_model(annotation):
        key, fields = parts[0], annotation.model_fields
        if key not in fields:
            return f"unknown key {'.'.join([*done, key])!r} ({here} has: {', '.join(fields)})"
        return _walk(fields[key].annotation, parts[1:], [*done, key])
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        errors = [_walk(m, parts, done) for m in members]
        if any(e is None for e in errors):
            return None
        models = [m for m in map(_strip, members) if _is_model(m)]
        if models:
            return f"{'.'.join([*done, parts[0]])!r} is not a field of any variant of {here}"
        return errors[0]
    if origin is dict:
        check = FREEFORM_KEYS.get(".".join(done))
        if check is not None and parts[0] not in check():
            return f"unknown key {'.'.join([*done, parts[0]])!r} ({here} takes: {', '.join(sorted(check()))})"
        value_type = typing.get_args(annotation)[1] if typing.get_args(annotation) else Any
        return _walk(value_type, parts[1:], [*done, parts[0]])
    return f"{here} is a value ({getattr(annotation, '__name__', annotation)}), it has no key {parts[0]!r}"


# ------------------------------------------------------------------------------------------------
def get_dotted(tree: dict, path: str, default: Any = None) -> Any:
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


_MISSING = object()


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
            value = chosen.get(path, _MISSING)
            if value is _MISSING:
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


@dataclass
class SearchSpace:
    """A parsed, structurally valid search space; see the module docstring."""

    name: str
    source: str  # file name (for messages)
    text: str  # the YAML as written
    description: str | None
    settings: SearchSettings
    params: list[Parameter]

    # -- sampling ------------------------------------------------------------------------------
    def overrides(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """Optuna's ``{name: value}`` -> ``{config path: value}`` (inactive parameters absent)."""
        by_name = {p.name: p for p in self.params}
        return {by_name[k].path: v for k, v in sampled.items() if k in by_name}

    def apply(self, base: dict, sampled: dict[str, Any]) -> dict:
        """A copy of the base config tree with the sampled values set at their paths."""
        from videomamba.train.config import set_dotted

        raw = copy.deepcopy(base)
        for path, value in self.overrides(sampled).items():
            set_dotted(raw, path, value)
        return raw

    def define_by_run(self, base: dict) -> OptunaSpace:
        """The define-by-run function; ``when`` conditions on base paths see the base with its
        schema defaults filled in."""
        return OptunaSpace(self.params, _resolved(base))

    def sampler(self, seed: int):
        """The Optuna sampler for ``settings.algorithm`` (TPE handles multi-objective too)."""
        import optuna

        algorithm = self.settings.algorithm
        if algorithm == "grid":
            return AskTellGridSampler(self.grid(), seed=seed)
        if algorithm == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.dist.grid() for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def default_num_samples(self) -> int:
        if self.settings.num_samples:
            return self.settings.num_samples
        return self.grid_size() if self.settings.algorithm == "grid" else 8

    def describe(self) -> dict[str, str]:
        """``{name: "uniform(0.5, 0.9) at objective.mask.ratio [when ...]"}`` for logging."""
        out = {}
        for p in self.params:
            text = p.dist.describe() + (f" at {p.path}" if p.path != p.name else "")
            if p.when:
                text += " when " + ", ".join(f"{k} in {list(v)}" for k, v in p.when.items())
            out[p.name] = text
        return out

    # -- validation against a base config -------------------------------------------------------
    def check_base(self, base: dict) -> None:
        """Plug every choice and both bounds of every parameter (with its ``when`` values) into
        ``base`` (a raw config tree) and validate each with the training config schema; warn
        about parameters that the base makes inactive. Raises :class:`SpaceError` (or the
        training config's ``ConfigError`` when the base itself is invalid)."""
        from videomamba.train.config import ConfigError, set_dotted, validate_config

        resolved = _resolved(base)
        errors = []
        for p in self.params:
            reachable = self._condition_witness(p, resolved)
            if reachable is None:
                logger.warning("%s:%d: %s is never sampled with this base config (when: %s)",
                               self.source, p.line, p.name, dict(p.when))
                continue
            for value in p.dist.representatives():
                raw = copy.deepcopy(base)
                for path, v in {**reachable, p.path: value}.items():
                    set_dotted(raw, path, v)
                problem = _value_problem(p.path, value)
                if problem is None:
                    try:
                        validate_config(raw)
                    except ConfigError as err:
                        problem = str(err).replace("invalid config:\n", "").strip().replace("\n", ";")
                if problem:
                    errors.append(f"{self.source}:{p.line}: parameters.{p.name}: value {value!r} is rejected "
                                  f"by the training config: {problem}")
                    break
        if errors:
            raise SpaceError(f"invalid search space {self.source} for this base config:\n  " + "\n  ".join(errors))

    def _condition_witness(self, p: Parameter, resolved: dict) -> dict[str, Any] | None:
        """Values for the parameters ``p`` depends on that make it active (None: impossible)."""
        witness: dict[str, Any] = {}
        for path, accepted in p.when.items():
            owners = [q for q in self.params if q.path == path and q.line < p.line]
            options = [v for q in owners for v in q.dist.representatives() if v in accepted]
            if owners and options:
                witness[path] = options[0]
            elif owners or get_dotted(resolved, path, _MISSING) not in accepted:
                return None
        return witness


def _resolved(base: dict) -> dict:
    """The base config tree validated, with every default filled in (raises ``ConfigError``)."""
    from videomamba.train.config import validate_config

    return validate_config(base).model_dump(mode="json")


def _value_problem(path: str, value: Any) -> str | None:
    """Checks the schema cannot make for free-form sections (``model.overrides.scan_order``)."""
    if path == "model.overrides.scan_order":
        from videomamba.models.scan_order import SCAN_ORDERS

        if value not in SCAN_ORDERS:
            return f"unknown scan order {value!r} (valid: {', '.join(SCAN_ORDERS)})"
    return None


# ------------------------------------------------------------------------------------------------
def load_space(path: str | Path) -> SearchSpace:
    """Parse and check a search-space YAML (structure, types, bounds, paths, conditions) without
    a base config; raises :class:`SpaceError` naming the file and line of every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpaceError(f"{source}: cannot read: {err}") from None
    return parse_space(text, source=source, name=path.stem)


def parse_space(text: str, *, source: str = "<space>", name: str = "search") -> SearchSpace:
    """:func:`load_space` on YAML text."""
    try:
        tree = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark, context = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        text = getattr(err, "problem", None) or str(err)
        if context is not None and getattr(err, "context", None):
            text += f" ({err.context} at line {context.line + 1})"
        raise SpaceError(f"invalid search space {where}: {text}") from None
    if not isinstance(tree, _LineDict):
        raise SpaceError(f"invalid search space {source}:1: the top level must be a mapping")
    try:
        spec = _SpaceFile.model_validate(tree)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = [p for p in e["loc"] if p not in ("uniform", "loguniform", "int", "choice", "asha", "fifo")]
            where = ".".join(str(p) for p in loc) or "<top>"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            if e["type"] not in ("extra_forbidden", "missing") and "input" in e and not isinstance(e["input"], dict):
                msg += f" (got {e['input']!r})"
            lines.append(f"{source}:{_line_at(tree, e['loc'])}: {where}: {msg}")
        raise SpaceError(f"invalid search space {source}:\n  " + "\n  ".join(lines)) from None
    params, errors = _check_parameters(spec, tree, source)
    space = SearchSpace(name=name, source=source, text=text, description=spec.description,
                        settings=spec.search, params=params)
    errors += _check_settings(space, tree, source)
    if errors:
        raise SpaceError(f"invalid search space {source}:\n  " + "\n  ".join(errors))
    return space


def _check_parameters(spec: _SpaceFile, tree: _LineDict, source: str) -> tuple[list[Parameter], list[str]]:
    errors: list[str] = []
    node = tree["parameters"]
    params: list[Parameter] = []
    for name, dist in spec.parameters.items():
        line = node.line_of(name)
        entry = node[name]

        def err(key: str | None, msg: str, _name=name, _entry=entry, _line=line) -> None:
            at = _entry.line_of(key) if key and isinstance(_entry, _LineDict) else _line
            errors.append(f"{source}:{at}: parameters.{_name}{'.' + key if key else ''}: {msg}")

        path = dist.path or name
        if "/" in name:
            err(None, "'/' is not allowed in a parameter name")
        problem = schema_path_error(path)
        if problem:
            err("path" if dist.path else None, f"not a training config path: {problem}")
        if isinstance(dist, (UniformParam, LogUniformParam, IntParam)) and not dist.low < dist.high:
            err("high", f"high ({dist.high}) must be greater than low ({dist.low})")
        if isinstance(dist, UniformParam) and dist.step and dist.low < dist.high:
            n = (dist.high - dist.low) / dist.step
            if abs(n - round(n)) > 1e-6 or round(n) < 1:
                err("step", f"high - low ({dist.high - dist.low:g}) is not a multiple of step ({dist.step:g})")
        if isinstance(dist, IntParam) and dist.log and (dist.step != 1 or dist.low < 1):
            err("log", "log needs step 1 and low >= 1")
        if isinstance(dist, ChoiceParam) and len({repr(v) for v in dist.values}) != len(dist.values):
            err("values", "duplicate values")
        when = {}
        for cond_path, accepted in dist.when.items():
            accepted = tuple(accepted) if isinstance(accepted, list) else (accepted,)
            when[cond_path] = accepted
            owners = [q for q in params if q.path == cond_path]
            if cond_path == path:
                err("when", f"a parameter cannot depend on its own path {cond_path!r}")
            elif owners:
                reachable = {v for q in owners if isinstance(q.dist, ChoiceParam) for v in map(repr, q.dist.values)}
                if all(isinstance(q.dist, ChoiceParam) for q in owners) and not reachable & set(map(repr, accepted)):
                    err("when", f"{cond_path} never takes {list(accepted)} (choices: {sorted(reachable)})")
            elif cond_path in _later_paths(spec, name):
                err("when", f"{cond_path!r} is sampled by a later parameter; declare it first")
            else:
                problem = schema_path_error(cond_path)
                if problem:
                    err("when", f"condition on an unknown path: {problem}")
        for q in params:
            if q.path == path and not _disjoint(q.when, when):
                err(None, f"same path {path!r} as {q.name!r} (line {q.line}) without disjoint `when` conditions")
        params.append(Parameter(name=name, path=path, dist=dist, when=when, line=line))
    return params, errors


def _later_paths(spec: _SpaceFile, name: str) -> set[str]:
    names = list(spec.parameters)
    return {spec.parameters[n].path or n for n in names[names.index(name) + 1 :]}


def _disjoint(a: dict[str, tuple], b: dict[str, tuple]) -> bool:
    """Two ``when`` conditions that can never hold together."""
    return any(not {repr(v) for v in a[k]} & {repr(v) for v in b[k]} for k in set(a) & set(b))


def _check_settings(space: SearchSpace, tree: _LineDict, source: str) -> list[str]:
    errors: list[str] = []
    search = tree.get("search") if isinstance(tree.get("search"), _LineDict) else None
    line = search.line if search else tree.line
    settings = space.settings
    if settings.algorithm == "grid":
        for p in space.params:
            if not isinstance(p.dist, (ChoiceParam, IntParam)) or p.when:
                errors.append(f"{source}:{p.line}: parameters.{p.name}: the grid algorithm takes only choice/int "
                              "parameters without `when`")
    points = search.get("points_to_evaluate") if search else None
    by_name = {p.name: p for p in space.params}
    for i, point in enumerate(settings.points_to_evaluate):
        at = points.line_of(i) if isinstance(points, _LineList) else line
        for key, value in point.items():
            p = by_name.get(key)
            if p is None:
                errors.append(f"{source}:{at}: search.points_to_evaluate[{i}]: unknown parameter {key!r}")
            elif not _in_domain(p.dist, value):
                errors.append(f"{source}:{at}: search.points_to_evaluate[{i}].{key}: {value!r} is outside {p.dist.describe()}")
    return errors


def _in_domain(dist: Any, value: Any) -> bool:
    if isinstance(dist, ChoiceParam):
        return value in dist.values
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(dist, IntParam):
        return float(value).is_integer() and dist.low <= value <= dist.high and (value - dist.low) % dist.step == 0
    return dist.low <= value <= dist.high
