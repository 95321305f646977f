"""The image-level IIR: a UNet that reads a reference image of the person, trained by base-train
(pairs of one person's images, references dropped for guidance) and drawn from by generate --references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffreid.config import BaseTrainConfig, GenerateConfig
from diffreid.errors import DiffreidError
from diffreid.synthesis import base_train
from diffreid.synthesis.base_model import MiniatureShape, load_base_model, new_miniature, with_reference_input
from diffreid.synthesis.base_train import BatchDraw, latents_at, training_images
from diffreid.synthesis.diversity import unlearnt_phrases, words
from diffreid.synthesis.sampling import guidance_branches, sample_latents

from conftest import TINY_SHAPE
from reader_trees import write_image

TINY = MiniatureShape(**TINY_SHAPE)


def _config(data, out, **overrides) -> BaseTrainConfig:
    values = dict(data=tuple(data), out=out, image_size=TINY.image_size, unet_channels=TINY.unet_channels,
                  text_hidden=32, text_layers=1, steps=4, batch_size=4, warmup_steps=2, checkpoint_every=2,
                  sample_every=4, sample_steps=2, log_every=2, iir="reference")
    return BaseTrainConfig(**{**values, **overrides})


def test_a_widened_unet_draws_as_before_until_trained():
    unet = new_miniature(TINY, seed=1).unet.eval()
    widened = with_reference_input(unet).eval()
    assert widened.config.in_channels == 2 * unet.config.in_channels
    noisy = torch.randn(2, unet.config.in_channels, 8, 4)
    context = torch.randn(2, 77, 32)
    with torch.no_grad():
        before = unet(noisy, 10, encoder_hidden_states=context).sample
        after = widened(torch.cat([noisy, torch.randn_like(noisy)], 1), 10, encoder_hidden_states=context).sample
    torch.testing.assert_close(before, after)


def _labels(sizes: list[int], source: int = 0) -> list[dict]:
    """Identity i of `sizes` has sizes[i] images, from cameras 1, 2, 1, 2, ..."""
    return [{"caption": "a person", "identity": f"{source}:{pid}", "source": source, "camera": 1 + k % 2}
            for pid, n in enumerate(sizes) for k in range(n)]


def test_references_are_another_image_of_the_same_person_drawn_from_the_step(tmp_path):
    labels = _labels([1, 2, 3, 4]) + _labels([2, 2], source=1)
    config = _config(["market1501:a", "market1501:b"], tmp_path, batch_size=32, reference_dropout=0.0)
    draw = BatchDraw(config, labels)
    for step in range(20):
        batch = draw(step)
        for i, r in zip(batch["index"].tolist(), batch["reference"].tolist()):
            if labels[i]["identity"] == "0:0":  # seen once: no other image to show
                assert r == -1
            else:
                assert r != i and labels[r]["identity"] == labels[i]["identity"]
    again = BatchDraw(config, labels)(7)  # a resumed run draws the same batch
    assert all(torch.equal(v, again[k]) for k, v in draw(7).items() if k != "generator")
    dropped = BatchDraw(_config(["market1501:a", "market1501:b"], tmp_path, batch_size=32, reference_dropout=1.0),
                        labels)(0)
    assert (dropped["reference"] == -1).all()


def test_references_can_be_asked_from_another_camera_only(tmp_path):
    labels = _labels([1, 2, 4]) + [{"caption": "a person", "identity": "0:9", "source": 0, "camera": 1}] * 2
    config = _config(["market1501:a"], tmp_path, batch_size=32, reference_dropout=0.0, reference_pairs="other_camera")
    draw = BatchDraw(config, labels)
    seen = set()
    for step in range(20):
        batch = draw(step)
        for i, r in zip(batch["index"].tolist(), batch["reference"].tolist()):
            if labels[i]["identity"] in ("0:0", "0:9"):  # seen once, or by one camera only: no new view to show
                assert r == -1
            else:
                assert labels[r]["identity"] == labels[i]["identity"] and labels[r]["camera"] != labels[i]["camera"]
                seen.add(r)
    assert len(seen) == 6  # every image of a person with two cameras serves as a reference
    with pytest.raises(DiffreidError, match="delete OUT/cache"):
        BatchDraw(config, [{k: v for k, v in label.items() if k != "camera"} for label in labels])
    with pytest.raises(DiffreidError, match="reference_pairs='same'"):
        BatchDraw(_config(["market1501:a"], tmp_path, reference_pairs="same"), labels)


def test_data_weights_set_each_datasets_share_of_a_batch(tmp_path):
    labels = _labels([2] * 50) + _labels([2] * 5, source=1)  # 100 images against 10
    only_second = BatchDraw(_config(["market1501:a", "market1501:b"], tmp_path, batch_size=64,
                                    data_weights=(0.0, 1.0)), labels)(0)
    assert all(labels[i]["source"] == 1 for i in only_second["index"].tolist())
    even = BatchDraw(_config(["market1501:a", "market1501:b"], tmp_path, batch_size=64, data_weights=(1.0, 1.0)),
                     labels)
    share = np.mean([labels[i]["source"] for s in range(20) for i in even(s)["index"].tolist()])
    assert 0.4 < share < 0.6  # uniform over images would give 10 / 110
    with pytest.raises(DiffreidError, match="one weight"):
        BatchDraw(_config(["market1501:a", "market1501:b"], tmp_path, data_weights=(1.0,)), labels)


def test_references_are_zeros_where_dropped_and_flip_where_asked():
    latents = torch.randn(3, 4, 8, 4)
    found = latents_at(latents, torch.tensor([2, -1, 0]), torch.tensor([False, False, True]))
    torch.testing.assert_close(found[0], latents[2])
    assert (found[1] == 0).all()
    torch.testing.assert_close(found[2], latents[0].flip(-1))


def test_guidance_on_reference_and_text_combines_three_branches():
    model = new_miniature(TINY, seed=0, reference=True)
    assert model.takes_reference and not new_miniature(TINY, seed=0).takes_reference
    context, uncond = torch.randn(2, 77, 32), torch.randn(1, 77, 32)
    reference = torch.randn(2, model.codec.latent_channels, *model.latent_size)
    branches, weights = guidance_branches(model, context, uncond, reference, guidance=5.0, reference_guidance=2.0)
    assert len(branches) == 3 and sum(weights) == pytest.approx(1.0)
    assert (branches[0][0] == 0).all() and torch.equal(branches[2][0], reference)
    assert torch.equal(branches[2][1], context) and torch.equal(branches[1][1], uncond.expand(2, -1, -1))
    # without a reference the model is guided on text alone, the reference input dropped to zeros
    branches, weights = guidance_branches(model, context, uncond, None, guidance=5.0, reference_guidance=2.0)
    assert len(branches) == 2 and all((r == 0).all() for r, _ in branches) and weights == [-4.0, 5.0]


def test_several_references_share_each_reference_branch_and_one_is_the_single_case():
    model = new_miniature(TINY, seed=0, reference=True)
    context, uncond = torch.randn(2, 77, 32), torch.randn(1, 77, 32)
    first, second = (torch.randn(2, model.codec.latent_channels, *model.latent_size) for _ in range(2))
    branches, weights = guidance_branches(model, context, uncond, [first, second], guidance=5.0, reference_guidance=8.0)
    assert len(branches) == 5 and weights == [-7.0, 1.5, 1.5, 2.5, 2.5] and sum(weights) == pytest.approx(1.0)
    assert [torch.equal(r, x) for (r, _), x in zip(branches[1:], (first, second, first, second))] == [True] * 4
    for guidance in (5.0, 1.0):  # a list of one is the single reference, to the last digit
        for scale in (8.0, 1.0):
            one, w_one = guidance_branches(model, context, uncond, first, guidance, scale)
            listed, w_listed = guidance_branches(model, context, uncond, [first], guidance, scale)
            assert w_one == w_listed and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                                             for a, b in zip(one, listed))
    branches, weights = guidance_branches(model, context, uncond, [first, second], guidance=1.0, reference_guidance=1.0)
    assert weights == [0.5, 0.5] and all(torch.equal(c, context) for _, c in branches)


def test_base_train_learns_from_references_and_widens_a_text_only_miniature(tiny_persons, tmp_path):
    out = base_train.run(_config([f"market1501:{tiny_persons}"], tmp_path / "ref"))
    model = load_base_model(out / "model")
    assert model.takes_reference
    sheet = Image.open(out / "samples" / "step-000004.png")
    assert sheet.size[1] == 3 * TINY.image_size[0]  # the references' row above the two seeds' rows
    assert json.loads((out / "samples" / "step-000004.json").read_text())["references"]
    # it keeps the words its text encoder read, for finetune and generate to name injected phrases it never did
    assert model.caption_words == words([i.caption for i in training_images(_config([f"market1501:{tiny_persons}"],
                                                                                       out))])

    text_only = tmp_path / "text-only"
    new_miniature(TINY, seed=0).save_pretrained(text_only)
    widened = load_base_model(base_train.run(_config([f"market1501:{tiny_persons}"], tmp_path / "widened",
                                                     init=str(text_only), steps=2, lr=0.0, ema_decay=0.0,
                                                     checkpoint_every=2, sample_every=2)) / "model")
    start = load_base_model(text_only).unet.conv_in.weight
    channels = start.shape[1]
    torch.testing.assert_close(widened.unet.conv_in.weight[:, :channels], start)
    assert (widened.unet.conv_in.weight[:, channels:] == 0).all()
    with pytest.raises(DiffreidError, match="iir: reference"):
        base_train.run(_config([f"market1501:{tiny_persons}"], tmp_path / "other", init=str(out / "model"),
                               iir=None))


def test_a_reference_read_as_tokens_leaves_the_input_alone_and_steers_the_drawing():
    model = new_miniature(TINY, seed=0, reference=True, reference_tokens=4).to("cpu")
    assert model.takes_reference and not model.reference_channels
    assert model.unet.config.in_channels == model.codec.latent_channels
    context, uncond = model.encode_text(["a person"] * 2), model.encode_text([""])
    reference = torch.randn(2, model.codec.latent_channels, *model.latent_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = model.reference_tokens(reference)
    assert tokens.shape == (2, 4, model.unet.config.cross_attention_dim)
    drawn = sample_latents(model, context, uncond, [1, 2], steps=2, guidance=1.0, reference=reference)
    assert not torch.allclose(drawn, sample_latents(model, context, uncond, [1, 2], steps=2, guidance=1.0,
                                                    reference=reference.flip(0)))
    # reference guidance 1 with one reference is the reference branch alone: the same image as no guidance split
    once = sample_latents(model, context, uncond, [1, 2], steps=2, guidance=1.0, reference=reference,
                          reference_guidance=1.0)
    torch.testing.assert_close(once, sample_latents(model, context, uncond, [1, 2], steps=2, guidance=1.0,
                                                    reference=[reference, reference], reference_guidance=1.0))


def test_base_train_learns_references_as_tokens_and_resumes_them(tiny_persons, tmp_path):
    data = [f"market1501:{tiny_persons}"]
    out = base_train.run(_config(data, tmp_path / "tokens", reference_tokens=4))
    model = load_base_model(out / "model")
    assert model.reference_tokens is not None and not model.reference_channels
    start = new_miniature(TINY, seed=0, reference=True, reference_tokens=4)
    trained = dict(model.reference_tokens.named_parameters())
    assert any(not torch.allclose(p, trained[name]) for name, p in start.reference_tokens.named_parameters())
    finished = load_file(out / "checkpoints" / "step-000004" / "model_2.safetensors")  # the reader's weights
    shutil.rmtree(out / "checkpoints" / "step-000004")
    base_train.run(_config(data, tmp_path / "tokens", reference_tokens=4))  # killed after step 2, started again
    resumed = load_file(out / "checkpoints" / "step-000004" / "model_2.safetensors")
    assert finished.keys() == resumed.keys() and all(torch.equal(finished[k], resumed[k]) for k in finished)

    # a text-only miniature goes on with a new reader; one that reads channels cannot switch to tokens
    text_only = tmp_path / "text-only"
    new_miniature(TINY, seed=0).save_pretrained(text_only)
    grown = load_base_model(base_train.run(_config(data, tmp_path / "grown", init=str(text_only), steps=2,
                                                   reference_tokens=4)) / "model")
    assert grown.reference_tokens is not None and grown.unet.config.in_channels == grown.codec.latent_channels
    channels = tmp_path / "channels"
    new_miniature(TINY, seed=0, reference=True).save_pretrained(channels)
    with pytest.raises(DiffreidError, match="input channels; go on with reference_tokens=0"):
        base_train.run(_config(data, tmp_path / "switch", init=str(channels), reference_tokens=4))
    with pytest.raises(DiffreidError, match="with iir: reference"):
        base_train.run(_config(data, tmp_path / "no-iir", iir=None, reference_tokens=4))


def test_going_on_from_a_miniature_encodes_latents_in_its_scale_once(tiny_persons, tmp_path, monkeypatch):
    start = new_miniature(TINY, seed=0)
    start.codec.shift, start.codec.scale = 0.25, 2.5
    start.save_pretrained(tmp_path / "start")
    seen = {}
    monkeypatch.setattr(base_train, "_train", lambda config, out, model, latents, labels, *rest:
                        seen.update(latents=latents, labels=labels, model=model))
    base_train.run(_config([f"market1501:{tiny_persons}"], tmp_path / "run", init=str(tmp_path / "start"), iir=None))
    first = base_train.load_image(Path(seen["labels"][0]["path"]), TINY.image_size)
    with torch.no_grad():
        expected = seen["model"].codec.encode(first[None])[0]
    torch.testing.assert_close(seen["latents"][0], expected, atol=2e-3, rtol=0)  # not normalised twice


def test_training_images_caption_peta_sets_and_leave_out_the_judges_held_out_people(tmp_path):
    peta = tmp_path / "peta" / "PRID"
    for pid in (1, 2, 3):
        for cam in "ab":
            write_image(peta / f"{pid:04d}_{cam}.png", seed=pid, size=(16, 32))
    (peta / "Label.txt").write_text("".join(f"{pid} personalMale upperBodyRed lowerBodyBlack lowerBodyJeans\n"
                                            for pid in (1, 2, 3)))
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "accuracy.json").write_text(json.dumps({"held_out_identities": [
        {"data": f"peta-all:{tmp_path / 'peta'}", "set": "PRID", "pid": 2}]}))
    items = training_images(_config([f"prid:{peta}"], tmp_path / "run", exclude_judged=judge))
    assert sorted({i.identity for i in items}) == ["0:1", "0:3"] and len(items) == 4
    assert all(i.caption.startswith("a man") and "red" in i.caption and "jeans" in i.caption for i in items)
    with pytest.raises(DiffreidError, match="accuracy.json"):
        training_images(_config([f"prid:{peta}"], tmp_path / "run", exclude_judged=tmp_path))


def test_injected_phrases_the_base_model_never_read_are_named(reference_base, tiny_persons, tmp_path, caplog):
    from diffreid.data import load_dataset

    known = words(["a man in a red shirt and black trousers, back view", "a photo of a person"])
    unlearnt = unlearnt_phrases(known)
    assert "back view" not in unlearnt and "front view" in unlearnt and "in the rain" in unlearnt
    model = load_base_model(reference_base)
    assert model.caption_words is None  # no record: nothing to warn about
    model.caption_words = known
    model.save_pretrained(tmp_path / "base")
    assert load_base_model(tmp_path / "base").caption_words == known
    with caplog.at_level("WARNING"):
        _generate(tmp_path / "base", tiny_persons, tmp_path / "gen", per_identity=1,
                  identities=(load_dataset(f"market1501:{tiny_persons}").query[0].pid,))
    warned = [r.getMessage() for r in caplog.records if "never read" in r.getMessage()]
    assert len(warned) == 1 and "in the rain" in warned[0] and "back view" not in warned[0]


@pytest.fixture(scope="module")
def reference_base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reference") / "base"
    new_miniature(TINY, seed=0, reference=True).save_pretrained(folder)
    return folder


def test_generate_draws_every_person_of_a_split_from_their_own_images(reference_base, tiny_persons, tmp_path):
    from diffreid.data import load_dataset
    from diffreid.filtering.generated import read_generated

    query = load_dataset(f"market1501:{tiny_persons}").query
    out = _generate(reference_base, tiny_persons, tmp_path / "gen")
    source, items = read_generated(out)
    assert source == f"market1501:{tiny_persons}"
    assert sorted({i.pid for i in items}) == sorted({r.pid for r in query}) and len(items) == 3 * len({r.pid for r in query})
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    for entry in entries:
        assert (Path(tiny_persons) / entry["reference"]).resolve() in {Path(r.path).resolve() for r in query
                                                                       if r.pid == entry["pid"]}
        assert entry["injected"] and entry["prompt"].startswith("a photo of a person, ")
        assert (out / entry["file"]).is_file()
    # the same seed draws the same images whatever the batch (up to one level of rounding: a
    # batch of another size takes other BLAS paths, and a float at a .5 boundary may round either way)
    again = _generate(reference_base, tiny_persons, tmp_path / "again", batch_size=3,
                      identities=(entries[0]["pid"],))
    first = entries[0]["file"]
    drawn, redrawn = (np.asarray(Image.open(folder / first)).astype(int) for folder in (out, again))
    assert np.abs(drawn - redrawn).max() <= 1 and (drawn != redrawn).mean() < 0.01
    # the reference changes what is drawn
    other = _generate(reference_base, tiny_persons, tmp_path / "other", reference_guidance=1.0,
                      identities=(entries[0]["pid"],))
    assert not np.array_equal(np.asarray(Image.open(out / first)), np.asarray(Image.open(other / first)))
    with pytest.raises(DiffreidError, match="not among"):
        _generate(reference_base, tiny_persons, tmp_path / "x", identities=(99999,))


def test_generate_batches_across_people_and_draws_the_same_images(reference_base, tiny_persons, tmp_path,
                                                                 monkeypatch):
    from diffreid.synthesis import generate

    sizes = []
    real = generate.sample_latents
    monkeypatch.setattr(generate, "sample_latents", lambda model, context, *a, **k: sizes.append(len(context))
                        or real(model, context, *a, **k))
    from diffreid.data import load_dataset

    people = len({r.pid for r in load_dataset(f"market1501:{tiny_persons}").query})
    out = _generate(reference_base, tiny_persons, tmp_path / "wide", per_identity=1, batch_size=4)
    assert sizes == [4] * (people // 4) + ([people % 4] if people % 4 else [])
    assert len(list((out / ".units").glob("*.jsonl"))) == people
    one = _generate(reference_base, tiny_persons, tmp_path / "one", per_identity=1, batch_size=1)
    for entry in (json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()):
        wide, alone = (np.asarray(Image.open(folder / entry["file"]), dtype=int) for folder in (out, one))
        assert np.abs(wide - alone).max() <= 1  # batch composition changes nothing but float rounding


def test_an_unreadable_reference_is_reported_and_skipped(reference_base, tiny_persons, tmp_path, caplog):
    import shutil

    from diffreid.data import load_dataset

    persons = tmp_path / "persons"
    shutil.copytree(tiny_persons, persons)
    query = load_dataset(f"market1501:{persons}").query
    by_pid = {}
    for record in query:
        by_pid.setdefault(record.pid, []).append(Path(record.path))
    several = min(pid for pid, paths in by_pid.items() if len(paths) > 1)
    lost = next(pid for pid in sorted(by_pid) if pid != several)
    for path in [by_pid[several][0], *by_pid[lost]]:
        path.write_bytes(b"not a picture")
    out = _generate(reference_base, persons, tmp_path / "gen", per_identity=2)
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert lost not in {e["pid"] for e in entries} and f"person {lost}: no readable reference" in caplog.text
    # the person with a readable image left is drawn from it alone
    assert {e["reference"] for e in entries if e["pid"] == several} <= {
        p.relative_to(persons).as_posix() for p in by_pid[several][1:]}
    assert f"{by_pid[several][0]}: unreadable reference image" in caplog.text
    assert json.loads((out / "manifest.json").read_text())["counts"]["images"] == len(entries)


def test_strength_below_one_starts_from_the_reference(reference_base, tiny_persons, tmp_path):
    from diffreid.data import load_dataset

    query = load_dataset(f"market1501:{tiny_persons}").query
    pid = sorted({r.pid for r in query})[0]
    difference = {}
    for strength in (1.0, 0.5, 0.1):
        out = _generate(reference_base, tiny_persons, tmp_path / f"s{strength}", per_identity=2, steps=10,
                        strength=strength, identities=(pid,))
        entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        difference[strength] = np.mean([
            np.abs(np.asarray(Image.open(out / e["file"]), dtype=float)
                   - np.asarray(Image.open(Path(tiny_persons) / e["reference"]).convert("RGB").resize(
                       Image.open(out / e["file"]).size), dtype=float)).mean() for e in entries])
    # an untrained UNet draws noise from noise, but from a lightly noised reference it keeps the picture
    assert difference[0.1] < difference[0.5] < difference[1.0] and difference[0.1] < 0.5 * difference[1.0]
    with pytest.raises(DiffreidError, match="strength"):
        _generate(reference_base, tiny_persons, tmp_path / "bad", strength=1.5, identities=(pid,))
    with pytest.raises(DiffreidError, match="give --references"):
        _generate(reference_base, tiny_persons, tmp_path / "bad", strength=0.5, references=None)


def test_each_image_can_be_drawn_from_several_of_the_persons_images(reference_base, tiny_persons, tmp_path):
    from diffreid.data import load_dataset
    from diffreid.filtering.generated import read_generated

    query = load_dataset(f"market1501:{tiny_persons}").query
    own = {}
    for r in sorted(query, key=lambda r: r.path):
        own.setdefault(r.pid, []).append(Path(r.path).relative_to(tiny_persons).as_posix())
    pid = next(p for p, paths in sorted(own.items()) if len(paths) >= 2)
    single = _generate(reference_base, tiny_persons, tmp_path / "one", per_identity=2, identities=(pid,))
    double = _generate(reference_base, tiny_persons, tmp_path / "two", per_identity=2, identities=(pid,),
                       references_per_image=2)
    entries = [json.loads(line) for line in (double / "manifest.jsonl").read_text().splitlines()]
    n = len(own[pid])
    for index, entry in enumerate(entries):  # each image starts at the next image, and the following one joins it
        assert entry["references"] == [own[pid][index % n], own[pid][(index + 1) % n]]
        assert entry["reference"] == entry["references"][0]
    assert [len(i.references) for i in read_generated(double)[1]] == [2, 2]
    assert "references" not in json.loads((single / "manifest.jsonl").read_text().splitlines()[0])
    first = entries[0]["file"]
    assert not np.array_equal(np.asarray(Image.open(single / first)), np.asarray(Image.open(double / first)))
    with pytest.raises(DiffreidError, match="references-per-image 0"):
        _generate(reference_base, tiny_persons, tmp_path / "bad", references_per_image=0, identities=(pid,))


def test_generate_from_references_needs_a_model_that_reads_them(tiny_base, tiny_persons, tmp_path):
    with pytest.raises(DiffreidError, match="base-train --iir reference"):
        _generate(tiny_base, tiny_persons, tmp_path / "gen")


def _generate(base, persons, out, **overrides):
    from diffreid.synthesis.generate import run

    values = dict(generator=base, out=out, references=f"market1501:{persons}", split="query", per_identity=3,
                  steps=2, batch_size=2)
    return run(GenerateConfig(**{**values, **overrides}))


def test_consistency_tells_new_views_from_copies_of_the_references(reference_base, tiny_persons, shared_data,
                                                                    tmp_path):
    from diffreid.data import load_dataset
    from diffreid.judges.consistency import identity_consistency

    out = _generate(reference_base, tiny_persons, tmp_path / "gen", per_identity=2)
    model = str(shared_data / "models" / "osnet_x0_25_msmt17.onnx")
    scores = identity_consistency(model, out)
    drawn, views = scores["copies"], scores["copies_real_views"]
    assert drawn["images"] == len((out / "manifest.jsonl").read_text().splitlines())
    assert drawn["pixel_difference_to_nearest_reference"] > 0.05  # an untrained model draws no copy
    # the yardstick: the same people's real images that served as no reference, against those that did
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    used = {(Path(tiny_persons) / e["reference"]).resolve() for e in entries}
    people = {e["pid"] for e in entries}
    dataset = load_dataset(f"market1501:{tiny_persons}")
    others = [r for split in ("train", "query", "gallery") for r in dataset.split(split)
              if r.pid in people and Path(r.path).resolve() not in used]
    assert views["images"] == len(others) > 0
    assert 0 < views["pixel_difference_to_nearest_reference"] and views["cosine_to_nearest_reference"] < 0.98
    # the references themselves, put in their place, are copies: cosine 1, pixel difference 0
    for line in (out / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        Image.open(Path(tiny_persons) / entry["reference"]).save(out / entry["file"])
    copied = identity_consistency(model, out)["copies"]
    assert copied["passes_near_duplicate_guard"] == 0.0 and copied["cosine_to_nearest_reference"] > 0.99
    assert copied["pixel_difference_to_nearest_reference"] < 0.02
    assert identity_consistency(model, out)["copies_real_views"] == views  # real images alone set the yardstick


def test_fidelity_reads_peta_labels_on_generated_and_real_images(reference_base, tmp_path):
    from diffreid.cli import main
    from diffreid.judges.attribute_classifier import AttributeNet
    from diffreid.judges.peta_judge import CLASSES

    peta = tmp_path / "peta" / "PRID"
    for pid in (1, 2):
        for cam in "ab":
            write_image(peta / f"{pid:04d}_{cam}.png", seed=pid, size=(16, 32))
    (peta / "Label.txt").write_text("1 personalMale upperBodyRed lowerBodyBlack\n"
                                    "2 personalFemale upperBodyBlue lowerBodyBlack\n")
    judge = tmp_path / "judge"
    AttributeNet({name: list(values) for name, values in CLASSES.items()}, "mobilenet_v2", None).save(judge)
    (judge / "accuracy.json").write_text(json.dumps({"held_out_identities": [
        {"data": "x", "set": "PRID", "pid": 1}]}))
    out = _generate(reference_base, peta.parent, tmp_path / "gen", references=f"prid:{peta}", split="train",
                    per_identity=2)
    assert main(["fidelity", "--generated", str(out), "--judge", str(judge), "--out", str(tmp_path / "f.json")]) == 0
    scores = json.loads((tmp_path / "f.json").read_text())[str(out)]
    assert scores["identities"] == 2 and scores["generated_images"] == 4 and scores["real_images"] == 4
    assert scores["judge_trained_on"] == 1  # identity 2 is not among the judge's held-out people
    for name in ("upper colour", "lower colour", "gender"):
        assert 0 <= scores["attributes"][name]["generated"] <= 1 and 0 <= scores["attributes"][name]["real"] <= 1
    assert scores["attributes"]["carrying"]["generated"] is None  # unlabelled: not scored
