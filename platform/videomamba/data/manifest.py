"""Manifests: which videos, with which label (and optional time window / caption).

Accepted layouts (``fmt="auto"`` picks by extension and first line):

- CSV with a header: ``path,label[,start_sec,end_sec,caption]`` (extra columns ignored); several
  captions of one video go in one ``caption`` cell separated by ``|``;
- JSONL: one object a line with the same keys (``caption``: a string or a list of strings);
- list (Kinetics / SSv2 lists of VideoMAE, UniFormer, VideoMamba): ``path label`` separated by
  whitespace or a comma, or ``path num_frames label`` (TSN/TSM lists; the middle column is ignored);
- ``ssv2_json`` (any ``.json``): the official Something-Something-v2 JSON array (``id`` +
  ``template``; the path is ``<id>.webm`` and the class name the template without brackets, via
  ``labels.json``), or a JSON array of ``{path, label, ...}`` records.

A label is an integer or a class name looked up in the classes file; where labels are not used
(``require_labels=False``: text-to-video search over unlabelled footage) the label column may be
missing (a path-only CSV, a plain list of videos) and every label is :data:`UNLABELLED`.
Relative paths are joined to
``path_prefix`` (default: the manifest's directory). A malformed row raises ``ManifestError``
naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from videomamba import storage

logger = logging.getLogger(__name__)

#: separates several captions of one video in a CSV ``caption`` cell
CAPTION_SEP = "|"
#: the label of every record read with ``require_labels=False``
UNLABELLED = -1
_COLUMN_SEP = "\x1f"  # joins a row's captions in the pipeline's string column (never in a caption)


class ManifestError(ValueError):
    """A malformed manifest row; ``.line`` is its 1-based line (entry, for JSON arrays)."""

    def __init__(self, source: str, line: int, message: str):
        super().__init__(f"{source}:{line}: {message}")
        self.source, self.line = source, line


@dataclass(frozen=True)
class VideoRecord:
    path: str
    label: int
    start_sec: float | None = None
    end_sec: float | None = None
    captions: tuple[str, ...] = ()
    line: int = 0

    @property
    def caption(self) -> str | None:
        """The first caption (None without any)."""
        return self.captions[0] if self.captions else None


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def read_text(path: str) -> str:
    """A manifest's or classes file's text: UTF-8, or UTF-8/16/32 with a byte-order mark (what
    spreadsheet tools write as "CSV UTF-8" / "Unicode text"). Anything else raises
    ``ManifestError`` naming the file, the line and the fix (no guessing of legacy encodings:
    a wrong guess would change class names silently)."""
    data = storage.read_bytes(path)
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as err:
                raise _encoding_error(path, data, err, encoding) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _encoding_error(path, data, err, "utf-8") from None


def _encoding_error(path: str, data: bytes, err: UnicodeDecodeError, encoding: str) -> ManifestError:
    line = data[: err.start].count(b"\n") + 1
    return ManifestError(
        path, line,
        f"not valid {encoding.upper()} (byte 0x{data[err.start]:02x}); save the file as UTF-8 "
        f"(spreadsheets: 'CSV UTF-8'; or iconv -f cp1252 -t utf-8 {os.path.basename(path)} > fixed.csv, "
        "with the encoding it was written in)",
    )


@dataclass(frozen=True)
class ClassIndex:
    """Class names of a classes file, ordered by index, and the integer id of the first one.

    ``first_id`` is 1 for numbered files that count from 1 (UCF101/HMDB51 ``classInd.txt``:
    ``1 ApplyEyeMakeup``); integer labels in manifests read with this file use the same ids,
    so label ``first_id + k`` is ``names[k]`` (internally label ``k``).
    """

    names: list[str]
    first_id: int = 0


_NUMBERED = re.compile(r"^\s*(\d+)\s*[\s,;:]\s*(\S.*?)\s*$")


def read_classes(path: str) -> ClassIndex:
    """A classes file: text (one name a line, or ``N name`` lines numbered from 0 or 1), JSON list,
    or JSON ``{name: id}`` (ids from 0 or 1). Raises ``ManifestError`` (a ``ValueError``) naming
    the file for numbered files whose numbers repeat or have gaps."""
    text = read_text(path)
    if path.endswith(".json"):
        obj = json.loads(text)
        if isinstance(obj, dict):
            by_id = {int(v): str(k) for k, v in obj.items()}
            return _numbered(path, by_id)
        return ClassIndex([str(name) for name in obj])
    numbered = [(no, line.strip()) for no, line in enumerate(text.splitlines(), 1) if line.strip()]
    matches = [(no, _NUMBERED.match(line)) for no, line in numbered]
    if numbered and all(m for _, m in matches):
        by_id: dict[int, str] = {}
        for no, m in matches:
            if int(m.group(1)) in by_id:
                raise ManifestError(path, no, f"class id {m.group(1)} appears twice")
            by_id[int(m.group(1))] = m.group(2)
        return _numbered(path, by_id)
    return ClassIndex([line for _, line in numbered])


def _numbered(path: str, by_id: dict[int, str]) -> ClassIndex:
    first = min(by_id, default=0)
    if first not in (0, 1) or sorted(by_id) != list(range(first, first + len(by_id))):
        raise ManifestError(
            path, 1, f"numbered classes must be numbered 0..{len(by_id) - 1} or 1..{len(by_id)} without gaps, "
            f"got {', '.join(map(str, sorted(by_id)[:6]))}{', ...' if len(by_id) > 6 else ''}"
        )
    return ClassIndex([by_id[i] for i in range(first, first + len(by_id))], first)


def load_classes(path: str) -> list[str]:
    """Class names ordered by index (see :func:`read_classes` for the accepted layouts)."""
    return read_classes(path).names


def _detect_format(path: str, text: str, require_labels: bool = True) -> str:
    if path.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if path.endswith(".json"):
        return "ssv2_json"
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    header = [h.strip().lower() for h in first.split(",")]
    return "csv" if "path" in header and ("label" in header or not require_labels) else "list"


class _Parser:
    """Turns raw fields into ``VideoRecord``s, raising ``ManifestError`` with the line."""

    def __init__(self, source: str, classes: ClassIndex | None, prefix: str, classes_file: str | None = None,
                 require_labels: bool = True):
        self.source, self.prefix, self.classes_file = source, prefix, classes_file
        self.require_labels = require_labels
        self.classes = classes.names if classes is not None else None
        self.first_id = classes.first_id if classes is not None else 0
        self.class_index = {name: i for i, name in enumerate(self.classes or [])}

    def fail(self, line: int, message: str):
        raise ManifestError(self.source, line, message)

    def label(self, value, line: int) -> int:
        if not self.require_labels:
            return UNLABELLED
        if isinstance(value, bool) or value is None or value == "":
            self.fail(line, f"missing or invalid label {value!r}")
        if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            label = int(value) - self.first_id  # 1-based ids of a numbered classes file (UCF101)
        elif isinstance(value, str) and value.strip() in self.class_index:
            label = self.class_index[value.strip()]
        elif isinstance(value, str) and self.classes is None:
            self.fail(line, f"label {value!r} is a class name but no classes file was given")
        else:
            self.fail(line, f"unknown label {value!r}")
        if label < 0 or (self.classes is not None and label >= len(self.classes)):
            if self.classes is None:
                self.fail(line, f"label {value!r} out of range (labels are 0-based class indices)")
            first = self.first_id
            self.fail(line, f"label {value!r} out of range: {self.classes_file} numbers its "
                            f"{len(self.classes)} classes {first}..{first + len(self.classes) - 1}"
                            + (" (for 1-based labels, e.g. UCF101/HMDB51 lists, give the numbered classInd.txt "
                               "as classes file)" if first == 0 and label == len(self.classes) else ""))
        return label

    def seconds(self, value, name: str, line: int) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            out = float(value)
        except (TypeError, ValueError):
            self.fail(line, f"{name} is not a number: {value!r}")
        if not math.isfinite(out) or out < 0:
            self.fail(line, f"{name} must be a finite number >= 0, got {value!r}")
        return out

    def record(self, fields: dict, line: int) -> VideoRecord:
        path = fields.get("path")
        if not isinstance(path, str) or not path.strip():
            self.fail(line, "missing path")
        start = self.seconds(fields.get("start_sec"), "start_sec", line)
        end = self.seconds(fields.get("end_sec"), "end_sec", line)
        if start is not None and end is not None and end <= start:
            self.fail(line, f"end_sec ({end}) must be > start_sec ({start})")
        return VideoRecord(
            path=storage.join_prefix(self.prefix, path.strip()),
            label=self.label(fields.get("label"), line),
            start_sec=start,
            end_sec=end,
            captions=self.captions(fields.get("caption"), line),
            line=line,
        )

    def captions(self, value, line: int) -> tuple[str, ...]:
        """A caption cell: a string (``|``-separated captions) or a list of strings (JSON)."""
        if value is None:
            return ()
        if isinstance(value, str):
            parts = value.split(CAPTION_SEP)
        elif isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                self.fail(line, f"caption must be a string or a list of strings, got {value!r}")
            parts = value
        else:
            parts = [str(value)]
        return tuple(p.replace(_COLUMN_SEP, " ").strip() for p in parts if p.strip())

    def csv_rows(self, text: str):
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [(h or "").strip().lower() for h in reader.fieldnames or []]
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            if None in row:  # more fields than the header
                self.fail(reader.line_num, f"{len(row) - 1 + len(row[None])} fields, header has {len(row) - 1}")
            yield self.record(row, reader.line_num)

    def jsonl_rows(self, text: str):
        for line, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                self.fail(line, f"invalid JSON ({err.msg})")
            if not isinstance(obj, dict):
                self.fail(line, "expected a JSON object")
            yield self.record(obj, line)

    def list_rows(self, text: str):
        for line, raw in enumerate(text.splitlines(), 1):
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            parts = [p.strip() for p in raw.split(",")] if "," in raw else raw.split()
            if len(parts) == 3 and parts[1].isdigit():  # TSN/TSM: path num_frames label
                parts = [parts[0], parts[2]]
            if len(parts) == 1 and self.classes is not None:  # UCF101 testlist: the class is the directory
                folder = parts[0].replace("\\", "/").split("/")[0]
                if folder in self.class_index and "/" in parts[0].replace("\\", "/"):
                    parts = [parts[0], folder]
            if len(parts) == 1 and not self.require_labels:
                parts.append(None)
            if len(parts) != 2:
                self.fail(line, f"expected 'path label', got {len(parts)} fields: {raw!r}")
            yield self.record({"path": parts[0], "label": parts[1]}, line)

    def ssv2_rows(self, text: str):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as err:
            self.fail(err.lineno, f"invalid JSON ({err.msg})")
        if not isinstance(entries, list):
            self.fail(1, "expected a JSON array of {id, template}")
        for entry_no, obj in enumerate(entries, 1):
            if isinstance(obj, dict) and "path" in obj:  # a JSON array of our own records
                yield self.record(obj, entry_no)
                continue
            if not isinstance(obj, dict) or "id" not in obj:
                self.fail(entry_no, "entry without 'id' (or 'path')")
            name = obj.get("template", obj.get("label"))
            name = name.replace("[", "").replace("]", "") if isinstance(name, str) else name
            yield self.record({"path": f"{obj['id']}.webm", "label": name}, entry_no)


def read_manifest(
    path: str,
    *,
    classes_file: str | None = None,
    path_prefix: str | None = None,
    fmt: str = "auto",
    require_labels: bool = True,
    classes: ClassIndex | None = None,
) -> list[VideoRecord]:
    """Parse a manifest (local path or URI) into records with resolved paths and integer labels
    (``require_labels=False``: labels ignored, may be absent; every label :data:`UNLABELLED`).
    ``classes``: ``classes_file`` already read (:func:`read_classes`), so it is not read again."""
    text = read_text(path)
    fmt = _detect_format(path, text, require_labels) if fmt == "auto" else fmt
    if not require_labels:
        classes = None
    elif classes is None and classes_file:
        classes = read_classes(classes_file)
    parser = _Parser(path, classes, storage.dirname(path) if path_prefix is None else path_prefix, classes_file,
                     require_labels)
    rows = {"csv": parser.csv_rows, "jsonl": parser.jsonl_rows, "list": parser.list_rows, "ssv2_json": parser.ssv2_rows}
    if fmt not in rows:
        raise ValueError(f"unknown manifest format {fmt!r}")
    records = list(rows[fmt](text))
    if not records:
        raise ManifestError(path, 1, "manifest has no rows")
    if classes is not None and classes.first_id == 0 and fmt == "list" and len(records) > 1:
        labels = {r.label for r in records}
        if 0 not in labels and max(labels) == len(classes.names) - 1:
            logger.warning("%s: no row has label 0 but some have %d, the last class of %s: if the list's labels are "
                           "1-based (UCF101/HMDB51), give the numbered classInd.txt as classes file", path,
                           max(labels), classes_file)
    return records


def to_columns(records: list[VideoRecord], *, captions: bool = False) -> dict[str, np.ndarray]:
    """Columnar form for the pipeline: path (object), label (int64), start/end (float64, NaN = none)
    and, with ``captions``, ``captions`` (object: a row's captions joined, see :func:`split_captions`)."""
    nan = float("nan")
    columns = {
        "path": np.array([r.path for r in records], dtype=object),
        "label": np.array([r.label for r in records], dtype=np.int64),
        "start_sec": np.array([nan if r.start_sec is None else r.start_sec for r in records], dtype=np.float64),
        "end_sec": np.array([nan if r.end_sec is None else r.end_sec for r in records], dtype=np.float64),
    }
    if captions:
        columns["captions"] = np.array([_COLUMN_SEP.join(r.captions) for r in records], dtype=object)
    return columns


def split_captions(joined: str) -> list[str]:
    """The captions of one row of the ``captions`` column of :func:`to_columns`."""
    return joined.split(_COLUMN_SEP) if joined else []


def write_manifest(path: str, records: list[VideoRecord], *, relative_to: str | None = None) -> None:
    """Write records as CSV (``path,label,start_sec,end_sec,caption``); paths relative to a dir if given."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "start_sec", "end_sec", "caption"])
        for r in records:
            p = os.path.relpath(r.path, relative_to) if relative_to else r.path
            writer.writerow([p, r.label, "" if r.start_sec is None else r.start_sec,
                             "" if r.end_sec is None else r.end_sec, CAPTION_SEP.join(r.captions)])
