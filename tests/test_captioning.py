"""Captioning (LPE part 1): attribute captions from all three sources, BLIP-2 through
from_pretrained on a tiny random checkpoint, the resumable stage and the description merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffreid.cli import main
from diffreid.config import CaptionConfig, SynthConfig
from diffreid.data import load_dataset
from diffreid.data.synth import synthesize
from diffreid.synthesis import captioning
from diffreid.synthesis.captioners.attributes import AttributeCaptioner
from diffreid.synthesis.captioners.lin_attributes import lin_caption, read_lin_attributes
from diffreid.synthesis.captioners.procedural import procedural_caption
from diffreid.synthesis.descriptions import merge_captions

PID1 = ("a slim person with pale skin and short brown hair, wearing a grey long-sleeved shirt, black shorts and "
        "black sneakers, carrying a brown shoulder bag")


@pytest.fixture(scope="module")
def persons(tmp_path_factory) -> Path:
    """Six procedural identities (three in train), seed 0: identity 1 is the one PID1 describes."""
    return synthesize(SynthConfig(out=tmp_path_factory.mktemp("synth") / "persons", identities=6, seed=0))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _caption(persons: Path, out: Path, *flags: str) -> int:
    return main(["caption", "--data", f"market1501:{persons}", "--out", str(out), *flags])


# Attribute sources


def test_procedural_caption_of_a_known_identity(persons):
    attributes = json.loads((persons / "attributes.json").read_text())
    assert procedural_caption(attributes["0001"]) == PID1


def test_procedural_patterns_hair_and_articles():
    person = {"build": "average", "hair": {"style": "ponytail", "colour": "auburn"},
              "upper": {"type": "t-shirt", "colour": "orange", "pattern": "logo on the front",
                        "pattern colour": "white"},
              "lower": {"type": "skirt", "colour": "olive"}, "hat": {"type": "beanie", "colour": "black"},
              "bag": {"type": "none"}}
    assert procedural_caption(person) == ("a person with an auburn ponytail, wearing an orange t-shirt with a white "
                                          "logo on the front, an olive skirt and a black beanie")
    checked = {"upper": {"type": "jacket", "colour": "black", "pattern": "checked", "pattern colour": "red"}}
    assert procedural_caption(checked) == "a person wearing a black and red checked jacket"


@pytest.mark.shared
def test_market_attributes_decoded_as_published(shared_data):
    name, splits = read_lin_attributes(shared_data / "attributes" / "market_attribute.mat")
    assert name == "market" and {split: len(table) for split, table in splits.items()} == {"train": 751, "test": 750}
    assert not set(splits["train"]) & set(splits["test"])
    first = splits["test"][1]
    assert first["gender"] == "female" and first["age"] == "teenager" and first["hair"] == "long"
    assert (first["up"], first["down"], first["clothes"]) == ("short", "short", "dress")
    assert first["up colours"] == ["white"] and first["down colours"] == ["white"]
    assert not (first["hat"] or first["backpack"] or first["bag"] or first["handbag"])
    assert lin_caption(name, first) == ("a young woman with long hair, wearing a short-sleeved white top and "
                                        "a short white skirt")
    assert lin_caption(name, splits["train"][2]) == ("a young man with short hair, wearing a short-sleeved red top "
                                                     "and blue shorts")
    assert lin_caption(name, splits["train"][1500]) == ("a young man with short hair, wearing a short-sleeved green "
                                                        "top and gray shorts, carrying a backpack")


@pytest.mark.shared
def test_duke_attributes_decoded_as_published(shared_data):
    name, splits = read_lin_attributes(shared_data / "attributes" / "duke_attribute.mat")
    assert name == "duke" and {split: len(table) for split, table in splits.items()} == {"train": 702, "test": 1110}
    first = splits["train"][1]
    assert (first["gender"], first["top"], first["shoes"], first["boots"], first["backpack"]) == (
        "male", "short", "light", False, True)
    assert lin_caption(name, first) == ("a man wearing a black top, black bottoms and light-coloured shoes, "
                                        "carrying a backpack")
    unannotated = splits["train"][370]  # `top` is 0 in the file: not annotated, so not said
    assert "top" not in unannotated and unannotated["boots"] and unannotated["gender"] == "female"
    assert lin_caption(name, unannotated) == "a woman wearing a black top, blue bottoms and dark boots, carrying a bag"
    assert lin_caption(name, splits["train"][8]).startswith("a man wearing a long black coat")


# The stage


def test_cli_writes_captions_identities_and_manifest(persons, tmp_path):
    assert _caption(persons, tmp_path / "out", "--captioner", "attributes", "--batch-size", "7") == 0
    train = load_dataset(f"market1501:{persons}").train
    captions = _jsonl(tmp_path / "out" / "captions.jsonl")
    assert [(c["image"], c["pid"], c["camid"]) for c in captions] == [
        (r.path.relative_to(persons).as_posix(), r.pid, r.camid) for r in sorted(train, key=lambda r: r.pid)]
    assert all(c["caption"] == PID1 for c in captions if c["pid"] == 1)
    identities = _jsonl(tmp_path / "out" / "identities.jsonl")
    assert [i["pid"] for i in identities] == [1, 3, 5]
    assert identities[0]["description"] == PID1 and sum(i["n_images"] for i in identities) == len(train)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["stage"] == "caption" and manifest["counts"]["images"] == len(train)
    assert manifest["inputs"]["attributes"]["sha256"]


def test_identity_without_attributes_is_reported_and_skipped(persons, tmp_path, caplog):
    attributes = json.loads((persons / "attributes.json").read_text())
    del attributes["0003"]
    (tmp_path / "attributes.json").write_text(json.dumps(attributes))
    captioning.run(CaptionConfig(data=f"market1501:{persons}", out=tmp_path / "out", captioner="attributes",
                                 attributes=tmp_path / "attributes.json"))
    assert "no attributes for identity 3" in caplog.text
    assert [i["pid"] for i in _jsonl(tmp_path / "out" / "identities.jsonl")] == [1, 5]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["skipped_images"] > 0


def test_killed_run_resumes_to_identical_output(persons, tmp_path, monkeypatch):
    config = dict(data=f"market1501:{persons}", captioner="attributes", batch_size=6,
                  splits=("train", "query", "gallery"))
    captioning.run(CaptionConfig(out=tmp_path / "whole", **config))

    calls, kill = [], [True]
    original = AttributeCaptioner.caption

    def dies_on_fourth_batch(self, records):
        calls.append([r.pid for r in records])
        if kill[0] and len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, records)

    monkeypatch.setattr(AttributeCaptioner, "caption", dies_on_fourth_batch)
    with pytest.raises(KeyboardInterrupt):
        captioning.run(CaptionConfig(out=tmp_path / "resumed", **config))
    finished = {int(p.stem) for p in (tmp_path / "resumed" / ".units").glob("*.jsonl")}
    assert finished and not (tmp_path / "resumed" / "captions.jsonl").exists()

    calls.clear()
    kill[0] = False
    captioning.run(CaptionConfig(out=tmp_path / "resumed", **config))
    assert not finished & {pid for batch in calls for pid in batch}  # finished identities are not captioned again
    for name in ("captions.jsonl", "identities.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_missing_attribute_file_is_a_clear_error(persons, tmp_path, capsys):
    missing = str(tmp_path / "no.mat")
    assert _caption(persons, tmp_path / "out", "--captioner", "attributes", "--attributes", missing) == 2
    assert "attribute file not found; pass --attributes FILE" in capsys.readouterr().err


# BLIP-2


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory) -> Path:
    """A random BLIP-2 (ViT + Q-Former + OPT) a few thousand parameters large, saved as a checkpoint folder.

    Its tokenizer is a byte-level BPE (OPT's kind) trained here on one sentence.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["a photo of a person wearing a black shirt and blue jeans, carrying a red bag"],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="</s>", eos_token="</s>", pad_token="<pad>")
    processor = Blip2Processor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer, num_query_tokens=4)
    layers = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    config = Blip2Config(
        vision_config=layers | dict(image_size=32, patch_size=8),
        qformer_config=layers | dict(encoder_hidden_size=16, vocab_size=len(tokenizer)),
        text_config=dict(model_type="opt", hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2,
                         word_embed_proj_dim=16, vocab_size=len(tokenizer), max_position_embeddings=64,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        num_query_tokens=4, image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("blip2")
    Blip2ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_blip2_captions_through_from_pretrained(persons, tiny_blip2, tmp_path):
    prompt = "a photo of a person wearing"
    assert _caption(persons, tmp_path / "out", "--model", str(tiny_blip2), "--batch-size", "5", "--num-beams", "2",
                    "--max-new-tokens", "6", "--prompt", prompt) == 0
    captions = _jsonl(tmp_path / "out" / "captions.jsonl")
    assert len(captions) == len(load_dataset(f"market1501:{persons}").train)
    assert all(c["caption"].startswith(prompt) and c["caption"].count(prompt) == 1 for c in captions)
    assert any(len(c["caption"]) > len(prompt) for c in captions)  # something was generated and decoded
    identities = _jsonl(tmp_path / "out" / "identities.jsonl")
    assert [i["pid"] for i in identities] == [1, 3, 5] and all(i["description"] for i in identities)


def test_blip2_reports_and_skips_an_unreadable_image(persons, tiny_blip2, tmp_path, caplog):
    train = tmp_path / "data" / "bounding_box_train"
    train.mkdir(parents=True)
    for image in sorted((persons / "bounding_box_train").glob("0001_*"))[:3]:
        (train / image.name).write_bytes(image.read_bytes())
    (train / "0001_c1s1_999999_00.jpg").write_bytes(b"not a jpeg")
    captioning.run(CaptionConfig(data=f"market1501:{tmp_path / 'data'}", out=tmp_path / "out", model=str(tiny_blip2),
                                 num_beams=1, max_new_tokens=3))
    assert "0001_c1s1_999999_00.jpg: unreadable image skipped" in caplog.text
    assert len(_jsonl(tmp_path / "out" / "captions.jsonl")) == 3
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["skipped_images"] == 1


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "no-checkpoint"])
def test_bad_blip2_model_is_a_clear_error(persons, tmp_path, capsys, exists):
    model = tmp_path / "model"
    if exists:
        model.mkdir()
    assert _caption(persons, tmp_path / "out", "--model", str(model)) == 2
    error = capsys.readouterr().err
    assert f"cannot load a BLIP-2 model from '{model}'" in error and "local folder" in error
    assert not (tmp_path / "out").exists()


# Identity descriptions


def test_identical_captions_merge_to_themselves():
    caption = ("a young woman with long hair, wearing a short-sleeved white top and a long black skirt, "
               "carrying a handbag")
    assert merge_captions([caption] * 3) == caption


def test_description_keeps_what_most_images_agree_on():
    captions = ["a man wearing a black shirt and blue jeans", "a man wearing a black shirt and jeans",
                "a man wearing a white shirt and blue jeans", "A man wearing a black shirt, carrying a bag."]
    assert merge_captions(captions) == "a man wearing a black shirt and blue jeans"


def test_description_drops_the_odd_image_out():
    captions = ["a man in a red coat", "a woman with a dog", "a woman with a dog, smiling"]
    assert merge_captions(captions) == "a woman with a dog"


def test_description_without_agreement_is_the_most_central_caption():
    assert merge_captions(["a man in a red coat", "a woman", "a child"]) == "a man in a red coat"
    assert merge_captions(["", " "]) == ""
