"""CUHK03 (767/700 protocol) from a synthetic cuhk-03.mat built like the original (MATLAB v7.3 / HDF5).

The fixture mirrors what torchreid reads: `detected` and `labeled` are 5x1 cells (stored
1x5) of persons x 10 cells (stored 10 x persons) of object references to uint8 images
stored transposed (3 x W x H), with MATLAB's 2-element placeholder for empty cells; the
split files are written by scipy.io.savemat with the real files' field types and shapes.
"""

from __future__ import annotations

import itertools
import os

import h5py
import numpy as np
import pytest
from PIL import Image
from reader_trees import rows
from scipy.io import loadmat, savemat

from diffreid.data import cuhk03, load_dataset
from diffreid.data.cuhk03 import cache_dir, read_cuhk03_split
from diffreid.errors import DatasetError

# campus pair -> person -> the image numbers (1..10) present; the rest are empty cells
PRESENT = {
    "detected": [[(1, 2, 6), (1, 6, 7)], [(1, 6)]],
    "labeled": [[(1, 6), (2, 6)], [(1, 2, 6, 7)]],
}
# per kind: the 1-based person id of each (campus, person), and which persons are for training
LABELS = {(1, 1): 1, (1, 2): 2, (2, 1): 3}
TRAIN_PIDS = {1}


def make_images(kind):
    """{file name: HxWx3 uint8 pixels} for every non-empty cell, of varied sizes."""
    rng = np.random.default_rng(0 if kind == "detected" else 1)
    images = {}
    for campus, people in enumerate(PRESENT[kind], 1):
        for person, present in enumerate(people, 1):
            for image in present:
                height, width = rng.integers(10, 20), rng.integers(5, 9)
                images[cuhk03.image_name(campus, person, image)] = rng.integers(0, 256, (height, width, 3), np.uint8)
    return images


