"""Manifest parsing: CSV, JSONL, Kinetics/SSv2 lists, official SSv2 JSON, classes files, errors."""

from __future__ import annotations

import json

import pytest

from videomamba.data.manifest import ManifestError, load_classes, read_manifest


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_with_header_optional_columns_and_class_names(tmp_path):
    classes = write(tmp_path, "classes.txt", "walk\nrun\n\njump\n")
    path = write(tmp_path, "m.csv", "path,label,start_sec,end_sec,caption,extra\n"
                 "a.mp4,0,,,,x\nsub/b.mp4,jump,1.5,3,a caption,y\n\n/abs/c.mp4,run,,,,\n")
    recs = read_manifest(path, classes_file=classes)
    assert [r.label for r in recs] == [0, 2, 1]
    assert recs[0].path == str(tmp_path / "a.mp4") and recs[0].start_sec is None
    assert recs[1].path == str(tmp_path / "sub" / "b.mp4")
    assert (recs[1].start_sec, recs[1].end_sec, recs[1].caption) == (1.5, 3.0, "a caption")
    assert recs[2].path == "/abs/c.mp4"
    assert [r.line for r in recs] == [2, 3, 5]


def test_jsonl(tmp_path):
    path = write(tmp_path, "m.jsonl", json.dumps({"path": "x.mp4", "label": 3}) + "\n\n"
                 + json.dumps({"path": "y.mp4", "label": "4", "start_sec": 0, "end_sec": 2.5}) + "\n")
    recs = read_manifest(path, path_prefix="s3://bucket/videos")
    assert [(r.path, r.label) for r in recs] == [("s3://bucket/videos/x.mp4", 3), ("s3://bucket/videos/y.mp4", 4)]
    assert recs[1].end_sec == 2.5 and recs[1].line == 3


@pytest.mark.parametrize("sep", [" ", ",", "\t"])
def test_kinetics_list_layouts(tmp_path, sep):
    path = write(tmp_path, "train.txt", f"abseiling/aaa.mp4{sep}0\n# comment\nzumba/bbb.mp4{sep}399\n")
    recs = read_manifest(path, path_prefix="/data/k400")
    assert [(r.path, r.label, r.line) for r in recs] == [("/data/k400/abseiling/aaa.mp4", 0, 1),
                                                         ("/data/k400/zumba/bbb.mp4", 399, 3)]


def test_ssv2_style_lists(tmp_path):
    # VideoMAE/VideoMamba SSv2 list ("<id>.webm label") and a TSM list ("<dir> num_frames label")
    assert [(r.path, r.label) for r in read_manifest(write(tmp_path, "a.csv", "74225.webm 140\n"), path_prefix="")] \
        == [("74225.webm", 140)]
    assert [(r.path, r.label) for r in read_manifest(write(tmp_path, "b.txt", "1234 47 12\n"), path_prefix="p")] \
        == [("p/1234", 12)]


def test_official_ssv2_json_with_labels_json(tmp_path):
    labels = write(tmp_path, "labels.json", json.dumps({"Holding something": "0", "Pushing something left": "1"}))
    anno = write(tmp_path, "train.json", json.dumps([
        {"id": "78687", "template": "Pushing [something] left", "placeholders": ["a cup"]},
        {"id": "42326", "template": "Holding [something]"},
    ]))
    assert load_classes(labels) == ["Holding something", "Pushing something left"]
    recs = read_manifest(anno, classes_file=labels, path_prefix="/ssv2")
    assert [(r.path, r.label) for r in recs] == [("/ssv2/78687.webm", 1), ("/ssv2/42326.webm", 0)]


@pytest.mark.parametrize(
    "name, text, line, match",
    [
        ("m.csv", "path,label\na.mp4,0\nb.mp4\n", 3, "label"),
        ("m.csv", "path,label\na.mp4,0\nb.mp4,1,2\n", 3, "fields"),
        ("m.csv", "path,label\na.mp4,nope\n", 2, "unknown label"),
        ("m.csv", "path,label,start_sec,end_sec\na.mp4,0,3,2\n", 2, "end_sec"),
        ("m.csv", "path,label,start_sec\na.mp4,0,abc\n", 2, "start_sec"),
        ("m.csv", "path,label\n,0\n", 2, "missing path"),
        ("m.csv", "path,label\na.mp4,-1\n", 2, "out of range"),
        ("m.csv", "path,label\na.mp4,7\n", 2, "out of range"),
        ("m.jsonl", '{"path": "a.mp4", "label": 0}\n{"path": "b.mp4", "label": 1\n', 2, "invalid JSON"),
        ("m.jsonl", '{"path": "a.mp4", "label": 0}\n[1, 2]\n', 2, "JSON object"),
        ("m.txt", "a.mp4 0\nb.mp4 1\n\nc.mp4 2 3 4\n", 4, "expected 'path label'"),
        ("m.txt", "a.mp4 0\nb.mp4 walk\n", 2, "classes file"),
    ],
)
def test_malformed_rows_report_line(tmp_path, name, text, line, match):
    classes = write(tmp_path, "classes.txt", "a\nb\nc\n") if name == "m.csv" else None
    with pytest.raises(ManifestError, match=match) as info:
        read_manifest(write(tmp_path, name, text), classes_file=classes)
    assert info.value.line == line
    assert f"m.{name.split('.')[1]}:{line}:" in str(info.value)


def test_json_array_of_records(tmp_path):
    path = write(tmp_path, "m.json", json.dumps([{"path": "a.mp4", "label": 1}, {"path": "b.mp4", "label": 0}]))
    assert [(r.path, r.label, r.line) for r in read_manifest(path, path_prefix="")] == [("a.mp4", 1, 1), ("b.mp4", 0, 2)]


def test_empty_manifest_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(write(tmp_path, "m.csv", "path,label\n"))


def test_manifest_through_file_uri(tmp_path):
    path = write(tmp_path, "m.csv", "path,label\nv.mp4,1\n")
    recs = read_manifest(f"file://{path}")
    assert recs[0].path == f"file://{tmp_path}/v.mp4"
