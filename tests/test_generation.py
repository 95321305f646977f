"""Identity tokens (IIR), Diversity Injection (reference set, FSPP), finetune and generate, on a tiny miniature."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffreid.config import CaptionConfig, FinetuneConfig, GenerateConfig
from diffreid.errors import DiffreidError
from diffreid.synthesis.base_model import load_base_model
from diffreid.synthesis.diversity import VOCABULARY, injected_attributes, prior_preservation_loss, reference_prompt
from diffreid.synthesis.iir import (
    IdentityEncoder, IdentityTable, add_placeholders, anchor_embedding, identity_prompt, identity_tokens)


def test_identity_tokens_replace_only_the_placeholders(tiny_base):
    model = load_base_model(tiny_base)
    ids = add_placeholders(model.tokenizer, model.text_encoder, 2)
    assert add_placeholders(model.tokenizer, model.text_encoder, 2) == ids  # idempotent
    prompt = identity_prompt(2, "in a red shirt")
    tokens = model.tokenize([prompt])
    assert [tokens[0].tolist().count(i) for i in ids] == [1, 1]
    table = IdentityTable(3, 2, anchor_embedding(model.tokenizer, model.text_encoder))
    embeddings = model.text_encoder.get_input_embeddings()
    plain = embeddings(tokens)
    captured = {}
    with identity_tokens(model.text_encoder, ids, table(torch.tensor([1]))):
        hook = embeddings.register_forward_hook(lambda m, i, o: captured.setdefault("x", o))  # runs after the swap
        context = model.text_encoder(tokens).last_hidden_state
    hook.remove()
    swapped = captured["x"]
    where = torch.isin(tokens[0], torch.tensor(ids))
    assert torch.equal(swapped[0, ~where], plain[0, ~where].detach())
    assert torch.allclose(swapped[0, where], table.vectors[1])
    context.sum().backward()  # identity vectors learn through the frozen text encoder
    assert table.vectors.grad[1].abs().sum() > 0 and table.vectors.grad[0].abs().sum() == 0
    with identity_tokens(model.text_encoder, ids, table(torch.tensor([2]))):
        other = model.text_encoder(tokens).last_hidden_state
    assert not torch.allclose(context, other)  # identities differ in the prompt's features


def test_identity_encoder_gives_tokens_to_unseen_identities():
    anchor = torch.randn(32)
    encoder = IdentityEncoder(torch.randn(5, 16), k=3, anchor=anchor)
    assert torch.allclose(encoder(torch.tensor([0])), anchor.expand(1, 3, -1))  # starts at 'person'
    torch.nn.init.normal_(encoder.mlp[-1].weight)
    unseen = encoder.encode(torch.randn(2, 16))
    assert unseen.shape == (2, 3, 32) and not torch.allclose(unseen[0], unseen[1])


def test_reference_prompts_and_injected_attributes():
    prompts = {reference_prompt(i) for i in range(200)}
    assert len(prompts) == 200 and reference_prompt(7) == reference_prompt(7)
    for category, phrases in VOCABULARY.items():
        assert any(phrase in " ".join(prompts) for phrase in phrases), category
    captions = ["a person, back view, in a park", "a person in bright sunlight"]
    injected = injected_attributes(captions, np.random.default_rng(0))
    assert len(injected) == 4 and not {"back view", "in a park", "in bright sunlight"} & set(injected)
    assert prior_preservation_loss(torch.tensor(2.0), torch.tensor(3.0), 0.5) == 3.5
    assert prior_preservation_loss(torch.tensor(2.0), None, 0.5) == 2.0


@pytest.fixture(scope="module")
def tiny_captions(tiny_persons, tmp_path_factory):
    from diffreid.synthesis.captioning import run as caption

    return caption(CaptionConfig(data=f"market1501:{tiny_persons}", out=tmp_path_factory.mktemp("captions") / "c",
                                 captioner="attributes"))


def _finetune_config(tiny_persons, captions, base, out, **overrides) -> FinetuneConfig:
    values = dict(data=f"market1501:{tiny_persons}", captions=captions, base_model=str(base), out=out,
                  identity_tokens=2, lora_rank=2, reference_size=4, steps=4, batch_size=4, prior_batch_size=2,
                  checkpoint_every=2, log_every=2, sample_steps=2, warmup_steps=1)
    return FinetuneConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def tiny_generator(tiny_persons, tiny_captions, tiny_base, tmp_path_factory):
    from diffreid.synthesis.finetune import run

    return run(_finetune_config(tiny_persons, tiny_captions, tiny_base, tmp_path_factory.mktemp("gen") / "g"))


def test_finetune_writes_a_generator_and_trains_only_adapters_and_identities(tiny_generator, tiny_base):
    from diffreid.synthesis.finetune import IdentityGenerator

    for name in ("generator.json", "identities.json", "identity.safetensors", "pytorch_lora_weights.safetensors",
                 "loss.png", "samples.png", "manifest.json", "reference_set/prompts.jsonl",
                 "reference_set/images/ref_0003.png"):
        assert (tiny_generator / name).is_file(), name
    rows = [json.loads(line) for line in (tiny_generator / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_identity", "loss_prior"} <= set(rows[-1])
    lora = load_file(tiny_generator / "pytorch_lora_weights.safetensors")
    assert lora and all("lora" in key and key.startswith("unet.") for key in lora)  # diffusers' key names
    generator = IdentityGenerator.from_pretrained(tiny_generator)
    base = load_file(tiny_base / "unet" / "diffusion_pytorch_model.safetensors")
    merged = {k.replace(".base_layer", ""): v for k, v in generator.model.unet.state_dict().items() if "lora" not in k}
    assert all(torch.equal(base[k], merged[k]) for k in base)  # the base UNet itself is untouched
    identities = json.loads((tiny_generator / "identities.json").read_text())
    assert len(identities) == 6 and identities[0]["captions"] and identities[0]["description"]
    trained = load_file(tiny_generator / "identity.safetensors")["vectors"]
    assert not torch.allclose(trained[0], trained[1])


def test_finetune_resumes_exactly_after_a_kill(tiny_persons, tiny_captions, tiny_base, tiny_generator, tmp_path):
    from diffreid.synthesis.finetune import run

    out = tmp_path / "g"
    shutil.copytree(tiny_generator, out)
    files = ("model.safetensors", "model_1.safetensors")  # the UNet's trained (LoRA) parameters, the IIR
    final = [load_file(out / "checkpoints" / "step-000004" / name) for name in files]
    assert final[0] and all(".lora_" in key for key in final[0])  # not the frozen base UNet
    shutil.rmtree(out / "checkpoints" / "step-000004")
    run(_finetune_config(tiny_persons, tiny_captions, tiny_base, out, reference_set=None))
    resumed = [load_file(out / "checkpoints" / "step-000004" / name) for name in files]
    for before, after in zip(final, resumed):
        assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(DiffreidError, match="different config"):
        run(_finetune_config(tiny_persons, tiny_captions, tiny_base, out, lora_rank=4))


def test_full_finetuning_changes_the_unet(tiny_persons, tiny_captions, tiny_base, tmp_path):
    from diffreid.synthesis.finetune import run

    out = run(_finetune_config(tiny_persons, tiny_captions, tiny_base, tmp_path / "full", full=True, steps=2,
                               prior_weight=0.0, iir="table"))
    before = load_file(tiny_base / "unet" / "diffusion_pytorch_model.safetensors")
    after = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not (out / "reference_set").exists()  # λ = 0: no reference set needed


def test_generate_writes_the_contract_deterministically(tiny_generator, tmp_path):
    from diffreid.synthesis.generate import run

    config = dict(generator=tiny_generator, per_identity=3, steps=2)
    one = run(GenerateConfig(**config, out=tmp_path / "one", batch_size=3))
    lines = [json.loads(line) for line in (one / "manifest.jsonl").read_text().splitlines()]
    identities = json.loads((tiny_generator / "identities.json").read_text())
    assert len(lines) == 3 * len(identities)
    first = lines[0]
    assert set(first) == {"file", "pid", "source", "prompt", "seed", "injected"}
    assert first["file"] == f"images/{first['pid']:04d}/{first['pid']:04d}_0000.png"
    assert first["source"] == json.loads((one / "manifest.json").read_text())["config"]["data"]
    assert all(phrase in first["prompt"] for phrase in first["injected"]) and len(first["injected"]) == 4
    captions = " ".join(identities[0]["captions"])
    assert not any(phrase in captions for phrase in first["injected"])
    assert "<id_0>" in first["prompt"]

    # two shards, batch size 1, a killed identity: the same files
    two = tmp_path / "two"
    run(GenerateConfig(**config, out=two, batch_size=1, shard="2/2"))
    assert not (two / "manifest.jsonl").exists()
    run(GenerateConfig(**config, out=two, batch_size=2, shard="1/2"))
    (two / ".units" / f"{first['pid']}.jsonl").unlink()
    (two / first["file"]).unlink()
    run(GenerateConfig(**config, out=two, batch_size=2))
    assert (two / "manifest.jsonl").read_text() == (one / "manifest.jsonl").read_text()
    for line in lines:
        a = np.asarray(Image.open(one / line["file"]), int)
        b = np.asarray(Image.open(two / line["file"]), int)
        assert np.abs(a - b).max() <= 1
    last = lines[-1]["pid"]  # a preview of one identity: its images are the full run's
    preview = run(GenerateConfig(**config, out=tmp_path / "preview", batch_size=3, identities=(last,)))
    assert (preview / "manifest.jsonl").read_text() == "".join(
        json.dumps(line) + "\n" for line in lines if line["pid"] == last)
    assert all(np.abs(np.asarray(Image.open(preview / line["file"]), int)
                      - np.asarray(Image.open(one / line["file"]), int)).max() <= 1
               for line in lines if line["pid"] == last)
    with pytest.raises(DiffreidError, match="not among the 6 of .*identities.json"):
        run(GenerateConfig(**config, out=tmp_path / "none", identities=(9999,)))
    other = run(GenerateConfig(**config, out=tmp_path / "other", seed=1, injection=False))
    line = json.loads((other / "manifest.jsonl").read_text().splitlines()[0])
    assert line["injected"] == [] and line["seed"] != first["seed"]


def test_caption_finetune_generate_filter_through_the_cli(tiny_persons, tiny_base, shared_data, tmp_path):
    """The stages chained by their artifacts alone, as a user runs them."""
    from diffreid.cli import main

    spec = f"market1501:{tiny_persons}"
    assert main(["caption", "--data", spec, "--out", str(tmp_path / "captions"), "--captioner", "attributes"]) == 0
    assert main(["finetune", "--data", spec, "--captions", str(tmp_path / "captions"), "--base-model", str(tiny_base),
                 "--out", str(tmp_path / "gen"), "--steps", "2", "--batch-size", "2", "--lora-rank", "2",
                 "--identity-tokens", "2", "--set", "reference_size=2", "--set", "prior_batch_size=1",
                 "--set", "sample_steps=2", "--set", "checkpoint_every=2"]) == 0
    assert main(["generate", "--generator", str(tmp_path / "gen"), "--out", str(tmp_path / "generated"),
                 "--per-identity", "2", "--steps", "2"]) == 0
    assert main(["filter", "--generated", str(tmp_path / "generated"), "--scorer",
                 f"market1501={shared_data / 'models' / 'osnet_x0_25_msmt17.onnx'}", "--out",
                 str(tmp_path / "diffperson"), "--threshold", "-1"]) == 0  # an untrained model: keep all
    report = json.loads((tmp_path / "diffperson" / "filter_report.json").read_text())
    assert report["images_in"] == 12 and report["identities"] == 6 and report["kept"] == 12
    assert main(["data", "check", f"diffperson:{tmp_path / 'diffperson'}"]) == 0
