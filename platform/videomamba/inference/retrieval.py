"""Zero-shot video-text retrieval with a ``contrastive`` checkpoint: evaluation on Ray Data
(:func:`evaluate_retrieval`, metrics from :mod:`videomamba.metrics`) and in-process text-to-video
search (:func:`retrieve`, ``videomamba retrieve``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from videomamba.data.config import DataConfig
from videomamba.data.decode import DecodeError
from videomamba.data.manifest import read_manifest
from videomamba.data.skips import skip_metrics
from videomamba.data.splits import Splits
from videomamba.inference.batch import collect, predict_dataset
from videomamba.inference.load import load_video_text_model
from videomamba.inference.predict import load_views
from videomamba.metrics import video_text_metrics
from videomamba.precision import resolve_precision

logger = logging.getLogger(__name__)


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
    splits: Splits | None = None,
) -> dict[str, Any]:
    """Zero-shot retrieval on ``split`` (or ``manifest``) on Ray: video embeddings from an actor
    pool (views averaged per video), captions embedded in this process. Returns
    :func:`videomamba.metrics.retrieval_metrics` plus ``split``, ``skips`` and ``task: retrieval``.
    ``splits``: the data as already read (:class:`~videomamba.data.splits.Splits`), else read here."""
    splits = splits or Splits(data_cfg, {split: manifest})
    ds = splits.dataset(split, seed=seed, scope=scope)
    rows = predict_dataset(ds, checkpoint, batch_size=batch_size, num_actors=num_actors, output="embedding",
                           mean=data_cfg.mean, std=data_cfg.std)
    cols = collect(rows, ("index", "view", "embedding"))
    model, _ = load_video_text_model(checkpoint)
    captions = [r.captions for r in splits.records(split)]
    full = video_text_metrics(cols["embedding"], cols["index"], captions, model.encode_text)
    full.update(split=split, skips=skip_metrics(split, scope))
    return full


@dataclass
class Hit:
    """One search result: a video of the manifest, its score against the query, its caption."""

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
