"""The attribute classifier that judges generators, and the prompt-fidelity measurement built on it."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from diffreid.errors import DiffreidError
from diffreid.evaluation.attribute_classifier import (
    labelled_images, load_attribute_classifier, read_labels, train_attribute_classifier)
from diffreid.evaluation.fidelity import prompt_fidelity
from diffreid.synthesis.base_model import MiniatureShape, new_miniature
from diffreid.synthesis.captioners.procedural import procedural_caption


def test_labels_come_from_the_identity_attributes(tiny_persons):
    table = json.loads((tiny_persons / "attributes.json").read_text())
    items = labelled_images(f"market1501:{tiny_persons}", ("train",))
    path, labels = items[0]
    pid = int(path.name[:4])
    assert labels == read_labels(table[f"{pid:04d}"])
    assert labels["upper colour"] == table[f"{pid:04d}"]["upper"]["colour"]


def test_classifier_trains_saves_and_reloads(tiny_persons, tmp_path):
    net = train_attribute_classifier([f"market1501:{tiny_persons}"], tmp_path / "clf", epochs=1, batch_size=16)
    accuracy = json.loads((tmp_path / "clf" / "accuracy.json").read_text())
    assert set(accuracy["accuracy"]) == set(net.vocabulary) and accuracy["test_images"] > 0
    loaded = load_attribute_classifier(tmp_path / "clf")
    images = [Image.open(p) for p, _ in labelled_images(f"market1501:{tiny_persons}", ("query",))[:4]]
    assert loaded.predict(images) == net.eval().predict(images)
    with pytest.raises(DiffreidError, match="vocabulary.json"):
        load_attribute_classifier(tmp_path)

    model = new_miniature(MiniatureShape(image_size=(64, 32), unet_channels=(32, 64), text_hidden=32,
                                         text_layers=1, text_heads=1))
    result = prompt_fidelity(model, loaded, f"market1501:{tiny_persons}", n=3, steps=2)
    table = json.loads((tiny_persons / "attributes.json").read_text())
    assert result["samples"] == 3 and result["prompts"][0] in {procedural_caption(a) for a in table.values()}
    assert all(0 <= v <= 1 for v in result["fidelity"].values())


def test_agreement_counts_exact_shades_and_colour_families():
    from diffreid.evaluation.fidelity import agreement

    wanted = [{"upper colour": "navy blue", "lower colour": "beige"}, {"upper colour": "red", "lower colour": "black"}]
    read = [{"upper colour": "black", "lower colour": "khaki"}, {"upper colour": "red", "lower colour": "white"}]
    hits = agreement(read, wanted)
    assert hits["upper colour"] == 0.5 and hits["lower colour"] == 0.0 and hits["both"] == 0.0
    assert hits["both (colour family)"] == 0.5  # navy/black and beige/khaki are one family each; black/white are not
