"""Market-1501 and DukeMTMC-reID readers on tiny trees shaped like the published archives."""

from __future__ import annotations

import pytest
from reader_trees import MARKET, make_tree, rows, write_images

from diffreid.data import load_dataset
from diffreid.data.market1501 import parse_market_name
from diffreid.errors import DatasetError

MARKET_ROWS = [
    ("bounding_box_test/0000_c1s1_000151_01.jpg", 0, 1, "gallery"),
    ("bounding_box_test/0002_c6s1_000976_02.jpg", 2, 6, "gallery"),
    ("bounding_box_test/0007_c3s3_077000_01.jpg", 7, 3, "gallery"),
    ("bounding_box_train/0002_c1s1_000451_03.jpg", 2, 1, "train"),
    ("bounding_box_train/0002_c2s1_000301_01.jpg", 2, 2, "train"),
    ("bounding_box_train/0007_c3s3_077419_03.jpg", 7, 3, "train"),
    ("query/0002_c3s1_000551_01.jpg", 2, 3, "query"),
    ("query/0007_c1s1_000001_00.jpg", 7, 1, "query"),
]
DUKE = {
    "bounding_box_train": ["0005_c2_f0046985.jpg", "0005_c5_f0051341.jpg"],
    "query": ["0019_c1_f0056798.jpg"],
    "bounding_box_test": ["0019_c8_f0082334.jpg", "0000_c6_f0048103.jpg", "-1_c3_f0000001.jpg"],
}
DUKE_ROWS = [
    ("bounding_box_test/0000_c6_f0048103.jpg", 0, 6, "gallery"),
    ("bounding_box_test/0019_c8_f0082334.jpg", 19, 8, "gallery"),
    ("bounding_box_train/0005_c2_f0046985.jpg", 5, 2, "train"),
    ("bounding_box_train/0005_c5_f0051341.jpg", 5, 5, "train"),
    ("query/0019_c1_f0056798.jpg", 19, 1, "query"),
]


def test_parse_market_name():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_market_name("-1_c1s1_000401_03.jpg") == (-1, 1)
    assert parse_market_name("0000_c6s2_000151_01.jpg") == (0, 6)
    assert parse_market_name("0005_c2_f0046985.jpg") == (5, 2)
    assert parse_market_name("12345_c7s1_000001_00.png") == (12345, 7)  # Diff-Person: many ids
    for bad in ("foo.jpg", "0002_c1.jpg", "0002_x1s1_000451_03.jpg", "0002_c1s1_000451_03.txt", "-2_c1s1_0_0.jpg"):
        assert parse_market_name(bad) is None, bad


@pytest.mark.parametrize("fmt", ["market1501", "market"])
def test_market_records_exact(tmp_path, fmt):
    base = make_tree(tmp_path, MARKET)
    (base / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")  # shipped in the archive; ignored
    dataset = load_dataset(f"{fmt}:{base}")
    assert rows(dataset, base) == MARKET_ROWS
    assert dataset.problems == []
    assert dataset.name == "market1501" and dataset.root == base
    assert sorted({r.pid for r in dataset.relabeled_train()}) == [0, 1]


def test_market_parent_folder(tmp_path):
    base = make_tree(tmp_path / "Market-1501-v15.09.15", MARKET)
    dataset = load_dataset(f"market1501:{tmp_path}")
    assert dataset.root == base
    assert rows(dataset, base) == MARKET_ROWS


@pytest.mark.parametrize("fmt", ["dukemtmc", "dukemtmcreid"])
def test_duke_records_exact(tmp_path, fmt):
    base = make_tree(tmp_path / "DukeMTMC-reID", DUKE)
    dataset = load_dataset(f"{fmt}:{tmp_path}")
    assert rows(dataset, base) == DUKE_ROWS
    assert dataset.problems == []
    assert rows(load_dataset(f"{fmt}:{base}"), base) == DUKE_ROWS


def test_market_missing_folder_and_bad_name(tmp_path):
    layout = {k: v for k, v in MARKET.items() if k != "bounding_box_test"}
    base = make_tree(tmp_path, layout)
    write_images(base / "query", ["0002_c3_garbage.jpg"])
    dataset = load_dataset(f"market1501:{base}")
    assert [(p.path, p.fatal) for p in dataset.problems] == [
        (base / "query" / "0002_c3_garbage.jpg", False),
        (base / "bounding_box_test", True),
    ]
    fatal = next(p for p in dataset.problems if p.fatal)
    assert "bounding_box_test/" in fatal.message and "restore" in fatal.message
    assert rows(dataset, base) == [r for r in MARKET_ROWS if r[3] != "gallery"]
    with pytest.raises(DatasetError, match="gallery"):
        dataset.require("query", "gallery")


def test_market_nothing_readable(tmp_path):
    with pytest.raises(DatasetError, match="bounding_box_train/.*point market1501: at the folder"):
        load_dataset(f"market1501:{tmp_path}")
