"""Search spaces: parsing, line-numbered validation, schema paths, define-by-run sampling, reports.
No Ray here (fast)."""

from __future__ import annotations

import copy
import pickle
import textwrap
from pathlib import Path

import optuna
import pytest

from videomamba.models.scan_order import SCAN_ORDERS
from videomamba.tune import report
from videomamba.tune.space import SpaceError, load_space, parse_space, schema_path_error

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"

BASE = {
    "model": {"name": "videomamba_tiny", "overrides": {"embed_dim": 32, "depth": 2}},
    "data": {"train_manifest": "train.csv", "val_manifest": "val.csv", "num_frames": 8, "img_size": 32},
    "train": {"epochs": 2},
    "schedule": {"warmup_epochs": 0},
    "scaling": {"num_workers": 1},
}


def space(text: str, name: str = "t"):
    return parse_space(textwrap.dedent(text), source=f"{name}.yaml", name=name)


def errors_of(text: str) -> str:
    with pytest.raises(SpaceError) as info:
        space(text)
    return str(info.value)


# -- shipped spaces ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["demo", "scan_order", "masking", "distillation"])
def test_shipped_spaces_parse(name):
    s = load_space(SPACES / f"{name}.yaml")
    assert s.params and s.name == name


def test_scan_order_space_covers_every_scan_order():
    s = load_space(SPACES / "scan_order.yaml")
    (p,) = s.params
    assert p.path == "model.scan_order" and set(p.dist.values) == set(SCAN_ORDERS)
    assert s.settings.algorithm == "grid" and s.default_num_samples() == len(SCAN_ORDERS)
    s.check_base(BASE)


def test_objective_spaces_check_against_their_objectives(caplog):
    masking, distill = load_space(SPACES / "masking.yaml"), load_space(SPACES / "distillation.yaml")
    with pytest.raises(SpaceError, match=r"masking.yaml:\d+: parameters.objective.mask.ratio"):
        masking.check_base(BASE)  # a supervised base has no mask
    for kind in ("videomamba", "vit"):
        base = copy.deepcopy(BASE)
        base["objective"] = {"name": "masked_align", "teacher": {"kind": kind}}
        masking.check_base(base)
    assert "mask_type_vit_teacher is never sampled" in caplog.text  # videomamba teacher: no attention masks
    base = copy.deepcopy(BASE)
    base["objective"] = {"name": "distill", "teacher": {"kind": "videomamba"}}
    distill.check_base(base)


# -- validation errors name the line -----------------------------------------------------------
def test_inverted_bounds_unknown_path_and_bad_override_key_name_their_lines():
    msg = errors_of("""\
        parameters:
          objective.label_smoothing:
            type: uniform
            low: 0.3
            high: 0.1
          optim.lrr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
          model.overrides.embed_dm: {type: choice, values: [1]}
          train.epochs: {type: int, low: 4, high: 4}
          model.overrides.scan_order: {type: choice, values: [spatial_first]}
        """)
    assert "t.yaml:5: parameters.objective.label_smoothing.high: high (0.1) must be greater than low (0.3)" in msg
    assert "t.yaml:6: parameters.optim.lrr: not a training config path: unknown key 'optim.lrr' (did you mean lr?)" in msg
    assert ("t.yaml:7: parameters.model.overrides.embed_dm: not a training config path: unknown key "
            "'model.overrides.embed_dm' (did you mean embed_dim?)") in msg  # the overrides are typed
    assert "t.yaml:8: parameters.train.epochs.high" in msg
    # the old spelling names the new key
    assert "t.yaml:9: parameters.model.overrides.scan_order: not a training config path: 'model.overrides.scan_order' " \
           "is now 'model.scan_order'" in msg


def test_empty_choices_wrong_types_and_unknown_keys_name_their_lines():
    msg = errors_of("""\
        search:
          mode: maximum
        parameters:
          model.scan_order:
            type: choice
            values: []
          train.epochs: {type: int, low: 1.5, high: 3}
          optim.lr: {type: normal, low: 0, high: 1}
          optim.weight_decay:
            type: uniform
            low: 0.0
            high: 0.1
            hgh: 0.2
        """)
    assert "t.yaml:2: search.mode" in msg
    assert "t.yaml:6: parameters.model.scan_order.values: List should have at least 1 item" in msg
    assert "t.yaml:7: parameters.train.epochs.low" in msg and "1.5" in msg
    assert "t.yaml:8: parameters.optim.lr" in msg and "normal" in msg
    assert "t.yaml:13: parameters.optim.weight_decay.hgh: unknown key" in msg


