"""CUHK01: PPPPIII.png, images 001-002 camera A (query), 003-004 camera B (gallery)."""

from __future__ import annotations

import pytest
from reader_trees import rows, write_images

from diffreid.data import load_dataset
from diffreid.errors import DatasetError


def test_cuhk01_records_exact(tmp_path):
    write_images(tmp_path / "campus", ["0001001.png", "0001002.png", "0001003.png", "0001004.png",
                                       "0971001.png", "0971004.png", "person.png"])
    (tmp_path / "campus" / "notes.txt").write_text("not an image; not a .png, so not read")
    dataset = load_dataset(f"cuhk01:{tmp_path}")
    assert rows(dataset, tmp_path) == [
        ("campus/0001001.png", 1, 1, "query"),
        ("campus/0001002.png", 1, 1, "query"),
        ("campus/0001003.png", 1, 2, "gallery"),
        ("campus/0001004.png", 1, 2, "gallery"),
        ("campus/0971001.png", 971, 1, "query"),
        ("campus/0971004.png", 971, 2, "gallery"),
    ]
    assert [(p.path.name, p.fatal) for p in dataset.problems] == [("person.png", False)]
    assert dataset.train == []
    # the folder itself is accepted too
    assert rows(load_dataset(f"cuhk01:{tmp_path / 'campus'}"), tmp_path) == rows(dataset, tmp_path)


def test_cuhk01_empty(tmp_path):
    with pytest.raises(DatasetError, match="no CUHK01 images"):
        load_dataset(f"cuhk01:{tmp_path}")


@pytest.mark.shared
def test_cuhk01_real(shared_data):
    dataset = load_dataset(f"cuhk01:{shared_data / 'cuhk01'}")
    assert dataset.problems == []
    assert (len(dataset.query), len(dataset.gallery), len(dataset.train)) == (1942, 1942, 0)
    assert len({r.pid for r in dataset.query} | {r.pid for r in dataset.gallery}) == 971
    assert {r.camid for r in dataset.query} == {1} and {r.camid for r in dataset.gallery} == {2}


def test_cuhk01_485_splits_by_identity(tmp_path):
    write_images(tmp_path / "campus", ["0485001.png", "0485003.png", "0486001.png", "0486002.png", "0486004.png"])
    dataset = load_dataset(f"cuhk01-485:{tmp_path}")
    assert rows(dataset, tmp_path) == [
        ("campus/0485001.png", 485, 1, "train"),
        ("campus/0485003.png", 485, 2, "train"),
        ("campus/0486001.png", 486, 1, "query"),
        ("campus/0486002.png", 486, 1, "query"),
        ("campus/0486004.png", 486, 2, "gallery"),
    ]


@pytest.mark.shared
def test_real_cuhk01_485_has_485_train_and_486_test_identities(shared_data):
    dataset = load_dataset(f"cuhk01-485:{shared_data / 'cuhk01'}")
    assert len({r.pid for r in dataset.train}) == 485 and len(dataset.train) == 1940
    test_ids = {r.pid for r in dataset.query}
    assert test_ids == {r.pid for r in dataset.gallery} and len(test_ids) == 486
    assert not {r.pid for r in dataset.train} & {r.pid for r in dataset.query}
