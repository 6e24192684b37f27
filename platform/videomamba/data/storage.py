"""Local paths and pyarrow filesystem URIs (``s3://``, ``gs://``, ``file://``...): read bytes, join."""

from __future__ import annotations

import os
import posixpath


def is_uri(path: str) -> bool:
    return "://" in path


def join(prefix: str, path: str) -> str:
    """``path`` if it is absolute or a URI, else ``prefix/path`` (URI-aware)."""
    if is_uri(path) or os.path.isabs(path) or not prefix:
        return path
    if is_uri(prefix):
        return posixpath.join(prefix, path)
    return os.path.join(prefix, path)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_uri(path) else os.path.dirname(os.path.abspath(path))


_FILESYSTEMS: dict[str, tuple] = {}


class UnsupportedURIError(ValueError):
    """A URI whose scheme no pyarrow filesystem reads (``https://``, ``ftp://``...)."""


def _resolve(uri: str):
    """``scheme://host/key`` -> (pyarrow filesystem, path in it), one filesystem per scheme+host.
    Raises ``UnsupportedURIError`` for schemes pyarrow has no filesystem for."""
    import pyarrow
    from pyarrow import fs

    scheme, rest = uri.split("://", 1)
    host = rest.split("/", 1)[0]
    key = f"{scheme}://{host}"
    if key not in _FILESYSTEMS:
        try:
            filesystem, fs_path = fs.FileSystem.from_uri(uri)
        except pyarrow.ArrowInvalid as err:
            raise UnsupportedURIError(
                f"unsupported URI scheme {scheme + '://'!r} ({err}); videos are read from local paths or "
                "pyarrow filesystems (s3://, gs://, hdfs://, file://): download the file first"
            ) from None
        # Some filesystems keep the host in the path (s3: "bucket/key"), others drop it (hdfs).
        _FILESYSTEMS[key] = (filesystem, fs_path.startswith(host) and bool(host))
    filesystem, keep_host = _FILESYSTEMS[key]
    return filesystem, rest if keep_host else rest[len(host):]


def read_bytes(path: str) -> bytes:
    """Whole file as bytes. Raises ``FileNotFoundError`` if it does not exist."""
    if not is_uri(path):
        with open(path, "rb") as f:
            return f.read()
    filesystem, fs_path = _resolve(path)
    with filesystem.open_input_file(fs_path) as f:
        return f.readall()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8-sig")
