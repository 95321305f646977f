"""The view judge: trained on SARC3D / MIT file-name views, read on generated images grouped by injected viewpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffreid.cli import main
from diffreid.judges.attribute_classifier import AttributeNet, load_attribute_classifier
from diffreid.judges.peta_judge import held_out_identities, split_identities
from diffreid.judges.view_judge import VIEW_CLASSES, view_images, viewpoint_group

from generated_dirs import noise_image, write_generated
from reader_trees import write_image

SARC3D_IDS, MIT_IMAGES = 6, 8


@pytest.fixture(scope="module")
def views_tree(tmp_path_factory) -> Path:
    """SARC3D/ (identities 1-6, four views each), MIT/ (8 people, back or fore) and PRID/ (no view in the name)."""
    root = tmp_path_factory.mktemp("views")
    for pid in range(1, SARC3D_IDS + 1):
        for number, view in enumerate(("front", "back", "left", "right")):
            write_image(root / "SARC3D" / f"{pid:03d}_{view}.png", seed=pid * 4 + number, size=(16, 32))
    for pid in range(1, MIT_IMAGES + 1):
        sex, view = ("male", "female")[pid % 2], ("back", "fore")[pid % 2]
        write_image(root / "MIT" / f"{pid:05d}_{sex}_{view}.jpg", seed=100 + pid, size=(16, 32))
    for pid in (1, 2):
        write_image(root / "PRID" / f"{pid:04d}_a.png", seed=200 + pid, size=(16, 32))
    return root


def test_cli_trains_a_view_head_on_sarc3d_and_mit_with_held_out_identities(views_tree, tmp_path):
    out = tmp_path / "judge"
    data = [f"sarc3d:{views_tree}/SARC3D", f"mit:{views_tree}/MIT"]
    assert main(["attributes", "--judge", "views", "--data", data[0], "--data", data[1], "--out", str(out),
                 "--epochs", "1", "--batch-size", "8", "--backbone", "mobilenet_v2",
                 "--held-out-fraction", "0.5", "--seed", "1"]) == 0
    judge = load_attribute_classifier(out)
    assert judge.vocabulary == {"view": ["front", "back", "left", "right"]}
    assert json.loads((out / "classifier.json").read_text())["labels"] == "views"
    report = json.loads((out / "accuracy.json").read_text())
    assert report["labels"] == "views" and report["data"] == data
    assert set(report["accuracy"]) == {"view"} and 0 <= report["accuracy"]["view"] <= 1
    score = report["attributes"]["view"]
    assert {"accuracy", "majority", "chance", "images", "identities"} <= set(score)
    assert score["chance"] == pytest.approx(1 / 4)  # one view per image, four classes
    assert set(report["by_set"]) == {"SARC3D", "MIT"}
    assert report["held_out"]["identities"] == round(0.5 * SARC3D_IDS) + round(0.5 * MIT_IMAGES)
    assert report["train"]["images"] + report["held_out"]["images"] == 4 * SARC3D_IDS + MIT_IMAGES
    items = [item for spec in data for item in view_images(spec)]
    assert held_out_identities(out) == split_identities(items, 0.5, seed=1)


def test_images_without_a_view_in_their_name_are_left_out(views_tree, tmp_path, capsys):
    items = view_images(f"peta-all:{views_tree}")
    assert len(items) == 4 * SARC3D_IDS + MIT_IMAGES  # PRID's two images name no view
    assert {item.set for item in items} == {"SARC3D", "MIT"}
    front = next(item for item in items if item.path.name == "00001_female_fore.jpg")
    assert front.classes == {"view": {"front"}}  # MIT's "fore" is front
    assert main(["attributes", "--judge", "views", "--data", f"prid:{views_tree}/PRID",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--data sarc3d:" in capsys.readouterr().err  # the error names the fix


def _back_judge(folder: Path) -> Path:
    """An untrained view judge whose head always answers "back"."""
    net = AttributeNet({name: list(values) for name, values in VIEW_CLASSES.items()}, "mobilenet_v2", None)
    with torch.no_grad():
        net.heads["view"].weight.zero_()
        net.heads["view"].bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0]))
    return net.save(folder, labels="views")


def test_fidelity_groups_generated_images_by_injected_viewpoint_of_any_source(tmp_path):
    judge = _back_judge(tmp_path / "judge")
    source = "cuhk01:/nowhere/CUHK01"  # no PETA labels, not even present: the view reading needs none
    images = [(pid, noise_image(pid, (32, 64))) for pid in (1, 1, 2, 2, 3)]
    write_generated(tmp_path / "di", source, images, injected=[
        ["back view", "mid-stride", "in a park"], ["left side view", "at dusk"], ["Back view"],
        ["in the rain"], ["three-quarter view"]])
    write_generated(tmp_path / "no-di", source, images[:3], injected=[[], [], []])
    assert main(["fidelity", "--generated", str(tmp_path / "di"), str(tmp_path / "no-di"), "--judge", str(judge),
                 "--out", str(tmp_path / "views.json")]) == 0
    found = json.loads((tmp_path / "views.json").read_text())
    di, no_di = found[str(tmp_path / "di")], found[str(tmp_path / "no-di")]
    assert di["source"] == source and "attributes" not in di
    assert {group: read["images"] for group, read in di["views"].items()} == {
        "back view": 2, "left side view": 1, "three-quarter view": 1, "none": 1}
    assert di["views"]["back view"]["read_as"] == {"front": 0.0, "back": 1.0, "left": 0.0, "right": 0.0}
    assert list(no_di["views"]) == ["none"] and no_di["views"]["none"]["images"] == 3
    assert viewpoint_group(("pose", "Right side view")) == "right side view"


def test_fidelity_refuses_a_judge_with_neither_attribute_nor_view_heads(tmp_path, capsys):
    judge = AttributeNet({"hat type": ["none", "cap"]}, "mobilenet_v2", None).save(tmp_path / "judge")
    write_generated(tmp_path / "gen", "cuhk01:/nowhere", [(1, noise_image(1, (32, 64)))])
    assert main(["fidelity", "--generated", str(tmp_path / "gen"), "--judge", str(judge)]) == 2
    assert "neither PETA attribute heads" in capsys.readouterr().err
