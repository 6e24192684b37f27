"""The hint a training epoch logs when it waited for data: the cause and the fixes, in one line."""

from __future__ import annotations

#: an epoch whose training steps waited for data longer than this fraction logs a hint
DATA_WAIT_WARN = 0.10


def data_wait_hint(
    wait_frac: float,
    *,
    epoch: int,
    epoch_s: float,
    clips_per_s: float,
    decode_cpus: float | None = None,
    prepared: bool | None = None,
    clips_per_video: int = 1,
    threshold: float = DATA_WAIT_WARN,
) -> str | None:
    """One line naming the cause and the fixes when an epoch waited for data more than
    ``threshold`` of its time (None otherwise). ``prepared``: whether the training manifest was
    written by ``videomamba data prepare``; ``decode_cpus``: CPUs left to Ray Data decoding."""
    if not wait_frac > threshold:
        return None
    cpus = f" on ~{decode_cpus:g} CPUs" if decode_cpus else ""
    fixes = []
    if not prepared:
        fixes.append("prepare the dataset (`videomamba data prepare TRAIN_MANIFEST OUT_DIR`: 256 px short side, "
                     "a keyframe every 8 frames; about 5x the clips/s per core from 720p sources)")
    fixes.append("give decoding more CPUs or nodes (decode nodes in cluster.yaml, data.decode_resources; "
                 "scaling.cpus_per_worker takes CPUs from decoding)")
    if clips_per_video == 1:
        fixes.append("set data.clips_per_video=2 (two training clips per decoded video)")
    return (f"epoch {epoch}: training waited for data {wait_frac:.0%} of the epoch after its first batch "
            f"({wait_frac * epoch_s:.1f} of "
            f"{epoch_s:.1f} s, {clips_per_s:.1f} clips/s): Ray Data decoding{cpus} is slower than the model. "
            f"Fix: " + "; or ".join(fixes) + ".")
