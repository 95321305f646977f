"""The generic `list:` format: query.csv, gallery.csv and optional train.csv with `path,pid,camid`."""

from __future__ import annotations

import pytest
from reader_trees import rows, write_image

from diffreid.data import load_dataset
from diffreid.data.listfile import parse_csv_line
from diffreid.errors import DatasetError

CSV = {
    "train.csv": ["images/train/a.jpg,4,1", "images/train/b.png,4,2", "images/train/c.jpg,9,1"],
    "query.csv": ['"images/test/q, 1.jpg",12,3', "images/test/junk.jpg,-1,3"],
    "gallery.csv": ["images/test/g1.jpg,12,1", "images/test/g2.jpg,0,2"],
}
ROWS = [
    ("images/test/g1.jpg", 12, 1, "gallery"),
    ("images/test/g2.jpg", 0, 2, "gallery"),
    ("images/test/q, 1.jpg", 12, 3, "query"),
    ("images/train/a.jpg", 4, 1, "train"),
    ("images/train/b.png", 4, 2, "train"),
    ("images/train/c.jpg", 9, 1, "train"),
]


def make_list(root, csv=CSV, header="path,pid,camid"):
    for seed, (name, lines) in enumerate(csv.items()):
        for line in lines:
            write_image(root / parse_csv_line(line)[0], seed)
        (root / name).write_text("".join(f"{line}\n" for line in [header, *lines]))
    return root


def test_list_records_exact(tmp_path):
    dataset = load_dataset(f"list:{make_list(tmp_path)}")
    assert rows(dataset, tmp_path) == ROWS
    assert dataset.problems == []


def test_list_train_optional(tmp_path):
    make_list(tmp_path, {k: v for k, v in CSV.items() if k != "train.csv"})
    dataset = load_dataset(f"list:{tmp_path}")
    assert rows(dataset, tmp_path) == [r for r in ROWS if r[3] != "train"]
    assert dataset.problems == []


def test_list_bad_header_is_fatal(tmp_path):
    make_list(tmp_path)
    (tmp_path / "gallery.csv").write_text("file,id,cam\nimages/test/g1.jpg,12,1\n")
    dataset = load_dataset(f"list:{tmp_path}")
    [problem] = dataset.problems
    assert problem.fatal and problem.path == tmp_path / "gallery.csv"
    assert problem.message == "line 1: header is 'file,id,cam', expected 'path,pid,camid'; fix the header line"
    assert dataset.gallery == []


def test_list_bad_lines(tmp_path):
    make_list(tmp_path)
    gallery_csv = tmp_path / "gallery.csv"
    with gallery_csv.open("a") as handle:  # lines 4-8
        handle.write("images/test/g3.jpg,x,1\nimages/test/g4.jpg,3\n../escape.jpg,1,1\n\nimages/test/g5.jpg,5,cam2\n")
    dataset = load_dataset(f"list:{tmp_path}")
    assert [(p.message, p.path, p.fatal) for p in dataset.problems if p.path] == [
        ("line 4: pid 'x' is not an integer; line skipped", gallery_csv, False),
        ("line 5: expected 3 fields path,pid,camid, found 2; line skipped", gallery_csv, False),
        ("line 8: camid 'cam2' is not an integer; line skipped", gallery_csv, False),
    ]
    [escape] = [p for p in dataset.problems if p.path is None]
    assert escape.fatal and f"{gallery_csv}:6: path '../escape.jpg' points outside" in escape.message
    assert rows(dataset, tmp_path) == ROWS


def test_list_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="no query.csv, gallery.csv or train.csv"):
        load_dataset(f"list:{tmp_path}")
    make_list(tmp_path, {"query.csv": CSV["query.csv"]})
    dataset = load_dataset(f"list:{tmp_path}")
    assert [(p.path, p.fatal) for p in dataset.problems] == [(tmp_path / "gallery.csv", True)]
    assert "gallery list gallery.csv missing" in dataset.problems[0].message
