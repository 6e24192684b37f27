"""``videomamba pretrain``: masked pretraining (``objective.name: masked_align``, Unmasked-Teacher
style) on Ray Train, MLflow-tracked like any run, then an export that training fine-tunes from.

The best checkpoint's student is written as a plain published-format state dict (default
``<run dir>/pretrained.pt``). The decoders live in the checkpoint's ``heads.pt`` and the teacher is
never saved, so the export has exactly the model's keys; it is checked with
``videomamba.load_checkpoint(strict=True)`` before being written. Fine-tune with
``--set model.pretrained=<export>`` (a head of another size is re-initialised by ``load_checkpoint``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from videomamba.commands.train import add_config_arguments, print_summary, resolve_config

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="masked pretraining (objective masked_align), then export the student",
                              description=__doc__)
    add_config_arguments(p)
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_NAME",
                   help="continue an interrupted run (default: the latest run of this experiment)")
    p.add_argument("--export", default=None, help="where to write the pretrained state dict (default: <run dir>/pretrained.pt)")
    p.set_defaults(func=run_command)


def export_pretrained(checkpoint: str, out: str | Path) -> Path:
    """Student weights of a training checkpoint (dir or URI) -> ``out`` (a state dict), after
    checking they load strictly into the checkpoint's architecture."""
    import torch

    import videomamba
    from videomamba.checkpoints import load_model_state
    from videomamba.models.spec import ModelSpec

    state, meta = load_model_state(checkpoint)
    spec = ModelSpec.from_meta(meta)  # the architecture the checkpoint recorded
    report = videomamba.load_checkpoint(spec.build(), state, strict=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    logger.info("exported %d tensors of %s to %s (loads strictly: %s)", len(state), checkpoint, out, report.complete)
    return out


def pretrain(cfg, *, resume: bool = False, export: str | Path | None = None):
    """Train ``cfg`` (a validated config with ``objective.name: masked_align``), then export the
    best checkpoint's student. Returns the :class:`TrainRun` with ``.export`` (the written file) set.
    Raises ConfigError for another objective, ValueError without ``export`` for a remote run."""
    from videomamba.train.config import ConfigError
    from videomamba.train.launcher import run_training

    if cfg.objective.name != "masked_align":
        raise ConfigError(f"objective.name: pretrain runs masked_align, got {cfg.objective.name!r}")
    run = run_training(cfg, resume=resume)
    if run.best_checkpoint is None:
        raise RuntimeError(f"run {run.name} produced no checkpoint")
    export = export or (f"{run.path}/pretrained.pt" if "://" not in run.path else None)
    if export is None:
        raise ValueError("--export is required when the run is stored remotely")
    run.export = export_pretrained(run.best_checkpoint, export)
    return run


def run_command(args) -> int:
    """Errors (a bad config: exit 2; a failed run: 1) are reported by the CLI's error layer."""
    run = pretrain(resolve_config(args), resume=bool(args.resume), export=args.export)
    print_summary(run)
    print(f"pretrained student: {run.export}\n  fine-tune with: --set model.pretrained={run.export}")
    return 0
