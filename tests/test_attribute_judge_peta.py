"""The attribute judge trained on PETA's labels: set-valued classes, the identity split, the CLI, the scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffreid.cli import main
from diffreid.data.peta_labels import decode
from diffreid.errors import DiffreidError
from diffreid.judges.attribute_classifier import load_attribute_classifier
from diffreid.judges.peta_judge import (CLASSES, PetaImage, held_out_identities, is_peta, peta_classes,
                                            peta_images, set_accuracy, split_identities)

from reader_trees import write_image

COMMON = "hairBlack footwearBlack lowerBodyCasual personalLess30 upperBodyCasual accessoryNothing"


@pytest.fixture(scope="module")
def peta_tree(tmp_path_factory) -> Path:
    """PRID/ (identities 1-8, cameras a and b; 8 has no Label.txt line) and i-LID/ (identities 1-4, 2 images)."""
    root = tmp_path_factory.mktemp("peta")
    colours = ["Black", "White", "Blue", "Red"]
    prid = []
    for pid in range(1, 9):
        for cam in "ab":
            write_image(root / "PRID" / f"{pid:04d}_{cam}.png", seed=pid * 2 + (cam == "b"), size=(16, 32))
        if pid < 8:
            gender = "personalMale" if pid % 2 else "personalFemale"
            prid.append(f"{pid:03d} upperBody{colours[pid % 4]} lowerBodyBlack lowerBodyJeans {gender} "
                        f"carryingNothing {COMMON}")
    (root / "PRID" / "Label.txt").write_text("\n".join(prid) + "\n")
    ilids = []
    for pid in range(1, 5):
        for index in (1, 2):
            write_image(root / "i-LID" / f"{pid:04d}_{index:03d}.jpg", seed=100 + pid * 2 + index, size=(16, 32))
        ilids.append(f"{pid} upperBodyGrey upperBodyWhite lowerBodyBlue lowerBodyTrousers personalMale "
                     f"carryingBackpack carryingLuggageCase {COMMON}")
    (root / "i-LID" / "Label.txt").write_text("\n".join(ilids) + "\n")
    return root


def test_labels_decode_into_set_valued_classes_and_unlabelled_ones_are_left_out(peta_tree):
    classes = peta_classes(decode(frozenset(
        "upperBodyBlack upperBodyWhite lowerBodySuits lowerBodyCapri carryingBackpack carryingLuggageCase "
        "carryingFolder hairShort".split())))
    assert classes["upper colour"] == {"black", "white"}
    assert classes["lower type"] == {"trousers"}  # suit trousers and capri are trousers
    assert classes["carrying"] == {"backpack", "suitcase or luggage", "other"}
    assert classes["upper type"] == {"other"}  # none of the four named types
    assert "gender" not in classes and "lower colour" not in classes  # unlabelled: never trained or scored on
    assert peta_classes(decode(frozenset({"carryingNothing", "lowerBodyHotPants"}))) == {
        "carrying": {"nothing"}, "lower type": {"shorts"}, "upper type": {"other"}}
    assert "carrying" not in peta_classes(decode(frozenset({"upperBodyRed"})))  # no carrying label at all

    items = peta_images(f"peta-all:{peta_tree}")
    assert len(items) == 7 * 2 + 4 * 2  # PRID identity 8 has no Label.txt line: left out
    first = next(i for i in items if i.set == "PRID" and i.path.name == "0001_a.png")
    assert first.classes["upper colour"] == {"white"} and first.classes["gender"] == {"male"}
    assert all(i.classes["carrying"] == {"backpack", "suitcase or luggage"} for i in items if i.set == "i-LID")


def test_split_is_by_identity_per_set_and_deterministic_per_seed(peta_tree):
    items = peta_images(f"peta-all:{peta_tree}")
    held_out = split_identities(items, 0.5, seed=0)
    assert held_out == split_identities(items, 0.5, seed=0)
    assert any(split_identities(items, 0.5, seed=s) != held_out for s in range(1, 5))
    train = {i.identity for i in items} - held_out
    assert train and not train & held_out
    assert all((i.identity in held_out) == (i.identity not in train) for i in items)
    for name, n in (("PRID", 7), ("i-LID", 4)):  # the fraction is taken of each set's identities
        assert len({i.identity for i in items if i.set == name} & held_out) == round(0.5 * n)
    with pytest.raises(DiffreidError, match="held-out-fraction"):
        split_identities(items, 0.0, seed=0)


def test_accuracy_counts_an_argmax_that_is_one_of_the_labelled_values():
    def item(pid, **classes):
        return PetaImage(Path(f"{pid}.png"), "prid:x", "PRID", pid, {k: frozenset(v) for k, v in classes.items()})

    items = [item(1, **{"upper colour": {"black", "white"}}), item(1, **{"upper colour": {"black", "white"}}),
             item(2, **{"upper colour": {"red"}}), item(3)]  # identity 3: no upper colour, not scored
    predictions = [{"upper colour": "white"}, {"upper colour": "black"}, {"upper colour": "blue"},
                   {"upper colour": "red"}]
    predictions = [{**{name: "x" for name in CLASSES}, **p} for p in predictions]
    score = set_accuracy(predictions, items)["upper colour"]
    assert score["accuracy"] == pytest.approx(2 / 3) and score["identity_accuracy"] == pytest.approx(1 / 2)
    assert score["images"] == 3 and score["identities"] == 2
    assert score["majority"] == {"class": "black", "rate": pytest.approx(2 / 3)}  # black is in two of three sets
    assert score["chance"] == pytest.approx((2 + 2 + 1) / 3 / 11)
    assert set_accuracy(predictions, items)["gender"] == {"images": 0, "identities": 0}


def test_cli_trains_one_epoch_and_writes_accuracy_and_held_out_identities(peta_tree, tmp_path):
    out = tmp_path / "judge"
    assert main(["attributes", "--data", f"peta-all:{peta_tree}", "--out", str(out), "--epochs", "1",
                 "--batch-size", "8", "--backbone", "mobilenet_v2", "--held-out-fraction", "0.5",
                 "--seed", "3"]) == 0
    report = json.loads((out / "accuracy.json").read_text())
    assert {"train", "held_out", "accuracy", "attributes", "by_set", "held_out_identities", "seed",
            "held_out_fraction", "train_seconds"} <= set(report)
    assert set(report["accuracy"]) == set(CLASSES)
    for name, score in report["attributes"].items():
        assert {"accuracy", "identity_accuracy", "images", "identities", "majority", "chance"} <= set(score), name
    assert report["attributes"]["gender"]["images"] == report["held_out"]["images"]
    assert report["held_out"]["identities"] == len(report["held_out_identities"]) == 4 + 2
    held_out = held_out_identities(out)
    items = peta_images(f"peta-all:{peta_tree}")
    assert held_out == split_identities(items, 0.5, seed=3)
    assert report["train"]["images"] + report["held_out"]["images"] == len(items)
    judge = load_attribute_classifier(out)
    assert judge.vocabulary == {name: list(values) for name, values in CLASSES.items()}


def test_missing_label_file_and_mixed_sources_are_clear_errors(peta_tree, tmp_path, capsys):
    bare = tmp_path / "PRID"
    bare.mkdir()
    for path in (peta_tree / "PRID").glob("*.png"):
        (bare / path.name).write_bytes(path.read_bytes())
    assert main(["attributes", "--data", f"prid:{bare}", "--out", str(tmp_path / "x")]) == 2
    assert str(bare / "Label.txt") in capsys.readouterr().err
    with pytest.raises(DiffreidError, match="not both"):
        is_peta([f"prid:{peta_tree}", "market1501:/somewhere"])
    assert is_peta([f"prid:{peta_tree}/PRID", f"ilids:{peta_tree}/i-LID"])
