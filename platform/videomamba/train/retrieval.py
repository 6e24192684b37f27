"""Zero-shot video-text retrieval with a ``contrastive`` checkpoint: metrics, evaluation on Ray
Data, and in-process text-to-video search (``videomamba retrieve``).

Ranks are 1-based; a tie with a wrong candidate counts against the right one (a constant
similarity gets the worst ranks, never the best). Text-to-video: each caption has one right
video. Video-to-text: a video's rank is that of its best-ranked own caption among all captions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

RECALLS = (1, 5, 10)


def _rank_stats(ranks: np.ndarray, prefix: str) -> dict[str, float]:
    out = {f"{prefix}_r{k}": float(np.mean(ranks <= k)) for k in RECALLS}
    out[f"{prefix}_medr"] = float(np.median(ranks))
    out[f"{prefix}_meanr"] = float(np.mean(ranks))
    return out


def retrieval_ranks(sim: np.ndarray, text_video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sim (N_text, N_video)``, ``text_video (N_text,)`` = the right video of each caption ->
    ``(t2v ranks (N_text,), v2t ranks (N_video,))``. Every video needs at least one caption."""
    sim = np.asarray(sim, dtype=np.float64)
    text_video = np.asarray(text_video, dtype=np.int64)
    n_text, n_video = sim.shape
    if text_video.shape != (n_text,) or (n_text and (text_video.min() < 0 or text_video.max() >= n_video)):
        raise ValueError(f"text_video must be ({n_text},) ints in [0, {n_video}), got {text_video.shape}")
    own = np.zeros((n_video, n_text), dtype=bool)
    own[text_video, np.arange(n_text)] = True
    if not own.any(1).all():
        raise ValueError(f"videos without a caption: {np.flatnonzero(~own.any(1))[:10].tolist()}")
    right = sim[np.arange(n_text), text_video]
    t2v = (sim >= right[:, None]).sum(1)  # 1 + wrong videos scoring >= the right one
    sim_t = sim.T
    best = np.where(own, sim_t, -np.inf).max(1)
    v2t = 1 + ((sim_t >= best[:, None]) & ~own).sum(1)
    return t2v, v2t


def retrieval_metrics(sim: np.ndarray, text_video: np.ndarray) -> dict[str, float]:
    """Recall@1/5/10 (fractions), median and mean rank both ways (``t2v_*``, ``v2t_*``), their
    mean recall ``r_mean``, ``num_videos`` and ``num_captions``; see :func:`retrieval_ranks`."""
    t2v, v2t = retrieval_ranks(sim, text_video)
    out = {**_rank_stats(t2v, "t2v"), **_rank_stats(v2t, "v2t")}
    out["r_mean"] = float(np.mean([out[f"{d}_r{k}"] for d in ("t2v", "v2t") for k in RECALLS]))
    out.update(num_videos=int(sim.shape[1]), num_captions=int(sim.shape[0]))
    return out


def chance_metrics(num_videos: int, captions_per_video: int = 1) -> dict[str, float]:
    """Expected Recall@K and median rank of a random ranking (one right video per caption;
    ``captions_per_video`` right captions per video, video-to-text)."""
    n_text = num_videos * captions_per_video
    out = {f"t2v_r{k}": min(1.0, k / num_videos) for k in RECALLS}
    out["t2v_medr"] = (num_videos + 1) / 2
    # v2t: the best of c right captions among n_text: P(rank <= k) = 1 - C(n - c, k) / C(n, k)
    c = captions_per_video
    for k in RECALLS:
        p_miss = np.prod([(n_text - c - i) / (n_text - i) for i in range(min(k, int(n_text - c) + 1))])
        out[f"v2t_r{k}"] = float(1 - max(p_miss, 0.0))
    return out


def video_text_metrics(
    video_emb: np.ndarray,
    index: np.ndarray,
    captions: Sequence[Sequence[str]],
    encode_text: Callable[[list[str]], torch.Tensor],
) -> dict[str, Any]:
    """Retrieval metrics of per-view unit video embeddings ``(V, E)`` of manifest rows ``index
    (V,)`` (views of a video averaged, renormalised) against all captions of those rows
    (``captions[row]``), embedded by ``encode_text(list[str]) -> (N, E)``."""
    from videomamba.train.evaluate import average_views

    rows, mean_emb, _, _ = average_views(index, video_emb)
    mean_emb /= np.maximum(np.linalg.norm(mean_emb, axis=1, keepdims=True), 1e-12)
    texts, text_video = [], []
    for position, row in enumerate(rows):
        texts.extend(captions[row])
        text_video.extend([position] * len(captions[row]))
    with torch.inference_mode():
        text_emb = encode_text(texts).float().cpu().numpy().astype(np.float64)
    return {**retrieval_metrics(text_emb @ mean_emb.T, np.asarray(text_video)), "task": "retrieval"}