def test_yaml_syntax_and_duplicate_keys_name_their_lines():
    assert "t.yaml:3" in errors_of("parameters:\n  optim.lr: {type: uniform, low: 0.1, high: 0.2}\n  optim.lr: {type: uniform}\n")
    msg = errors_of("parameters:\n  a: [1, 2\n")
    assert "t.yaml:3: expected ',' or ']'" in msg and "flow sequence at line 2" in msg


def test_conditions_and_shared_paths_are_checked():
    msg = errors_of("""\
        parameters:
          objective.label_smoothing:
            type: uniform
            low: 0.0
            high: 0.2
            when: {optim.layer_decay: 0.75}
          optim.layer_decay: {type: choice, values: [0.75, 1.0]}
          optim.weight_decay: {type: uniform, low: 0.0, high: 0.1, when: {optim.nope: 1}}
          optim.clip_grad: {type: choice, values: [1.0, null]}
          clip_again:
            path: optim.clip_grad
            type: choice
            values: [5.0]
        """)
    assert "t.yaml:6: parameters.objective.label_smoothing.when: 'optim.layer_decay' is sampled by a later parameter" in msg
    assert "t.yaml:8: parameters.optim.weight_decay.when: condition on an unknown path" in msg
    assert "t.yaml:10: parameters.clip_again: same path 'optim.clip_grad'" in msg


def test_grid_and_points_to_evaluate_are_checked():
    msg = errors_of("""\
        search:
          algorithm: grid
          points_to_evaluate:
            - {optim.lr: 5.0}
            - {nope: 1}
        parameters:
          optim.lr: {type: uniform, low: 0.1, high: 0.2}
        """)
    assert "t.yaml:7: parameters.optim.lr: the grid algorithm takes only choice/int" in msg
    assert "t.yaml:4: search.points_to_evaluate[0].optim.lr: 5.0 is outside uniform(0.1, 0.2)" in msg
    assert "t.yaml:5: search.points_to_evaluate[1]: unknown parameter 'nope'" in msg


def test_values_the_training_schema_rejects_fail_against_the_base():
    s = space("""\
        parameters:
          objective.label_smoothing: {type: uniform, low: 0.5, high: 1.0}
          model.scan_order: {type: choice, values: [spatial_first, diagonal]}
          model.overrides.depth: {type: choice, values: [2, deep]}
        """)
    with pytest.raises(SpaceError) as info:
        s.check_base(BASE)
    msg = str(info.value)
    assert "t.yaml:2: parameters.objective.label_smoothing: value 1.0 is rejected" in msg
    assert "t.yaml:3: parameters.model.scan_order: value 'diagonal' is rejected" in msg and "temporal_first" in msg
    assert "t.yaml:4: parameters.model.overrides.depth: value 'deep' is rejected" in msg  # typed from VideoMamba


def test_schema_paths_walk_nested_models_unions_and_free_dicts():
    assert schema_path_error("optim.lr") is None
    assert schema_path_error("objective.mask.ratio") is None  # a masked_align field (union member)
    assert schema_path_error("objective.teacher.kind") is None
    assert schema_path_error("model.scan_order") is None
    assert schema_path_error("model.overrides.depth") is None
    assert schema_path_error("model.overrides.ssm_cfg.anything") is None  # dict | None
    assert "is now 'model.backend'" in schema_path_error("model.overrides.backend")
    assert schema_path_error("data.decode_resources.anything") is None  # dict[str, float]
    assert "not a field of any variant" in schema_path_error("objective.nope")
    assert "has no key" in schema_path_error("optim.lr.x")


def test_invalid_space_fails_fast_in_the_cli_before_ray(tmp_path, capsys):
    import ray

    from videomamba.cli import main

    (tmp_path / "base.yaml").write_text("data: {train_manifest: t.csv, val_manifest: v.csv}\n")
    (tmp_path / "bad.yaml").write_text("parameters:\n  optim.lr:\n    type: loguniform\n    low: 1.0e-2\n    high: 1.0e-3\n")
    was = ray.is_initialized()
    rc = main(["tune", "--config", str(tmp_path / "base.yaml"), "--space", str(tmp_path / "bad.yaml")])
    assert rc == 2
    assert f"{tmp_path / 'bad.yaml'}:5: parameters.optim.lr.high" in capsys.readouterr().err
    assert ray.is_initialized() == was  # nothing started


