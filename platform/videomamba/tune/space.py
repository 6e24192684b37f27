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
  model.scan_order: {type: choice, values: [spatial_first, temporal_first]}
  objective.mask.type:
    type: choice
    values: [random, tube, clip_row, frame_row]
    when: {objective.teacher.kind: videomamba}     # only sampled when this holds
```

``when`` maps a path to a value (or a list of accepted values); the path is an earlier
parameter's path or a base-config path. Two parameters may share a path only when their ``when``
conditions on a common path are disjoint. Everything is checked before any trial starts
(:func:`load_space`, then :meth:`SearchSpace.check_base`): the file's structure and types,
bounds, empty choices, parameter paths against the training config schema (``tune/paths.py``),
and every choice / bound plugged into the base config and validated by ``validate_config``.
Errors name the file and line.

Modules: ``yaml_lines`` (YAML with line numbers), ``space_schema`` (the file's pydantic schema),
``paths`` (config paths), ``optuna_space`` (sampling); this one parses and checks.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from videomamba.train.config import ConfigError, set_dotted, validate_config
from videomamba.tune.optuna_space import MISSING, AskTellGridSampler, OptunaSpace, Parameter
from videomamba.tune.paths import get_dotted, schema_path_error
from videomamba.tune.space_schema import (ChoiceParam, IntParam, LogUniformParam, Param, SearchSettings, SpaceFile,
                                          UniformParam)
from videomamba.tune.yaml_lines import LineDict, LineList, line_at, load_with_lines

__all__ = ["SpaceError", "SearchSpace", "Parameter", "load_space", "parse_space", "schema_path_error", "Param",
           "UniformParam", "LogUniformParam", "IntParam", "ChoiceParam", "SearchSettings"]

logger = logging.getLogger(__name__)


class SpaceError(ValueError):
    """An invalid search space; the message has one ``file:line: where: problem`` line per error."""


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
                problem = None
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
            elif owners or get_dotted(resolved, path, MISSING) not in accepted:
                return None
        return witness


def _resolved(base: dict) -> dict:
    """The base config tree validated, with every default filled in (raises ``ConfigError``)."""
    return validate_config(base).model_dump(mode="json")


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
        tree = load_with_lines(text)
    except yaml.YAMLError as err:
        mark, context = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        text = getattr(err, "problem", None) or str(err)
        if context is not None and getattr(err, "context", None):
            text += f" ({err.context} at line {context.line + 1})"
        raise SpaceError(f"invalid search space {where}: {text}") from None
    if not isinstance(tree, LineDict):
        raise SpaceError(f"invalid search space {source}:1: the top level must be a mapping")
    try:
        spec = SpaceFile.model_validate(tree)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = [p for p in e["loc"] if p not in ("uniform", "loguniform", "int", "choice", "asha", "fifo")]
            where = ".".join(str(p) for p in loc) or "<top>"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            if e["type"] not in ("extra_forbidden", "missing") and "input" in e and not isinstance(e["input"], dict):
                msg += f" (got {e['input']!r})"
            lines.append(f"{source}:{line_at(tree, e['loc'])}: {where}: {msg}")
        raise SpaceError(f"invalid search space {source}:\n  " + "\n  ".join(lines)) from None
    params, errors = _check_parameters(spec, tree, source)
    space = SearchSpace(name=name, source=source, text=text, description=spec.description,
                        settings=spec.search, params=params)
    errors += _check_settings(space, tree, source)
    if errors:
        raise SpaceError(f"invalid search space {source}:\n  " + "\n  ".join(errors))
    return space


def _check_parameters(spec: SpaceFile, tree: LineDict, source: str) -> tuple[list[Parameter], list[str]]:
    errors: list[str] = []
    node = tree["parameters"]
    params: list[Parameter] = []
    for name, dist in spec.parameters.items():
        line = node.line_of(name)
        entry = node[name]

        def err(key: str | None, msg: str, _name=name, _entry=entry, _line=line) -> None:
            at = _entry.line_of(key) if key and isinstance(_entry, LineDict) else _line
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


def _later_paths(spec: SpaceFile, name: str) -> set[str]:
    names = list(spec.parameters)
    return {spec.parameters[n].path or n for n in names[names.index(name) + 1 :]}


def _disjoint(a: dict[str, tuple], b: dict[str, tuple]) -> bool:
    """Two ``when`` conditions that can never hold together."""
    return any(not {repr(v) for v in a[k]} & {repr(v) for v in b[k]} for k in set(a) & set(b))


def _check_settings(space: SearchSpace, tree: LineDict, source: str) -> list[str]:
    errors: list[str] = []
    search = tree.get("search") if isinstance(tree.get("search"), LineDict) else None
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
        at = points.line_of(i) if isinstance(points, LineList) else line
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