def write_raw_mat(path, kinds=("detected", "labeled")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as mat:
        refs, counter = mat.create_group("#refs#"), itertools.count()

        def put(data, matlab_class, group=refs):
            dataset = group.create_dataset(f"r{next(counter)}", data=data)
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            if data.ndim == 1 and not data.any():
                dataset.attrs["MATLAB_empty"] = np.uint8(1)
            return dataset.ref

        for kind in kinds:
            images = make_images(kind)
            campus_refs = []
            for campus, people in enumerate(PRESENT[kind], 1):
                cell = np.empty((10, len(people)), dtype=h5py.ref_dtype)  # MATLAB: persons x 10
                for person in range(1, len(people) + 1):
                    for image in range(1, 11):
                        pixels = images.get(cuhk03.image_name(campus, person, image))
                        cell[image - 1, person - 1] = (put(np.zeros(2, np.uint64), "double") if pixels is None
                                                       else put(pixels.transpose(2, 1, 0), "uint8"))
                campus_refs.append(put(cell, "cell"))
            top = mat.create_dataset(kind, data=np.array([campus_refs], dtype=h5py.ref_dtype))
            top.attrs["MATLAB_class"] = np.bytes_("cell")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Apr 15 2014 HDF5 schema 1.00 ."
    with path.open("r+b") as handle:
        handle.write(header.ljust(116) + bytes(8) + b"\x00\x02IM")
    return path


def write_split_mat(path, kind, extra_names=()):
    names = sorted(make_images(kind)) + list(extra_names)
    pids = [LABELS[int(n[0]), int(n[2:5])] for n in names]
    filelist = np.empty((len(names), 1), dtype=object)
    for i, name in enumerate(names):
        filelist[i, 0] = name
    train = [i for i, pid in enumerate(names, 1) if pids[i - 1] in TRAIN_PIDS]
    test = [i for i in range(1, len(names) + 1) if i not in train]
    query = [i for i in test if names[i - 1].split("_")[2] == "1"]  # camera 1 queries, camera 2 gallery
    gallery = [i for i in test if i not in query]
    column = lambda values, dtype: np.array(values, dtype)[:, None]  # noqa: E731 - shapes (N, 1) as in the real files
    savemat(path, {"filelist": filelist, "labels": column(pids, np.uint16),
                   "camId": column([int(n.split("_")[2]) for n in names], np.uint8),
                   "train_idx": column(train, np.uint16), "query_idx": column(query, np.uint16),
                   "gallery_idx": column(gallery, np.uint16)})
    return path


def make_cuhk03(root, torchreid_layout=True):
    write_raw_mat(root / ("cuhk03_release" if torchreid_layout else "") / "cuhk-03.mat")
    for kind in ("detected", "labeled"):
        write_split_mat(root / f"cuhk03_new_protocol_config_{kind}.mat", kind)
    return root


EXPECTED = {
    "detected": [
        ("images_detected/1_001_1_01.png", 1, 1, "train"),
        ("images_detected/1_001_1_02.png", 1, 1, "train"),
        ("images_detected/1_001_2_06.png", 1, 2, "train"),
        ("images_detected/1_002_1_01.png", 2, 1, "query"),
        ("images_detected/1_002_2_06.png", 2, 2, "gallery"),
        ("images_detected/1_002_2_07.png", 2, 2, "gallery"),
        ("images_detected/2_001_1_01.png", 3, 1, "query"),
        ("images_detected/2_001_2_06.png", 3, 2, "gallery"),
    ],
    "labeled": [
        ("images_labeled/1_001_1_01.png", 1, 1, "train"),
        ("images_labeled/1_001_2_06.png", 1, 2, "train"),
        ("images_labeled/1_002_1_02.png", 2, 1, "query"),
        ("images_labeled/1_002_2_06.png", 2, 2, "gallery"),
        ("images_labeled/2_001_1_01.png", 3, 1, "query"),
        ("images_labeled/2_001_1_02.png", 3, 1, "query"),
        ("images_labeled/2_001_2_06.png", 3, 2, "gallery"),
        ("images_labeled/2_001_2_07.png", 3, 2, "gallery"),
    ],
}


def assert_pixels(folder, kind):
    for name, pixels in make_images(kind).items():
        assert np.array_equal(np.asarray(Image.open(folder / name)), pixels), name


@pytest.mark.parametrize("fmt, kind", [("cuhk03", "detected"), ("cuhk03-detected", "detected"),
                                       ("cuhk03-labeled", "labeled")])
def test_cuhk03_extracts_and_reads(tmp_path, fmt, kind):
    root = make_cuhk03(tmp_path)
    dataset = load_dataset(f"{fmt}:{root}")
    assert rows(dataset, root) == EXPECTED[kind]
    assert dataset.problems == [] and dataset.name == f"cuhk03-{kind}"
    assert_pixels(root / f"images_{kind}", kind)
    # atomic writes leave no temporary files behind; only the images and the done-marker
    assert sorted(os.listdir(root / f"images_{kind}")) == [".extracted", *sorted(make_images(kind))]


def test_cuhk03_reuses_extracted_images(tmp_path, monkeypatch):
    root = make_cuhk03(tmp_path, torchreid_layout=False)  # files directly in ROOT
    first = rows(load_dataset(f"cuhk03:{root}"), root)

    def no_extraction(*args):
        raise AssertionError("extracted again")

    monkeypatch.setattr(cuhk03, "extract_images", no_extraction)
    assert rows(load_dataset(f"cuhk03:{root}"), root) == first == EXPECTED["detected"]
    # images extracted by torchreid (no marker) and no cuhk-03.mat: still read
    (root / "images_detected" / ".extracted").unlink()
    (root / "cuhk-03.mat").unlink()
    assert rows(load_dataset(f"cuhk03:{root}"), root) == EXPECTED["detected"]


def test_cuhk03_read_only_root_uses_cache(tmp_path, monkeypatch):
    root = make_cuhk03(tmp_path / "data")
    monkeypatch.setenv("DIFFREID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cuhk03, "_writable", lambda folder: False)
    dataset = load_dataset(f"cuhk03-labeled:{root}")
    folder = cache_dir(root) / "images_labeled"
    assert folder.is_relative_to(tmp_path / "cache" / "cuhk03")
    assert not (root / "images_labeled").exists()
    assert rows(dataset, folder.parent) == EXPECTED["labeled"]
    assert_pixels(folder, "labeled")


def test_cuhk03_image_missing_from_mat(tmp_path):
    root = make_cuhk03(tmp_path)
    write_split_mat(root / "cuhk03_new_protocol_config_detected.mat", "detected", extra_names=["2_001_1_02.png"])
    dataset = load_dataset(f"cuhk03:{root}")
    assert [(p.path, p.fatal) for p in dataset.problems] == [(root / "images_detected" / "2_001_1_02.png", False)]
    assert "not among the extracted images" in dataset.problems[0].message
    assert rows(dataset, root) == EXPECTED["detected"]


def test_cuhk03_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="split file missing; download it from"):
        load_dataset(f"cuhk03:{tmp_path}")
    write_split_mat(tmp_path / "cuhk03_new_protocol_config_detected.mat", "detected")
    with pytest.raises(DatasetError, match="no cuhk-03.mat and no extracted images_detected/"):
        load_dataset(f"cuhk03:{tmp_path}")
    (tmp_path / "cuhk-03.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DatasetError, match="not a MATLAB v7.3"):
        load_dataset(f"cuhk03:{tmp_path}")


def test_split_file_parser(tmp_path):
    entries = read_cuhk03_split(write_split_mat(tmp_path / "split.mat", "labeled"))
    assert sorted((f"images_labeled/{n}", pid, cam, split) for n, pid, cam, split in entries) == EXPECTED["labeled"]


@pytest.mark.shared
def test_split_fixture_shaped_like_real(tmp_path, shared_data):
    real = loadmat(shared_data / "cuhk03" / "cuhk03_new_protocol_config_detected.mat")
    fake = loadmat(write_split_mat(tmp_path / "split.mat", "detected"))
    for key in ("filelist", "labels", "camId", "train_idx", "query_idx", "gallery_idx"):
        assert (fake[key].dtype, fake[key].shape[1:]) == (real[key].dtype, real[key].shape[1:]), key
    assert type(fake["filelist"][0, 0]) is type(real["filelist"][0, 0])
    assert fake["filelist"][0, 0].dtype.kind == real["filelist"][0, 0].dtype.kind == "U"


@pytest.mark.shared
@pytest.mark.parametrize("kind, counts", [("detected", (7365, 767, 1400, 5332, 700)),
                                          ("labeled", (7368, 767, 1400, 5328, 700))])
def test_real_split_counts(shared_data, kind, counts):
    entries = read_cuhk03_split(shared_data / "cuhk03" / f"cuhk03_new_protocol_config_{kind}.mat")
    by_split = {s: [e for e in entries if e[3] == s] for s in ("train", "query", "gallery")}
    test_ids = {e[1] for e in by_split["query"]}
    assert (len(by_split["train"]), len({e[1] for e in by_split["train"]}), len(by_split["query"]),
            len(by_split["gallery"]), len(test_ids)) == counts
    assert test_ids == {e[1] for e in by_split["gallery"]}
    assert not test_ids & {e[1] for e in by_split["train"]}
    assert {e[2] for e in entries} == {1, 2}
    assert entries[0][:3] == ("1_001_1_01.png", 1, 1)
    assert all(int(name.split("_")[2]) == camid for name, _, camid, _ in entries)
