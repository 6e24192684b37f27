"""Evaluation metrics on constructed logits; multi-view averaging by video index."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import videomamba
from videomamba.metrics import average_views, classification_metrics, confusion_matrix, topk_accuracy
from videomamba.plots import plot_confusion


def test_topk_and_confusion():
    logits = np.array([[3, 2, 1, 0], [0, 3, 2, 1], [0, 1, 3, 2], [3, 2, 1, 0]], dtype=float)
    labels = np.array([0, 2, 3, 3])
    assert topk_accuracy(logits, labels, 1) == 0.25
    assert topk_accuracy(logits, labels, 2) == 0.75
    assert topk_accuracy(logits, labels, 10) == 1.0
    cm = confusion_matrix(logits.argmax(1), labels, 4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]]
    m = classification_metrics(logits, labels, num_classes=4, topk=(1, 2))
    assert m["top1"] == 0.25 and m["top2"] == 0.75
    assert m["per_class_acc"][0] == 1.0 and np.isnan(m["per_class_acc"][1]) and m["per_class_acc"][3] == 0.0
    assert m["mean_class_acc"] == pytest.approx((1 + 0 + 0) / 3)


def test_views_are_averaged_per_video():
    # video 7: views disagree, the average picks class 1; video 3: one confident view
    index = np.array([7, 3, 7, 7])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 1.0]])
    labels = np.array([1, 1, 1, 1])
    uniq, mean, per_label, counts = average_views(index, logits, labels)
    assert uniq.tolist() == [3, 7] and counts.tolist() == [1, 3]
    np.testing.assert_allclose(mean[1], [2 / 3, 4 / 3])
    m = classification_metrics(logits, labels, index=index)
    assert m["num_videos"] == 2 and m["num_views"] == 4 and m["top1"] == 1.0
    assert classification_metrics(logits, labels)["top1"] == 0.75  # per view
    with pytest.raises(ValueError):
        average_views(index, logits, np.array([1, 1, 0, 1]))


def test_confusion_png(tmp_path):
    path = plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000 and path.endswith("cm.png")


# ------------------------------------------------------------------------------------------------
# layering: metrics and plots stand alone; objectives take their metrics from them, never from the
# layers above (inference, train, tune, commands), not even in a function-local import
PACKAGE = Path(videomamba.__file__).parent
UPPER = ("videomamba.inference", "videomamba.train", "videomamba.tune", "videomamba.commands", "videomamba.cli")
#: none: a training checkpoint's layout (objectives/teachers.py reads it) lives below, in videomamba.checkpoints
ALLOWED: set[str] = set()


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_metrics_and_objectives_import_no_upper_layer():
    for name in ("metrics.py", "plots.py"):
        own = sorted(m for m in _imports(PACKAGE / name) if m.split(".")[0] == "videomamba")
        assert not own, f"{name} imports {own}: it must stand on numpy/torch/matplotlib alone"
    for path in sorted((PACKAGE / "objectives").glob("*.py")):
        upper = sorted(m for m in _imports(path) if m.startswith(UPPER) and m not in ALLOWED
                       and not any(m.startswith(a + ".") for a in ALLOWED))
        assert not upper, f"objectives/{path.name} imports {upper}"
