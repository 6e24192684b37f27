"""Argument checks shared by the sub-commands: each turns a mistake into a
:class:`videomamba.errors.UsageError` naming the option, before Ray or a model starts."""

from __future__ import annotations

import sys

from videomamba.errors import UsageError


def checkpoint_arg(value: str, option: str = "--checkpoint") -> str:
    """The checkpoint directory ``value`` names (a checkpoint dir, its ``model.pt``, or a run dir:
    its best checkpoint); says on stderr how it was resolved."""
    from videomamba.checkpoints import resolve_checkpoint

    resolved = resolve_checkpoint(value, option=option)
    if resolved.note:
        print(f"{option}: {resolved.note}", file=sys.stderr)
    return resolved.path


def manifest_arg(path: str, option: str = "manifest", *, labels: bool = True, **kwargs):
    """Read the manifest ``path`` (records), or raise UsageError naming ``option`` and the problem.
    ``kwargs`` go to ``read_manifest`` (classes_file, path_prefix, fmt, ...)."""
    import os

    from videomamba import storage
    from videomamba.data.manifest import ManifestError, read_manifest

    classes = kwargs.get("classes_file")
    if labels and classes and not storage.is_uri(classes) and not os.path.isfile(classes):
        raise UsageError(f"classes file {classes}: not found")
    try:
        return read_manifest(path, **kwargs) if labels else read_manifest(path, require_labels=False, **kwargs)
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such manifest file") from None
    except IsADirectoryError:
        raise UsageError(f"{option} {path}: is a directory; pass a CSV/JSONL/list manifest file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not a text file; pass a CSV/JSONL/list manifest") from None
    except (ManifestError, ValueError) as err:  # a bad row (file:line) or classes file
        raise UsageError(f"{option}: {err}") from None


def device_arg(device: str | None) -> str | None:
    """``--device``: ``cuda[:N]`` only where torch sees that GPU; anything torch cannot parse refused."""
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device}: not a device", "use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {device}: no CUDA GPU is visible to torch here "
                             f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})",
                             "use --device cpu or leave --device out")
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device}: only {count} CUDA GPU(s) here", f"use cuda:0 .. cuda:{count - 1}")
    elif dev.type not in ("cpu", "mps"):
        raise UsageError(f"--device {device}: unsupported device type {dev.type!r}", "use cpu, cuda or cuda:N")
    return device
