"""MSMT17 V1 and V2 readers on tiny trees with list files shaped like the published ones."""

from __future__ import annotations

import pytest
from reader_trees import rows, write_image

from diffreid.data import load_dataset
from diffreid.data.msmt17 import parse_msmt_line
from diffreid.errors import DatasetError

LISTS = {
    "list_train.txt": ["0000/0000_000_01_0303morning_0015_0.jpg 0", "0001/0001_003_05_0303noon_0021_1.jpg 1"],
    "list_val.txt": ["0000/0000_004_15_0303afternoon_0100_0.jpg 0"],
    "list_query.txt": ["0000/0000_000_02_0113morning_0005_0.jpg 0"],
    "list_gallery.txt": ["0000/0000_001_07_0113noon_0002_1.jpg 0", "0003/0003_002_12_0114afternoon_0010_0.jpg 3"],
}
FOLDERS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}


def expected_rows(version):
    train, test = FOLDERS[version]
    return sorted([
        (f"{train}/0000/0000_000_01_0303morning_0015_0.jpg", 0, 1, "train"),
        (f"{train}/0001/0001_003_05_0303noon_0021_1.jpg", 1, 5, "train"),
        (f"{train}/0000/0000_004_15_0303afternoon_0100_0.jpg", 0, 15, "train"),
        (f"{test}/0000/0000_000_02_0113morning_0005_0.jpg", 0, 2, "query"),
        (f"{test}/0000/0000_001_07_0113noon_0002_1.jpg", 0, 7, "gallery"),
        (f"{test}/0003/0003_002_12_0114afternoon_0010_0.jpg", 3, 12, "gallery"),
    ])


def make_msmt(base, version, lists=LISTS):
    train, test = FOLDERS[version]
    for seed, (list_name, lines) in enumerate(lists.items()):
        folder = base / (train if list_name in ("list_train.txt", "list_val.txt") else test)
        folder.mkdir(parents=True, exist_ok=True)
        for line in lines:
            write_image(folder / line.split()[0], seed)
        (base / list_name).write_text("".join(f"{line}\n" for line in lines))
    return base


def test_parse_msmt_line():
    assert parse_msmt_line("0000/0000_000_01_0303morning_0015_0.jpg 0") == (
        "0000/0000_000_01_0303morning_0015_0.jpg", 0, 1)
    assert parse_msmt_line("3059/3059_010_15_0303noon_0010_2.jpg 3059\n")[1:] == (3059, 15)
    with pytest.raises(ValueError, match="pid 'x' is not an integer"):
        parse_msmt_line("0000/0000_000_01_0303morning_0015_0.jpg x")
    with pytest.raises(ValueError, match="no camera field"):
        parse_msmt_line("0000/image.jpg 0")
    with pytest.raises(ValueError, match="expected 'PATH PID'"):
        parse_msmt_line("0000/0000_000_01_0303morning_0015_0.jpg")


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
@pytest.mark.parametrize("point_at_version_dir", [False, True])
def test_msmt17_records_exact(tmp_path, version, point_at_version_dir):
    base = make_msmt(tmp_path / version, version)
    dataset = load_dataset(f"msmt17:{base if point_at_version_dir else tmp_path}")
    assert rows(dataset, base) == expected_rows(version)
    assert dataset.problems == []
    assert dataset.root == base and dataset.name == f"msmt17{version[-2:].lower()}"


def test_msmt17_auto_detect_errors(tmp_path):
    with pytest.raises(DatasetError, match="neither MSMT17_V1/.*nor MSMT17_V2/"):
        load_dataset(f"msmt17:{tmp_path}")
    with pytest.raises(DatasetError, match="no MSMT17_V2 folders or list files"):
        load_dataset(f"msmt17v2:{tmp_path}")
    make_msmt(tmp_path / "MSMT17_V1", "MSMT17_V1")
    make_msmt(tmp_path / "MSMT17_V2", "MSMT17_V2")
    with pytest.raises(DatasetError, match="both MSMT17_V1 and MSMT17_V2.*msmt17v1:"):
        load_dataset(f"msmt17:{tmp_path}")
    for fmt, version in (("msmt17v1", "MSMT17_V1"), ("msmt17v2", "MSMT17_V2")):
        assert rows(load_dataset(f"{fmt}:{tmp_path}"), tmp_path / version) == expected_rows(version)


def test_msmt17_missing_list_and_bad_lines(tmp_path):
    lists = {name: list(lines) for name, lines in LISTS.items() if name != "list_val.txt"}
    lists["list_gallery.txt"].insert(1, "0003/0003_002_12_0114afternoon_0011_0.jpg three")
    base = make_msmt(tmp_path / "MSMT17_V1", "MSMT17_V1", lists)
    with (base / "list_query.txt").open("a") as handle:
        handle.write("../../outside/0000_000_01_0303morning_0015_0.jpg 0\n")
    dataset = load_dataset(f"msmt17:{tmp_path}")
    assert [(p.path, p.fatal) for p in dataset.problems] == [
        (base / "list_val.txt", True),
        (None, True),
        (base / "list_gallery.txt", False),
    ]
    assert "train list list_val.txt missing" in dataset.problems[0].message
    assert "list_query.txt:2: path" in dataset.problems[1].message
    assert "points outside the dataset root" in dataset.problems[1].message
    assert dataset.problems[2].message == "line 2: pid 'three' is not an integer; line skipped"
    assert rows(dataset, base) == [r for r in expected_rows("MSMT17_V1") if "_0100_" not in r[0]]


def test_msmt17_missing_image_folder(tmp_path):
    base = tmp_path / "MSMT17_V2"
    base.mkdir()
    for name, lines in LISTS.items():
        (base / name).write_text("\n".join(lines))
    (base / "mask_train_v2").mkdir()
    dataset = load_dataset(f"msmt17:{base}")
    assert [(p.path, p.fatal) for p in dataset.problems] == [(base / "mask_test_v2", True)]
    assert len(dataset.train) == 3 and len(dataset.gallery) == 2
