"""Local paths and pyarrow filesystem URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``...) in one
place: read and write bytes, text and JSON, test existence, list child directories, pick the latest.

Every function takes a local path or a URI. ``file://`` URIs are local paths; other schemes go to
the pyarrow filesystem for that scheme and host (created once per process: an S3 filesystem is
expensive to create). Writers create missing parent directories.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FILESYSTEMS: dict[str, tuple] = {}


class UnsupportedURIError(ValueError):
    """A URI whose scheme no pyarrow filesystem reads (``https://``, ``ftp://``...)."""


def is_uri(path: str) -> bool:
    """``scheme://...`` (including ``file://``)."""
    return "://" in str(path)


def is_remote(path: str) -> bool:
    """A URI other than ``file://`` (not reachable with ``open``)."""
    return is_uri(path) and not str(path).startswith("file://")


def normalize(path: str) -> str:
    """A remote URI as given; a local path or ``file://`` URI as an absolute POSIX path (``~`` expanded)."""
    path = str(path)
    if is_remote(path):
        return path
    return Path(path.removeprefix("file://")).expanduser().resolve().as_posix()


def join(base: str, *parts: str) -> str:
    """``base/part/...`` with ``/`` (URI-safe; a trailing ``/`` of ``base`` is dropped)."""
    return "/".join([str(base).rstrip("/"), *parts])


def join_prefix(prefix: str, path: str) -> str:
    """``path`` if it is absolute or a URI, else ``prefix/path`` (URI-aware): manifest rows."""
    if is_uri(path) or os.path.isabs(path) or not prefix:
        return path
    if is_uri(prefix):
        return posixpath.join(prefix, path)
    return os.path.join(prefix, path)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_uri(path) else os.path.dirname(os.path.abspath(path))


def resolve(path: str):
    """``(pyarrow filesystem, path in it)``. Raises ``UnsupportedURIError`` for schemes pyarrow has no
    filesystem for."""
    import pyarrow
    from pyarrow import fs

    path = str(path)
    if not is_remote(path):
        return fs.LocalFileSystem(), normalize(path)
    scheme, rest = path.split("://", 1)
    host = rest.split("/", 1)[0]
    key = f"{scheme}://{host}"
    if key not in _FILESYSTEMS:
        try:
            filesystem, fs_path = fs.FileSystem.from_uri(path)
        except pyarrow.ArrowInvalid as err:
            raise UnsupportedURIError(
                f"unsupported URI scheme {scheme + '://'!r} ({err}); files are read from local paths or "
                "pyarrow filesystems (s3://, gs://, hdfs://, file://): download the file first"
            ) from None
        # Some filesystems keep the host in the path (s3: "bucket/key"), others drop it (hdfs).
        _FILESYSTEMS[key] = (filesystem, fs_path.startswith(host) and bool(host))
    filesystem, keep_host = _FILESYSTEMS[key]
    return filesystem, rest if keep_host else rest[len(host):]


def read_bytes(path: str) -> bytes:
    """The whole file. Raises ``FileNotFoundError`` if it does not exist."""
    if not is_remote(path):
        with open(str(path).removeprefix("file://"), "rb") as f:
            return f.read()
    filesystem, fs_path = resolve(path)
    with filesystem.open_input_file(fs_path) as f:
        return f.readall()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8-sig")


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path).decode())


def write_bytes(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` (parents created); returns ``path``."""
    filesystem, fs_path = resolve(path)
    filesystem.create_dir(posixpath.dirname(fs_path), recursive=True)
    with filesystem.open_output_stream(fs_path) as f:
        f.write(data)
    return str(path)


def write_json(path: str, obj: Any) -> str:
    return write_bytes(path, json.dumps(obj, indent=2, default=str).encode())


def exists(path: str) -> bool:
    from pyarrow import fs

    filesystem, fs_path = resolve(path)
    return filesystem.get_file_info(fs_path).type != fs.FileType.NotFound


def is_file(path: str) -> bool:
    from pyarrow import fs

    filesystem, fs_path = resolve(path)
    return filesystem.get_file_info(fs_path).type == fs.FileType.File


def child_dirs(path: str) -> list[str]:
    """Names of the directories directly under ``path``, sorted (none when it does not exist or
    cannot be listed)."""
    from pyarrow import fs

    filesystem, fs_path = resolve(path)
    try:
        entries = filesystem.get_file_info(fs.FileSelector(fs_path, allow_not_found=True))
    except OSError:
        return []
    return sorted(e.base_name for e in entries if e.type == fs.FileType.Directory)


def read_json_or_none(path: str) -> Any:
    """The JSON at ``path``, or None when there is no such file."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except OSError:
        if not exists(path):
            return None
        raise


def latest_child(path: str, info_file: str, match: Callable[[str, dict], bool] = lambda name, info: True) -> str | None:
    """The directory under ``path`` whose ``info_file`` (JSON with a ``created`` time) is the most
    recent among those ``match(name, info)`` accepts; None when there is none."""
    found = []
    for name in child_dirs(path):
        info = read_json_or_none(join(path, name, info_file))
        if isinstance(info, dict) and info and match(name, info):
            found.append((info.get("created", 0), name))
    return max(found)[1] if found else None
