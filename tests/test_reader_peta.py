"""PETA's eight sets (`diffreid.data.peta`): file names as the real sets name them, identity and camera
(or view, or each image its own view) per record, MIT refused for ranking, `peta-all` keeping the sets'
identities apart, bad files reported and skipped, any image format and size, Label.txt keys as integers;
then the real folders in ../shared/data/peta."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reader_trees import rows, write_image, write_images

from diffreid.cli import main
from diffreid.data import load_dataset
from diffreid.data.peta import PID_STRIDE, SETS, identity_key
from diffreid.data.peta_labels import read_label_file
from diffreid.errors import DatasetError, DiffreidError
from diffreid.evaluation import evaluate_rank
from diffreid.reid.features import extract_features

OWN = None  # the camera is not in the name: each image its own view (checked apart from the exact rows)

# format -> (PETA's folder, {file name as the real set names it: (pid, camid or OWN)})
TREES = {
    "prid": ("PRID", {"0001_a.png": (1, 1), "0001_b.png": (1, 2), "0201_a.png": (201, 1),
                      "0386_b.png": (386, 2), "1385_b.png": (1385, 2)}),
    "grid": ("GRID", {"0001_1_25004_107_32_106_221.jpeg": (1, 1), "0001_2_25023_116_134_128_330.jpeg": (1, 2),
                      "0250_5_31002_91_3_80_250.jpeg": (250, 5), "0250_6_31020_12_40_70_190.jpeg": (250, 6),
                      "1025_3_40001_1_2_88_287.jpeg": (1025, 3)}),
    "ilids": ("i-LID", {"0001_001.jpg": (1, OWN), "0001_002.jpg": (1, OWN), "0001_003.jpg": (1, OWN),
                        "0119_001.jpg": (119, OWN), "0119_002.jpg": (119, OWN), "0120_001.jpg": (120, OWN)}),
    "caviar": ("CAVIAR4REID", {"0001_001.jpg": (1, OWN), "0001_020.jpg": (1, OWN), "0072_001.jpg": (72, OWN),
                               "0072_010.jpg": (72, OWN), "0050_005.jpg": (50, OWN)}),
    "3dpes": ("3DPeS", {"100_3_FRAME_26_RGB.png": (100, OWN), "100_4_FRAME_185_RGB.png": (100, OWN),
                        "166_B_1280_FRAME_105_RGB.png": (166, OWN), "166_7_FRAME_9_RGB.png": (166, OWN),
                        "2_1_FRAME_1_RGB.png": (2, OWN)}),
    # TownCentre's tracks start at 0, and pid 0 means "distractor": pid = track + 1
    "towncentre": ("TownCentre", {"0_16.jpg": (1, OWN), "0_8.jpg": (1, OWN), "100_1726.jpg": (101, OWN),
                                  "230_4000.jpg": (231, OWN)}),
    "sarc3d": ("SARC3D", {"001_front.png": (1, 1), "001_back.png": (1, 2), "001_left.png": (1, 3),
                          "001_Right.png": (1, 4), "050_right.png": (50, 4)}),
    # MIT: no identities, each image its own pid; the view (fore = front, back) is its camid
    "mit": ("MIT", {"00001_male_back.jpg": (1, 2), "00002_female_fore.jpg": (2, 1),
                    "00924_male_fore.jpg": (924, 1), "00700_female_back.jpg": (700, 2)}),
}
OWN_VIEW_FORMATS = [fmt for fmt, (_, names) in TREES.items() if OWN in {camid for _, camid in names.values()}]


def _write_set(folder: Path, names, label_lines: str | None = "") -> Path:
    write_images(folder, list(names))
    if label_lines is not None:
        (folder / "Label.txt").write_text(label_lines)
    return folder


def _noise_pixels(size: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_every_format_is_registered_with_its_folder():
    assert {fmt: s.folder for fmt, s in SETS.items()} == {fmt: folder for fmt, (folder, _) in TREES.items()}


@pytest.mark.parametrize("fmt", TREES)
def test_records_from_real_file_names(tmp_path, fmt):
    folder_name, names = TREES[fmt]
    folder = _write_set(tmp_path / folder_name, [*names, "person.jpg"], label_lines="1 personalMale\n")
    (folder / "notes.txt").write_text("not an image: not read")
    write_image(folder / ".hidden.png")  # a hidden file is no image either

    dataset = load_dataset(f"{fmt}:{folder}")
    got = rows(dataset, tmp_path)
    assert [(path, pid, split) for path, pid, _, split in got] == sorted(
        (f"{folder_name}/{name}", pid, "train") for name, (pid, _) in names.items())
    assert dataset.query == [] and dataset.gallery == []
    camids = {path.split("/")[-1]: camid for path, _, camid, _ in got}
    named = {name: camid for name, (_, camid) in names.items() if camid is not OWN}
    assert {name: camids[name] for name in named} == named
    own = [camids[name] for name, (_, camid) in names.items() if camid is OWN]
    assert len(set(own)) == len(own)  # each image its own view
    # the misnamed file is a problem, not a record and not an exception
    assert [(p.path.name, p.fatal) for p in dataset.problems] == [("person.jpg", False)]
    assert SETS[fmt].example in dataset.problems[0].message
    # the folder holding PETA's sets names the same set
    assert rows(load_dataset(f"{fmt}:{tmp_path}"), tmp_path) == got


@pytest.mark.parametrize("fmt", OWN_VIEW_FORMATS)
def test_own_view_query_never_matches_itself_but_matches_its_identitys_other_images(tmp_path, fmt):
    folder_name, names = TREES[fmt]
    records = load_dataset(f"{fmt}:{_write_set(tmp_path / folder_name, names)}").train
    pids = np.array([r.pid for r in records])
    camids = np.array([r.camid for r in records])
    # every image as query and as gallery: itself at distance 0, its identity's others 1, other people 2
    distances = np.where(pids[:, None] == pids[None, :], 1.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    result = evaluate_rank(distances, pids, pids, camids, camids, max_rank=1)
    with_others = sum(int((pids == pid).sum()) > 1 for pid in pids)
    assert 0 < with_others < len(records)  # the tree has identities seen once and more than once
    assert result["num_valid_queries"] == with_others  # a query seen once has nothing left: never itself
    assert result["cmc"][0] == 1.0 and result["mAP"] == 1.0


def test_own_view_sets_say_so_in_data_check(tmp_path, capsys):
    for fmt in OWN_VIEW_FORMATS:
        folder_name, names = TREES[fmt]
        assert main(["data", "check", f"{fmt}:{_write_set(tmp_path / folder_name, names)}"]) == 0
        out = capsys.readouterr().out
        assert "note: the camera is not in the file names: every image is its own view" in out, fmt
        train = next(line.split() for line in out.splitlines() if line.startswith("train"))
        assert train[1:] == [str(len({pid for pid, _ in names.values()})), str(len(names)), str(len(names))], fmt


def test_mit_is_refused_for_ranking_with_a_clear_error(tmp_path, capsys):
    folder_name, names = TREES["mit"]
    folder = _write_set(tmp_path / folder_name, names)
    assert main(["evaluate", "--data", f"mit:{folder}", "--model", str(tmp_path / "absent.onnx")]) == 2
    err = capsys.readouterr().err
    assert "no query / gallery images" in err and "no identities: every image is a different person" in err
    from diffreid.small_benchmark import run

    with pytest.raises(DiffreidError, match="MIT set has no identities"):
        run(["color-histogram"], tmp_path / "out", root=tmp_path, datasets=["mit"])
    assert not (tmp_path / "out").exists()


def test_peta_all_keeps_the_sets_identities_apart(tmp_path):
    key_one = {"prid": "0001_a.png", "ilids": "0001_001.jpg", "towncentre": "0_16.jpg", "sarc3d": "001_front.png",
               "mit": "00001_male_back.jpg"}  # identity 1 (TownCentre: track 0) in five sets
    for fmt, name in key_one.items():
        _write_set(tmp_path / SETS[fmt].folder, [name])
    order = list(SETS)  # set i's pids start at i * PID_STRIDE
    expected = sorted((f"{SETS[fmt].folder}/{name}", order.index(fmt) * PID_STRIDE + 1, "train")
                      for fmt, name in key_one.items())
    for alias in ("peta-all", "peta"):
        dataset = load_dataset(f"{alias}:{tmp_path}")
        assert [(path, pid, split) for path, pid, _, split in rows(dataset, tmp_path)] == expected
        assert len({r.pid for r in dataset.train}) == len(key_one)
        missing = {note.split("/")[0] for note in dataset.notes if "not found" in note}
        assert missing == {"GRID", "CAVIAR4REID", "3DPeS"}
    with pytest.raises(DatasetError, match="none of PETA's set folders"):
        load_dataset(f"peta-all:{tmp_path / 'PRID'}")


def test_no_images_and_no_label_file(tmp_path):
    (tmp_path / "PRID").mkdir()
    with pytest.raises(DatasetError, match=r"no images of PRID 2011.*0001_a\.png"):
        load_dataset(f"prid:{tmp_path / 'PRID'}")
    folder = _write_set(tmp_path / "GRID", ["0001_1_25004_107_32_106_221.jpeg"], label_lines=None)
    dataset = load_dataset(f"grid:{folder}")
    assert len(dataset.train) == 1
    assert [(p.path.name, p.fatal) for p in dataset.problems] == [("Label.txt", False)]
    assert "no Label.txt" in dataset.problems[0].message


def test_unreadable_files_are_reported_and_skipped(tmp_path, capsys, caplog):
    folder = _write_set(tmp_path / "PRID", ["0001_a.png", "0001_b.png", "0002_a.png", "0002_b.png", "0003_b.png"])
    empty, truncated, garbage = folder / "0001_b.png", folder / "0002_a.png", folder / "0003_b.png"
    empty.write_bytes(b"")
    truncated.write_bytes(truncated.read_bytes()[:100])
    garbage.write_bytes(b"this is not a png at all")

    assert main(["data", "check", f"prid:{folder}"]) == 0
    out = capsys.readouterr().out
    assert f"warning: {empty}: empty image file (0 bytes)" in out
    assert f"warning: {truncated}: corrupt image (" in out
    assert f"warning: {garbage}: not a decodable image" in out
    assert "Traceback" not in out

    caplog.set_level(logging.WARNING)
    records = load_dataset(f"prid:{folder}").train
    features, kept = extract_features(lambda images: images.reshape(len(images), -1)[:, :4].astype(np.float32),
                                      records, (16, 8), batch_size=2, desc="")
    assert [r.path.name for r in kept] == ["0001_a.png", "0002_b.png"] and features.shape == (2, 4)
    skipped = {Path(r.getMessage().split(": unreadable image skipped")[0]).name for r in caplog.records
               if "unreadable image skipped" in r.getMessage()}
    assert skipped == {empty.name, truncated.name, garbage.name}


def test_png_jpeg_and_bmp_of_any_size_and_mode_are_read(tmp_path):
    folder = tmp_path / "PRID"
    images = {  # name: (size w x h, PIL mode)
        "0001_a.png": ((64, 128), "RGB"), "0001_b.bmp": ((1, 1), "RGB"), "0002_a.jpg": ((300, 7), "RGB"),
        "0002_b.jpeg": ((7, 300), "RGB"), "0003_a.PNG": ((33, 65), "L"), "0003_b.BMP": ((26, 54), "P"),
        "0004_a.png": ((20, 40), "RGBA"), "0004_b.JPG": ((88, 287), "L"),
    }
    folder.mkdir()
    for seed, (name, (size, mode)) in enumerate(images.items()):
        Image.fromarray(_noise_pixels(size, seed)).convert(mode).save(folder / name)
    dataset = load_dataset(f"prid:{folder}")
    assert sorted(r.path.name for r in dataset.train) == sorted(images)
    assert {r.path.name: (r.pid, r.camid) for r in dataset.train} == {
        name: (int(name[:4]), 1 if name[5] == "a" else 2) for name in images}
    features, kept = extract_features(lambda x: x.reshape(len(x), -1).astype(np.float32), dataset.train, (16, 8),
                                      desc="")
    assert len(kept) == len(images) and features.shape == (len(images), 16 * 8 * 3)


def test_label_keys_are_matched_as_integers(tmp_path, caplog):
    from diffreid.judges.peta_judge import peta_images
    from diffreid.synthesis.captioners.peta import PetaCaptioner

    # file names padded unlike the Label.txt keys, both ways, as PETA's own files are
    prid = _write_set(tmp_path / "PRID", ["0709_a.png", "0709_b.png", "806_b.png"],
                      label_lines="709 personalMale upperBodyRed\n0806 personalFemale upperBodyBlue\n")
    mit = _write_set(tmp_path / "MIT", ["924_male_back.jpg"], label_lines="00924 personalMale upperBodyGreen\n")
    table, problems = read_label_file(prid / "Label.txt")
    assert problems == [] and set(table) == {709, 806}
    records = load_dataset(f"prid:{prid}").train + load_dataset(f"mit:{mit}").train
    assert [identity_key(r.path) for r in records] == [709, 709, 806, 924]
    caplog.set_level(logging.WARNING)
    captions = PetaCaptioner().caption(records)
    assert captions[0] == captions[1] and captions[0].startswith("a man") and "red" in captions[0]
    assert captions[2].startswith("a woman") and "blue" in captions[2]
    assert captions[3].startswith("a man") and "green" in captions[3] and captions[3].endswith("back view")
    judged = {item.path.name: item.classes["upper colour"] for spec in (f"prid:{prid}", f"mit:{mit}")
              for item in peta_images(spec)}
    assert judged == {"0709_a.png": {"red"}, "0709_b.png": {"red"}, "806_b.png": {"blue"},
                      "924_male_back.jpg": {"green"}}
    assert "no labels" not in caplog.text and "does not list" not in caplog.text


# The real sets in ../shared/data/peta (README: images, identities)

REAL = {"prid": ("PRID", 1134, 934), "grid": ("GRID", 1275, 1025), "ilids": ("i-LID", 477, 120),
        "caviar": ("CAVIAR4REID", 1220, 72), "3dpes": ("3DPeS", 1012, 193), "towncentre": ("TownCentre", 6967, 222),
        "sarc3d": ("SARC3D", 200, 50), "mit": ("MIT", 888, 888)}


def _by_pid(records) -> dict[int, list]:
    groups: dict[int, list] = {}
    for record in records:
        groups.setdefault(record.pid, []).append(record)
    return groups


@pytest.mark.shared
@pytest.mark.parametrize("fmt", REAL)
def test_real_set_counts(shared_data, fmt):
    folder, images, identities = REAL[fmt]
    dataset = load_dataset(f"{fmt}:{shared_data / 'peta' / folder}")
    assert dataset.problems == []
    files = [p for p in (shared_data / "peta" / folder).iterdir() if p.name != "Label.txt"]
    assert len(dataset.train) == len(files) == images
    assert len({r.pid for r in dataset.train}) == identities
    labelled, _ = read_label_file(shared_data / "peta" / folder / "Label.txt")
    assert {identity_key(r.path) for r in dataset.train} <= set(labelled)  # every identity has its labels


@pytest.mark.shared
def test_real_cameras_and_views(shared_data):
    def read(fmt):
        return load_dataset(f"{fmt}:{shared_data / 'peta' / REAL[fmt][0]}").train

    prid = read("prid")  # 200 ids seen by both cameras, camera a 385 images, camera b 749
    assert (sum(r.camid == 1 for r in prid), sum(r.camid == 2 for r in prid)) == (385, 749)
    assert sum({r.camid for r in group} == {1, 2} for group in _by_pid(prid).values()) == 200
    grid = read("grid")  # 250 ids in two views, 775 once; cameras 1-6
    assert sorted(len(group) for group in _by_pid(grid).values()) == [1] * 775 + [2] * 250
    assert {r.camid for r in grid} == set(range(1, 7))
    for fmt in OWN_VIEW_FORMATS:
        records = read(fmt)
        assert len({r.camid for r in records}) == len(records), fmt
    assert sum(len(group) >= 2 for group in _by_pid(read("ilids")).values()) == 119
    sarc3d = read("sarc3d")  # 50 ids x 4 views
    assert sorted(sorted(r.camid for r in group) for group in _by_pid(sarc3d).values()) == [[1, 2, 3, 4]] * 50
    mit = read("mit")
    assert {r.camid for r in mit} == {1, 2} and len({r.pid for r in mit}) == len(mit)


@pytest.mark.shared
def test_real_peta_all(shared_data):
    dataset = load_dataset(f"peta-all:{shared_data / 'peta'}")
    assert dataset.problems == [] and not any("not found" in note for note in dataset.notes)
    assert len(dataset.train) == 13_173  # 12,285 of them with an identity: all but MIT's 888
    assert sum(r.path.parent.name != "MIT" for r in dataset.train) == 12_285
    assert len({r.pid for r in dataset.train}) == sum(ids for _, _, ids in REAL.values())


@pytest.mark.shared
def test_real_data_check_prints_counts_and_exits_0(shared_data, capsys):
    for fmt, (folder, images, identities) in REAL.items():
        assert main(["data", "check", "--no-images", f"{fmt}:{shared_data / 'peta' / folder}"]) == 0, fmt
        out = capsys.readouterr().out
        assert out.splitlines()[0].endswith(": usable"), fmt
        train = next(line.split() for line in out.splitlines() if line.startswith("train"))
        assert train[1:3] == [str(identities), str(images)], fmt
