"""Masked pretraining (``objective.name: masked_align``) as a Ray job, then an export that the
training pipeline fine-tunes from::

    ray job submit --working-dir . -- python pipelines/pretrain.py \
        --config configs/pretrain_demo.yaml [--set key=value ...] [--resume] [--export PATH]

Runs :func:`videomamba.train.launcher.run_training` (MLflow-tracked like any run), then writes the
best checkpoint's student as a plain published-format state dict (default
``<run dir>/pretrained.pt``). The decoders live in the checkpoint's ``heads.pt`` and the teacher is
never saved, so the export has exactly the model's keys; it is checked with
``videomamba.load_checkpoint(strict=True)`` before being written. Fine-tune with
``model.pretrained: <export>`` (a head of another size is re-initialised by ``load_checkpoint``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger("videomamba.pretrain")


def export_pretrained(checkpoint: str, out: str | Path) -> Path:
    """Student weights of a training checkpoint (dir or URI) -> ``out`` (a state dict), after
    checking they load strictly into the checkpoint's architecture."""
    import torch

    import videomamba
    from videomamba.models.spec import ModelSpec
    from videomamba.train.checkpointing import MODEL_FILE, local_checkpoint_dir, read_meta

    with local_checkpoint_dir(checkpoint) as d:
        spec = ModelSpec.from_meta(read_meta(d))
        state = torch.load(d / MODEL_FILE, map_location="cpu", weights_only=True)
    report = videomamba.load_checkpoint(spec.build(), state, strict=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    logger.info("exported %d tensors of %s to %s (loads strictly: %s)", len(state), checkpoint, out, report.complete)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training YAML with objective.name: masked_align")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="dotted override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run named run.name (default: the latest)")
    p.add_argument("--export", default=None, help="where to write the pretrained state dict (default: <run dir>/pretrained.pt)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None):
    """Returns the :class:`TrainRun` with ``.export`` (the written file) set."""
    from videomamba.train.config import ConfigError, load_config
    from videomamba.train.launcher import run_training

    args = parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if cfg.objective.name != "masked_align":
        raise ConfigError(f"objective.name: pretrain.py runs masked_align, got {cfg.objective.name!r}")
    run = run_training(cfg, resume=args.resume)
    if run.best_checkpoint is None:
        raise RuntimeError(f"run {run.name} produced no checkpoint")
    export = args.export or (f"{run.path}/pretrained.pt" if "://" not in run.path else None)
    if export is None:
        raise ValueError("--export is required when the run is stored remotely")
    run.export = export_pretrained(run.best_checkpoint, export)
    logger.info("pretraining done; fine-tune with: --set model.pretrained=%s", run.export)
    return run


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
