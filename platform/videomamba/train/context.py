"""``RunContext``: what the driver resolved for a run and every training worker needs besides the
config (the launcher fills it in; ``train_loop_per_worker`` reads it, never the cluster)."""

from __future__ import annotations

from dataclasses import dataclass

from videomamba.models.spec import ModelSpec


@dataclass(frozen=True)
class RunContext:
    """Resolved once on the driver, handed to every worker (``train_loop_config["context"]``)."""

    model: ModelSpec  # the architecture every worker builds (and checkpoints record)
    class_names: tuple[str, ...]
    train_size: int  # training clips per epoch (videos x clips_per_video)
    checkpoint_metric: str  # what ranks checkpoints (train.checkpoint_metric, or train/loss_epoch without val)
    checkpoint_mode: str  # "max" | "min"
    data_scope: str  # skip-ledger scope of this run's datasets (the run name)
    fail_marker: str  # debug.fail_at_epoch: file that marks the injected failure as done
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None  # None: the workers log nothing to MLflow
    val_split: str | None = None  # the validated split (None: no validation)
    val_size: int = 0  # videos in the validated split
    val_captions: tuple[tuple[str, ...], ...] | None = None  # per val manifest row (video-text runs)
    progress: bool = False  # progress bars on rank 0
    quiet: bool = False  # silence the workers' Ray/library logging
    data_prepared: bool = False  # the train manifest comes from `videomamba data prepare`
    decode_cpus: float | None = None  # CPUs left for decoding next to the workers (data-wait hints)

    @property
    def has_val(self) -> bool:
        return self.val_split is not None
