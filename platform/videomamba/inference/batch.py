"""Ray Data batch inference: an actor pool of predictors, each loading a checkpoint once and
mapping batches of clips to logits (a classifier) or unit video embeddings (a ``contrastive``
checkpoint). uint8 clips (``data.clip_dtype``) are normalised in the actor, on its device after the
host-to-device copy (:mod:`videomamba.data.normalize`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from videomamba.checkpoints import load_trained_model
from videomamba.data.normalize import IMAGENET_MEAN, IMAGENET_STD, normalize_video
from videomamba.inference.load import load_video_text_model
from videomamba.metrics import sort_views
from videomamba.precision import resolve_precision


class NoClipsError(RuntimeError):
    """An evaluation dataset produced no clip at all."""


class _Predictor:
    """Actor: loads a checkpoint once, maps batches of clips to ``logits`` (the classifier) or,
    with ``output="embedding"``, to the unit video embeddings of a ``contrastive`` checkpoint.
    ``mean``/``std``: the normalisation of uint8 clips (the dataset's ``data.mean``/``data.std``)."""

    def __init__(self, checkpoint: str, device: str | None = None, precision: str = "auto", output: str = "logits",
                 tracking_uri: str | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if output == "embedding":
            self.model = load_video_text_model(checkpoint, self.device)[0].encode_video
        elif output == "logits":
            self.model, _ = load_trained_model(checkpoint, self.device, tracking_uri=tracking_uri)
        else:
            raise ValueError(f"output: unknown {output!r} (logits | embedding)")
        self.output, self.mean, self.std = output, tuple(mean), tuple(std)
        self.precision = resolve_precision(precision, self.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        video = torch.as_tensor(np.stack(list(batch["video"])) if batch["video"].dtype == object else batch["video"])
        with torch.inference_mode():
            video = normalize_video(video.to(self.device, non_blocking=True), self.mean, self.std)
            with self.precision.autocast():
                out = self.model(video).float().cpu().numpy()
        return {"index": batch["index"], "view": batch["view"], "label": batch["label"], self.output: out}


def predict_dataset(
    dataset, checkpoint: str, *, batch_size: int = 8, num_actors: int = 1, num_gpus: float | None = None, output: str = "logits",
    tracking_uri: str | None = None, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
):
    """Ray Data dataset of ``index, view, label, <output>`` rows (an actor pool of predictors).
    ``tracking_uri``: where the actors resolve an MLflow model URI (``models:/...``); ``mean``/``std``:
    the dataset's ``data.mean``/``data.std``, applied in the actors to uint8 clips."""
    import ray  # here, not at the top: the in-process ``retrieve`` imports this module without Ray

    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return dataset.map_batches(
        _Predictor,
        fn_constructor_kwargs={"checkpoint": str(checkpoint), "device": "cuda" if num_gpus else "cpu", "output": output,
                               "tracking_uri": tracking_uri, "mean": tuple(mean), "std": tuple(std)},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, num_actors)),
        num_gpus=num_gpus,
        batch_format="numpy",
    )


def collect(rows, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Concatenate the ``keys`` columns of a (prediction) dataset into arrays, sorted by
    ``(index, view)`` when both are among ``keys`` (:func:`videomamba.metrics.sort_views`).
    Raises :class:`NoClipsError` when the dataset has no row."""
    cols: dict[str, list] = {key: [] for key in keys}
    for batch in rows.iter_batches(batch_size=256, batch_format="numpy"):
        for key in cols:
            cols[key].append(batch[key])
    if not cols[keys[0]]:
        raise NoClipsError("evaluation dataset produced no clips")
    out = {key: np.concatenate([np.stack(list(x)) if x.dtype == object else x for x in parts]) for key, parts in cols.items()}
    return sort_views(out) if "index" in out and "view" in out else out
