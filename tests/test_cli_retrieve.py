"""``videomamba retrieve`` over unlabelled footage (issue 19 §5): a path-only CSV/JSONL, a plain list
of videos, labels outside the training classes - labels are optional where they are not used."""

from __future__ import annotations

import shutil

import pytest
import torch

from test_cli_errors import TINY, synth, tiny_train_config  # noqa: F401 - fixture
from test_video_text import _save_tiny_bert
from videomamba.cli import main


@pytest.fixture(scope="module")
def contrastive_checkpoint(tmp_path_factory):
    """A (tiny, untrained) contrastive checkpoint: video tower + heads with a local tiny BERT."""
    import videomamba
    from videomamba.modules.text_tower import load_text_tower
    from videomamba.objectives.contrastive import ContrastiveConfig, build_heads
    from videomamba.checkpoints import save_checkpoint
    from videomamba.train.config import validate_config

    root = tmp_path_factory.mktemp("vt")
    bert = _save_tiny_bert(root / "bert")
    raw = tiny_train_config("data")
    raw["data"]["captions"] = True
    raw["objective"] = {"name": "contrastive", "text": {"model": str(bert)}, "embed_dim": 8}
    cfg = validate_config(raw)
    kwargs = {**TINY, "num_classes": 2, "num_frames": 4, "img_size": 16, "drop_path_rate": 0.0}
    torch.manual_seed(0)
    model = videomamba.create_model("videomamba_tiny", **kwargs)
    objective = ContrastiveConfig.model_validate(cfg.objective.model_dump())
    heads = build_heads(objective, model.embed_dim, load_text_tower(str(bert)))
    meta = {"format": 1, "model": {"name": "videomamba_tiny", "kwargs": kwargs}, "class_names": ["left", "right"],
            "weights": "model", "epoch": 0, "metrics": {}, "mlflow": {}, "config": cfg.model_dump(mode="json")}
    return save_checkpoint(root / "epoch_0000", model_state=model.state_dict(), meta=meta,
                           heads_state={f"heads.{k}": v for k, v in heads.state_dict().items()})


@pytest.fixture
def footage(tmp_path, synth):  # noqa: F811
    """Three videos in a folder of 'own footage', no labels anywhere."""
    out = tmp_path / "footage"
    out.mkdir()
    for i, src in enumerate(sorted((synth / "train").glob("*.mp4"))[:1] + sorted((synth / "val").glob("*.mp4"))):
        shutil.copy(src, out / f"clip{i}.mp4")
    return out


@pytest.mark.parametrize("kind", ["list", "foreign-labels"])
def test_retrieve_over_unlabelled_footage(contrastive_checkpoint, footage, kind, capsys):
    names = sorted(p.name for p in footage.glob("*.mp4"))
    manifest = {
        "list": (footage / "videos.txt", "".join(f"{n}\n" for n in names)),
        "csv": (footage / "videos.csv", "path\n" + "".join(f"{n}\n" for n in names)),
        "jsonl": (footage / "videos.jsonl", "".join(f'{{"path": "{n}"}}\n' for n in names)),
        "foreign-labels": (footage / "labelled.csv", "path,label\n" + "".join(f"{n},{7 + i}\n" for i, n in enumerate(names))),
    }[kind]
    manifest[0].write_text(manifest[1])
    code = main(["retrieve", "--checkpoint", str(contrastive_checkpoint), "--manifest", str(manifest[0]),
                 "--query", "a red circle moves left", "--top-k", "2", "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    hits = [ln for ln in out.out.splitlines() if ln.strip()[:2] in ("1.", "2.")]
    assert len(hits) == 2 and all("clip" in h for h in hits)


def test_read_manifest_without_labels(tmp_path):
    from videomamba.data.manifest import UNLABELLED, ManifestError, read_manifest

    (tmp_path / "l.txt").write_text("a.mp4\nb.mp4 3\n")
    records = read_manifest(str(tmp_path / "l.txt"), require_labels=False)
    assert [r.label for r in records] == [UNLABELLED, UNLABELLED] and records[0].path == str(tmp_path / "a.mp4")
    with pytest.raises(ManifestError, match="expected 'path label', got 1 fields"):
        read_manifest(str(tmp_path / "l.txt"))  # training still needs labels
    (tmp_path / "p.csv").write_text("path,caption\na.mp4,a red circle\n")
    (tmp_path / "p.jsonl").write_text('{"path": "a.mp4"}\n')
    for name in ("p.csv", "p.jsonl"):
        (record,) = read_manifest(str(tmp_path / name), require_labels=False)
        assert record.label == UNLABELLED and record.path == str(tmp_path / "a.mp4")
    assert read_manifest(str(tmp_path / "p.csv"), require_labels=False)[0].captions == ("a red circle",)
