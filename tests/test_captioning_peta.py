"""PETA attribute captions: the sentence from Label.txt labels, the view phrase, the `diffreid caption`
stage on small PETA trees (keys padded unlike the file names, a key missing, resuming on the labels), and
every image of the eight real sets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from diffreid.cli import main
from diffreid.config import CaptionConfig
from diffreid.data import load_dataset
from diffreid.data.peta_labels import decode
from diffreid.errors import DiffreidError
from diffreid.synthesis import captioning
from diffreid.synthesis.captioners.peta import PetaCaptioner, peta_caption
from tests.reader_trees import write_image

# SARC3D-style names; keys padded unlike the file names; identity 3 has no line
LABELS = ("01 personalMale personalLess30 hairShort hairBlack upperBodyBlack upperBodyWhite upperBodyJacket "
          "upperBodyLongSleeve upperBodyCasual lowerBodyBlue lowerBodyJeans footwearBlack footwearSneakers "
          "carryingBackpack accessoryNothing\r\n"
          "0002 upperBodyRed upperBodyShortSleeve upperBodyTshirt lowerBodyGrey lowerBodyShorts hairLong "
          "footwearSandals carryingNothing accessoryNothing\r\n")
FIRST = ("a young man with short black hair, wearing a black and white jacket, blue jeans and black sneakers, "
         "carrying a backpack")
SECOND = "a person with long hair, wearing a red short-sleeved t-shirt, grey shorts and sandals"
NAMES = ["001_front.png", "001_back.png", "001_left.png", "002_front.png", "003_right.png"]


def _caption_of(labels: str, view: str | None = None) -> str:
    return peta_caption(decode(frozenset(labels.split())), view)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def sarc3d(tmp_path) -> Path:
    folder = tmp_path / "SARC3D"
    for seed, name in enumerate(NAMES):
        write_image(folder / name, seed)
    (folder / "Label.txt").write_bytes(LABELS.encode())
    return folder


# The sentence


@pytest.mark.parametrize("labels, caption", [
    ("personalFemale personalLess30 hairLong hairBlack upperBodyWhite upperBodyShortSleeve upperBodyTshirt "
     "lowerBodyBlack lowerBodyTrousers carryingBackpack",
     "a young woman with long black hair, wearing a white short-sleeved t-shirt and black trousers, carrying a "
     "backpack"),
    ("personalMale personalLess45 hairShort hairYellow upperBodyBlack upperBodyWhite upperBodyRed upperBodyJacket "
     "upperBodyLongSleeve lowerBodyBlue lowerBodyJeans lowerBodyTrousers footwearBlack footwearLeatherShoes "
     "footwearShoes accessoryHat accessorySunglasses carryingMessengerBag carryingOther",
     "a man with short blond hair, wearing a black, white and red jacket, blue jeans, black leather shoes, a hat and "
     "sunglasses, carrying a shoulder bag and something else"),
    ("personalFemale personalLess15 upperBodyPink lowerBodyPurple lowerBodyShortSkirt footwearBoots footwearStocking "
     "carryingOther",
     "a girl wearing a pink top, a short purple skirt, boots and stockings, carrying something"),
    ("personalLarger60 hairBald hairShort hairGrey upperBodyGrey upperBodySuit upperBodyLongSleeve "
     "upperBodyFormal lowerBodyGrey lowerBodySuits carryingPlasticBags carryingBabyBuggy",
     "an old person with a bald head, wearing a grey suit jacket and grey suit trousers, carrying plastic bags, "
     "pushing a baby buggy"),
    ("personalMale upperBodyGreen upperBodySweater upperBodyTshirt upperBodyLogo lowerBodyJeans lowerBodyShorts",
     "a man wearing a green sweater with a logo over a t-shirt and denim shorts"),
    ("personalFemale upperBodyWhite upperBodyBlue upperBodyTshirt upperBodyShortSleeve upperBodyPlaid "
     "upperBodyVNeck upperBodyLogo",
     "a woman wearing a white and blue plaid short-sleeved v-neck t-shirt with a logo"),
    ("carryingShoppingTro", "a person pushing a shopping trolley"),
    ("accessoryNothing carryingNothing", "a person"),
])
def test_caption_from_labels(labels, caption):
    assert _caption_of(labels) == caption


def test_view_is_its_own_last_phrase():
    labels = "personalFemale hairLong upperBodyBlack lowerBodyBlue lowerBodyJeans"
    assert _caption_of(labels, "back") == ("a woman with long hair, wearing a black top and blue jeans, "
                                           "back view")
    assert _caption_of(labels, "left").endswith("blue jeans, left side view")
    assert _caption_of("", "front") == "a person, front view"


# The captioner and the stage


def test_captioner_reads_the_label_file_beside_each_image(sarc3d, caplog):
    records = sorted(load_dataset(f"sarc3d:{sarc3d}").train, key=lambda r: r.path.name)
    captioner = PetaCaptioner()
    with caplog.at_level(logging.WARNING):
        captions = captioner.caption(records) + captioner.caption(records)
    assert captions[:5] == [f"{FIRST}, back view", f"{FIRST}, front view",
                            f"{FIRST}, left side view", f"{SECOND}, front view", None]
    assert captions[5:] == captions[:5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per identity, however often it comes
    assert str(sarc3d / "Label.txt") in warnings[0] and "no labels for identity 3" in warnings[0]
    assert "003_right.png" in warnings[0]


def test_key_not_pid_selects_the_labels(tmp_path):
    """TownCentre's pid is its key + 1: the labels are found by the file name's key."""
    folder = tmp_path / "TownCentre"
    write_image(folder / "0_16.jpg")
    (folder / "Label.txt").write_text("000 personalMale lowerBodyShorts\n1 personalFemale lowerBodyJeans\n")
    [record] = load_dataset(f"towncentre:{folder}").train
    assert record.pid == 1 and PetaCaptioner().caption([record]) == ["a man wearing shorts"]


def test_cli_captions_a_peta_folder(sarc3d, tmp_path, caplog):
    out = tmp_path / "out"
    assert main(["caption", "--data", f"sarc3d:{sarc3d}", "--out", str(out), "--captioner", "attributes",
                 "--batch-size", "2"]) == 0
    assert [(c["image"], c["pid"], c["camid"], c["caption"]) for c in _jsonl(out / "captions.jsonl")] == [
        ("001_back.png", 1, 2, f"{FIRST}, back view"),
        ("001_front.png", 1, 1, f"{FIRST}, front view"),
        ("001_left.png", 1, 3, f"{FIRST}, left side view"),
        ("002_front.png", 2, 1, f"{SECOND}, front view")]
    # three views of identity 1: no view phrase reaches half its captions; identity 2 has one image
    assert _jsonl(out / "identities.jsonl") == [{"pid": 1, "description": FIRST, "n_images": 3},
                                                {"pid": 2, "description": f"{SECOND}, front view",
                                                 "n_images": 1}]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["skipped_images"] == 1 and manifest["counts"]["identities"] == 2
    assert set(manifest["inputs"]["attributes"]["label_files"]) == {"Label.txt"}
    assert "no labels for identity 3" in caplog.text and str(sarc3d / "Label.txt") in caplog.text


def test_changed_labels_are_not_resumed(sarc3d, tmp_path, caplog):
    config = CaptionConfig(data=f"sarc3d:{sarc3d}", out=tmp_path / "out", captioner="attributes")
    captioning.run(config)
    (sarc3d / "Label.txt").write_text(LABELS.replace("0002 ", "0002 personalFemale "))
    captioning.run(config)
    assert "made with other settings" in caplog.text
    assert _jsonl(tmp_path / "out" / "identities.jsonl")[1]["description"].startswith("a woman with long hair")


def test_named_label_file_and_peta_all(tmp_path):
    root = tmp_path / "peta"
    for seed, name in enumerate(NAMES[:4]):
        write_image(root / "SARC3D" / name, seed)
    write_image(root / "TownCentre" / "0_16.jpg")
    (root / "TownCentre" / "Label.txt").write_text("0 personalMale lowerBodyShorts\n")
    labels = tmp_path / "elsewhere" / "Label.txt"
    labels.parent.mkdir()
    labels.write_text(LABELS)

    named = captioning.run(CaptionConfig(data=f"sarc3d:{root / 'SARC3D'}", out=tmp_path / "named",
                                         captioner="attributes", attributes=labels))
    assert [c["caption"] for c in _jsonl(named / "captions.jsonl")][-1] == f"{SECOND}, front view"
    assert json.loads((named / "manifest.json").read_text())["inputs"]["attributes"]["sha256"]

    every = captioning.run(CaptionConfig(data=f"peta-all:{root}", out=tmp_path / "all", captioner="attributes"))
    assert [c["caption"] for c in _jsonl(every / "captions.jsonl")] == ["a man wearing shorts"]  # SARC3D: no Label.txt
    fingerprint = json.loads((every / "manifest.json").read_text())["inputs"]["attributes"]["label_files"]
    assert fingerprint["SARC3D/Label.txt"] is None and fingerprint["TownCentre/Label.txt"]


def test_no_label_file_at_all_is_a_clear_error(tmp_path):
    write_image(tmp_path / "SARC3D" / "001_front.png")
    with pytest.raises(DiffreidError, match="no Label.txt beside the images"):
        captioning.run(CaptionConfig(data=f"sarc3d:{tmp_path / 'SARC3D'}", out=tmp_path / "out",
                                     captioner="attributes"))


# The real sets

REAL = {"prid": "PRID", "grid": "GRID", "ilids": "i-LID", "caviar": "CAVIAR4REID", "3dpes": "3DPeS",
        "towncentre": "TownCentre", "sarc3d": "SARC3D", "mit": "MIT"}


@pytest.mark.shared
def test_every_real_peta_image_is_captioned(shared_data, caplog):
    captions = {}
    for fmt, folder in REAL.items():
        records = load_dataset(f"{fmt}:{shared_data / 'peta' / folder}").train
        texts = PetaCaptioner().caption(records)
        assert records and None not in texts, fmt
        captions |= {f"{folder}/{r.path.name}": text for r, text in zip(records, texts)}
    assert "WARNING" not in caplog.text
    assert captions["SARC3D/001_back.png"].endswith(", back view")
    assert captions["SARC3D/001_Right.png"].endswith(", right side view")
    assert captions["MIT/00001_male_back.jpg"].endswith(", back view")
    assert captions["PRID/0709_b.png"] == ("a man with short brown hair, wearing a black suit jacket, blue jeans and "
                                           "black leather shoes, carrying a suitcase")
    assert captions["GRID/0989_5_32816_166_159_72_299.jpeg"] == (
        "a young woman with long blond hair, wearing a black and white sleeveless top, a short black and white skirt "
        "and black shoes")