# -- sampling -----------------------------------------------------------------------------------
def test_define_by_run_respects_conditions_and_pickles():
    s = load_space(SPACES / "distillation.yaml")
    base = copy.deepcopy(BASE)
    base["objective"] = {"name": "distill", "teacher": {"kind": "videomamba"}}
    fn = pickle.loads(pickle.dumps(s.define_by_run(base)))  # the Tuner checkpoints it
    study = optuna.create_study(direction="maximize", sampler=s.sampler(0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        fn(trial)
        params = trial.params
        seen.add(params["objective.weight_schedule"])
        assert ("objective.distill_weight_end" in params) == (params["objective.weight_schedule"] == "cosine")
        assert 0.1 <= params["objective.distill_weight"] <= 10.0
        overrides = s.overrides(params)
        assert set(overrides) == set(params)
        study.tell(trial, 0.5)
    assert seen == {"constant", "cosine"}


def test_conditions_on_the_base_pick_the_variant():
    s = load_space(SPACES / "masking.yaml")
    base = copy.deepcopy(BASE)
    base["objective"] = {"name": "masked_align", "teacher": {"kind": "vit"}}
    study = optuna.create_study(sampler=s.sampler(0))
    trial = study.ask()
    s.define_by_run(base)(trial)
    assert set(trial.params) == {"objective.mask.ratio", "mask_type_vit_teacher"}
    tree = s.apply(base, trial.params)
    assert tree["objective"]["mask"]["type"] == trial.params["mask_type_vit_teacher"]
    assert base["objective"].get("mask") is None  # the base is not modified


def test_grid_sampler_visits_every_scan_order():
    s = load_space(SPACES / "scan_order.yaml")
    study = optuna.create_study(direction="maximize", sampler=s.sampler(0))
    fn = s.define_by_run(BASE)
    seen = []
    for _ in range(s.default_num_samples()):
        trial = study.ask()
        fn(trial)
        seen.append(trial.params["model.scan_order"])
        study.tell(trial, 0.0)
    assert sorted(seen) == sorted(SCAN_ORDERS)


# -- reports ------------------------------------------------------------------------------------
def _row(tid, status, acc, speed, **params):
    return {"trial_id": tid, "status": status, "params": params, "metrics": {"val/top1": acc, "train/clips_per_s": speed}}


def test_best_and_pareto(tmp_path):
    rows = [
        _row("a", report.COMPLETED, 0.9, 10.0, lr=1e-3, scan="s"),
        _row("b", report.COMPLETED, 0.8, 30.0, lr=3e-3, scan="t"),
        _row("c", report.COMPLETED, 0.7, 20.0, lr=2e-3, scan="t"),  # dominated by b
        _row("d", report.ERROR, None, None, lr=1e-4, scan="s"),
        _row("e", report.STOPPED, 0.95, 5.0, lr=5e-4, scan="s"),
    ]
    metrics, modes = ["val/top1", "train/clips_per_s"], ["max", "max"]
    assert {r["trial_id"] for r in report.pareto_front(rows, metrics, modes)} == {"a", "b", "e"}
    assert report.best_row(rows, metrics, modes)["trial_id"] == "e"
    assert report.best_row(rows, ["train/clips_per_s"], ["min"])["trial_id"] == "e"
    table = report.markdown_table(rows, ["lr", "scan"], metrics)
    assert table.count("\n") == 2 + len(rows) and "| d | ERROR |" in table
    png = report.plot_trials(rows, ["lr", "scan"], metrics, tmp_path / "p.png", log_params=["lr"])
    assert Path(png).stat().st_size > 1000


def test_conditions_on_base_paths_see_schema_defaults(caplog):
    s = space("""\
        parameters:
          optim.weight_decay: {type: uniform, low: 0.0, high: 0.1, when: {optim.layer_decay: 1.0}}
          optim.clip_grad: {type: uniform, low: 0.5, high: 2.0, when: {optim.layer_decay: 0.75}}
        """)
    s.check_base(BASE)  # the base sets no optim.layer_decay: the schema default (1.0) counts
    assert "optim.clip_grad is never sampled" in caplog.text and "optim.weight_decay is never" not in caplog.text
    trial = optuna.create_study(sampler=s.sampler(0)).ask()
    s.define_by_run(BASE)(trial)
    assert set(trial.params) == {"optim.weight_decay"}
