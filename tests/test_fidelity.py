"""The attribute classifier that judges generators, and the prompt-fidelity measurement built on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from diffreid.cli import main
from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.judges.attribute_classifier import labelled_images, load_attribute_classifier, read_labels
from diffreid.judges.attribute_diversity import new_attribute_values
from diffreid.synthesis.base_model import MiniatureShape, new_miniature
from diffreid.synthesis.captioners.procedural import procedural_caption

from generated_dirs import write_generated
from prompt_fidelity import prompt_fidelity


@pytest.fixture(scope="module")
def trained(tiny_persons, tmp_path_factory):
    out = tmp_path_factory.mktemp("attributes") / "clf"
    assert main(["attributes", "--data", f"market1501:{tiny_persons}", "--out", str(out), "--epochs", "1",
                 "--batch-size", "16"]) == 0
    return out


def test_labels_come_from_the_identity_attributes(tiny_persons):
    table = json.loads((tiny_persons / "attributes.json").read_text())
    items = labelled_images(f"market1501:{tiny_persons}", ("train",))
    path, labels = items[0]
    pid = int(path.name[:4])
    assert labels == read_labels(table[f"{pid:04d}"])
    assert labels["upper colour"] == table[f"{pid:04d}"]["upper"]["colour"]


def test_classifier_trains_saves_and_reloads(tiny_persons, trained, tmp_path):
    accuracy = json.loads((trained / "accuracy.json").read_text())
    loaded = load_attribute_classifier(trained)
    assert set(accuracy["accuracy"]) == set(loaded.vocabulary) and accuracy["test_images"] > 0
    images = [Image.open(p) for p, _ in labelled_images(f"market1501:{tiny_persons}", ("query",))[:4]]
    assert loaded.predict(images) == load_attribute_classifier(trained).predict(images)  # the same weights back
    with pytest.raises(DiffreidError, match="vocabulary.json"):
        load_attribute_classifier(tmp_path)

    model = new_miniature(MiniatureShape(image_size=(64, 32), unet_channels=(32, 64), text_hidden=32,
                                         text_layers=1, text_heads=1))
    result = prompt_fidelity(model, loaded, f"market1501:{tiny_persons}", n=3, steps=2)
    table = json.loads((tiny_persons / "attributes.json").read_text())
    assert result["samples"] == 3 and result["prompts"][0] in {procedural_caption(a) for a in table.values()}
    assert all(0 <= v <= 1 for v in result["fidelity"].values())


def test_agreement_counts_exact_shades_and_colour_families():
    from prompt_fidelity import agreement

    wanted = [{"upper colour": "navy blue", "lower colour": "beige"}, {"upper colour": "red", "lower colour": "black"}]
    read = [{"upper colour": "black", "lower colour": "khaki"}, {"upper colour": "red", "lower colour": "white"}]
    hits = agreement(read, wanted)
    assert hits["upper colour"] == 0.5 and hits["lower colour"] == 0.0 and hits["both"] == 0.0
    assert hits["both (colour family)"] == 0.5  # navy/black and beige/khaki are one family each; black/white are not
    assert hits["upper colour (family)"] == 1.0 and hits["lower colour (family)"] == 0.5


class _RedReader:
    """Reads one attribute from the image itself: its mean red, in four steps."""

    def predict(self, images):
        return [{"upper colour": str(int(np.asarray(image)[..., 0].mean()) // 64)} for image in images]


def test_new_attribute_values_are_those_no_input_image_showed(tiny_persons, trained, tmp_path):
    source = f"market1501:{tiny_persons}"
    inputs = {}
    for record in load_dataset(source).train:
        inputs.setdefault(record.pid, []).append(record.path)
    a, b = sorted(inputs)[:2]
    copies = [(pid, Image.open(path).convert("RGB")) for pid in (a, b) for path in inputs[pid]]
    extremes = [(b, Image.new("RGB", (64, 128), (255, 0, 0))), (b, Image.new("RGB", (64, 128), (0, 0, 0)))]
    write_generated(tmp_path / "gen", source, copies + extremes)

    reader = _RedReader()
    read_b = {value["upper colour"] for value in reader.predict([Image.open(p) for p in inputs[b]])}
    counted = new_attribute_values(reader, tmp_path / "gen")
    assert counted["identities"] == 2 and counted["images"] == len(copies) + 2
    assert counted["new_values"] == len({"3", "0"} - read_b) / 2  # a showed nothing new; b the two extremes
    assert counted["new_per_attribute"] == {"upper colour": counted["new_values"]}
    # at as many images per identity as b's input, b's extremes are not reached: nothing new
    assert new_attribute_values(reader, tmp_path / "gen", per_identity=len(inputs[b]))["new_values"] == 0

    # the real classifier, through the CLI: its own input images read back show nothing new
    write_generated(tmp_path / "same", source, copies)
    assert main(["diversity", "--generated", str(tmp_path / "same"), "--classifier", str(trained),
                 "--out", str(tmp_path / "diversity.json")]) == 0
    found = json.loads((tmp_path / "diversity.json").read_text())[str(tmp_path / "same")]
    assert found["new_values"] == 0 and found["input_values"] == found["generated_values"] >= 7

    write_generated(tmp_path / "strangers", source, [(9999, Image.new("RGB", (64, 128)))])
    with pytest.raises(DiffreidError, match="none of its identities has training images"):
        new_attribute_values(reader, tmp_path / "strangers")