# ------------------------------------------------------------------------------------------------
def load_video_text_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(VideoTextModel in eval mode, meta)`` from a ``contrastive`` training checkpoint: the
    video tower from ``model.pt``, the heads from ``heads.pt``, a frozen text tower rebuilt from
    the config's ``objective.text``."""
    from videomamba.models.video_text import VideoTextModel
    from videomamba.modules.text_tower import load_text_tower
    from videomamba.objectives.contrastive import ContrastiveConfig, build_heads
    from videomamba.checkpoints import load_heads, load_trained_model

    model, meta = load_trained_model(checkpoint)
    objective = meta["config"].get("objective", {})
    if objective.get("name") != "contrastive":
        raise ValueError(f"{checkpoint}: trained with objective {objective.get('name')!r}, not 'contrastive' (no text tower)")
    cfg = ContrastiveConfig.model_validate(objective)
    text = load_text_tower(cfg.text.model, pooling=cfg.text.pooling, max_length=cfg.text.max_length)
    heads = build_heads(cfg, model.embed_dim, text)
    state = load_heads(checkpoint)
    heads.load_state_dict({k.removeprefix("heads."): v for k, v in state.items() if k.startswith("heads.")})
    return VideoTextModel(model, heads).to(device).eval(), meta


def evaluate_retrieval(
    checkpoint: str,
    *,
    data_cfg,
    split: str = "test",
    manifest: str | None = None,
    batch_size: int = 8,
    num_actors: int = 1,
    seed: int = 0,
    scope: str = "eval",
    splits=None,
) -> dict[str, Any]:
    """Zero-shot retrieval on ``split`` (or ``manifest``) on Ray: video embeddings from an actor
    pool (views averaged per video), captions embedded in this process. Returns
    :func:`retrieval_metrics` plus ``split``, ``skips`` and ``task: retrieval``. ``splits``: the
    data as already read (:class:`~videomamba.data.splits.Splits`), else read here."""
    from videomamba.data.skips import skip_metrics
    from videomamba.data.splits import Splits
    from videomamba.train.evaluate import collect, predict_dataset

    splits = splits or Splits(data_cfg, {split: manifest})
    ds = splits.dataset(split, seed=seed, scope=scope)
    rows = predict_dataset(ds, checkpoint, batch_size=batch_size, num_actors=num_actors, output="embedding")
    cols = collect(rows, ("index", "view", "embedding"))
    model, _ = load_video_text_model(checkpoint)
    captions = [r.captions for r in splits.records(split)]
    full = video_text_metrics(cols["embedding"], cols["index"], captions, model.encode_text)
    full.update(split=split, skips=skip_metrics(split, scope))
    return full


# ------------------------------------------------------------------------------------------------
@dataclass
class Hit:
    path: str
    score: float  # cosine similarity
    caption: str | None = None


def retrieve(
    checkpoint: str | os.PathLike,
    queries: Sequence[str],
    manifest: str,
    *,
    top_k: int = 5,
    split: str = "test",
    device: str | None = None,
    batch_size: int = 8,
    path_prefix: str | None = None,
) -> list[list[Hit]]:
    """For each text query, the ``top_k`` best-matching videos of ``manifest`` (in-process, no
    Ray): every video is decoded with the evaluation views of ``split`` (as ``predict``), its
    view embeddings averaged. Unreadable videos are skipped with a warning. Labels are not used:
    the manifest may be a path-only CSV/JSONL or a plain list of videos; relative paths are
    joined to ``path_prefix`` (default: the manifest's directory)."""
    from videomamba.data.config import DataConfig
    from videomamba.data.decode import DecodeError
    from videomamba.data.manifest import read_manifest
    from videomamba.train.predict import load_views
    from videomamba.train.precision import resolve_precision

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, meta = load_video_text_model(checkpoint, dev)
    data_cfg = DataConfig.model_validate(meta["config"]["data"])
    precision = resolve_precision("auto", dev)
    records = read_manifest(manifest, path_prefix=path_prefix, require_labels=False)
    kept, embeddings = [], []
    for record in records:
        try:
            views = torch.from_numpy(load_views(record.path, data_cfg, split))
        except (DecodeError, OSError) as err:
            logger.warning("skipping %s: %s", record.path, err)
            continue
        with torch.inference_mode(), precision.autocast():
            emb = torch.cat([model.encode_video(v.to(dev)) for v in views.split(batch_size)]).float().mean(0)
        kept.append(record)
        embeddings.append(torch.nn.functional.normalize(emb, dim=0))
    if not kept:
        raise RuntimeError(f"{manifest}: no readable video")
    logger.info("embedded %d of %d videos of %s", len(kept), len(records), manifest)
    with torch.inference_mode():
        sim = model.encode_text(list(queries)).float() @ torch.stack(embeddings).T  # (Q, N)
    scores, order = sim.topk(min(top_k, len(kept)), dim=1)
    return [
        [Hit(kept[j].path, float(s), kept[j].caption) for s, j in zip(row_s.tolist(), row_j.tolist())]
        for row_s, row_j in zip(scores, order)
    ]
