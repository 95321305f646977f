"""The base model: TAEF2 codec, miniature and SD-layout folders, sampling, base-train with resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffreid.config import BaseTrainConfig
from diffreid.errors import DiffreidError
from diffreid.synthesis.base_model import MINIATURE, MiniatureShape, load_base_model, new_miniature
from diffreid.synthesis.codec import LatentCodec
from diffreid.synthesis.sampling import sample

from conftest import TINY_SHAPE

TINY = MiniatureShape(**TINY_SHAPE)


def _person_images(root, n: int, size=(128, 64)) -> torch.Tensor:
    files = sorted((root / "cuhk01" / "campus").glob("*.png"))[:n]
    arrays = [np.asarray(Image.open(f).convert("RGB").resize((size[1], size[0]), Image.BICUBIC)) for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def test_codec_loads_published_taef2_files_key_for_key():
    codec = LatentCodec.from_taef2(MINIATURE / "codec")
    for part in ("encoder", "decoder"):
        published = torch.load(MINIATURE / "codec" / f"taef2_{part}.pth", weights_only=True)
        assert set(published) == set(getattr(codec, part).state_dict())
    assert (MINIATURE / "codec" / "LICENSE").is_file()


def test_codec_reconstructs_real_persons(shared_data):
    codec = LatentCodec.from_taef2(MINIATURE / "codec").eval()
    images = _person_images(shared_data, 8)
    with torch.no_grad():
        latents = codec.encode(images)
        restored = codec.decode(latents)
    assert latents.shape == (8, 32, 16, 8)
    psnr = 10 * torch.log10(1 / ((restored - images) ** 2).mean())
    assert psnr > 24  # measured 26.3 dB at 128x64 (34 dB at 256x128); an untrained codec stays under 15
    noise = LatentCodec().eval()
    with torch.no_grad():
        assert 10 * torch.log10(1 / ((noise.decode(noise.encode(images)) - images) ** 2).mean()) < 15


def test_codec_rejects_other_weights(tmp_path):
    torch.save({"0.weight": torch.zeros(3)}, tmp_path / "taef2_encoder.pth")
    shutil.copy(MINIATURE / "codec" / "taef2_decoder.pth", tmp_path)
    with pytest.raises(DiffreidError, match="not a TAEF2 encoder"):
        LatentCodec.from_taef2(tmp_path)


def test_miniature_folder_round_trip(tmp_path):
    model = new_miniature(TINY, seed=1)
    model.codec.shift, model.codec.scale = 0.1, 1.2
    model.save_pretrained(tmp_path / "m")
    loaded = load_base_model(tmp_path / "m")
    assert loaded.kind == "miniature" and loaded.image_size == (64, 32) and loaded.latent_size == (8, 4)
    assert (loaded.codec.shift, loaded.codec.scale) == (0.1, 1.2)
    assert (tmp_path / "m" / "codec" / "LICENSE").is_file()
    assert load_file(tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors")
    ids = model.tokenize(["a person in a red shirt"])
    assert ids[0, :3].tolist() == [49406, 320, 2533]  # CLIP's published ids: <start> a person
    with torch.no_grad():
        a = model.text_encoder.eval()(ids).last_hidden_state
        b = loaded.text_encoder(ids).last_hidden_state
    assert torch.allclose(a, b)


def test_stable_diffusion_layout_loads_with_its_vae(tmp_path):
    from diffusers import AutoencoderKL

    model = new_miniature(TINY)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    folder = tmp_path / "sd"
    for name, part in (("unet", model.unet), ("text_encoder", model.text_encoder), ("tokenizer", model.tokenizer),
                       ("scheduler", model.noise_scheduler), ("vae", vae)):
        part.save_pretrained(folder / name)
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    loaded = load_base_model(folder, image_size=(32, 16))
    assert loaded.kind == "stable-diffusion" and loaded.codec.downscale == 2
    with torch.no_grad():
        latents = loaded.codec.encode(torch.rand(2, 3, 32, 16))
        assert latents.shape == (2, 4, 16, 8)
        assert loaded.codec.decode(latents).shape == (2, 3, 32, 16)


def test_missing_base_model_says_what_to_pass(tmp_path):
    with pytest.raises(DiffreidError, match="no such base-model folder"):
        load_base_model(tmp_path / "nowhere")
    (tmp_path / "empty" / "codec").mkdir(parents=True)
    with pytest.raises(DiffreidError, match="model_index.json"):
        load_base_model(tmp_path / "empty")


def test_sampling_depends_on_seed_not_batch():
    model = new_miniature(TINY, seed=2)
    model.text_encoder.eval(), model.unet.eval()
    together = sample(model, ["a person", "a person in blue"], [5, 6], steps=3)
    alone = sample(model, ["a person in blue"], [6], steps=3)
    other = sample(model, ["a person in blue"], [7], steps=3)
    assert together[0].size == (32, 64)
    assert np.abs(np.asarray(together[1], int) - np.asarray(alone[0], int)).max() <= 1
    assert np.abs(np.asarray(alone[0], int) - np.asarray(other[0], int)).mean() > 1


def _base_config(data, out, **overrides) -> BaseTrainConfig:
    values = dict(data=(f"market1501:{data}",), out=out, image_size=TINY.image_size, unet_channels=TINY.unet_channels,
                  text_hidden=32, text_layers=1, steps=4, batch_size=4, warmup_steps=2, checkpoint_every=2,
                  sample_every=4, sample_steps=2, log_every=2)
    return BaseTrainConfig(**{**values, **overrides})


def test_base_train_writes_a_loadable_model_and_resumes_exactly(tiny_persons, tmp_path):
    from diffreid.synthesis.base_train import run

    out = run(_base_config(tiny_persons, tmp_path / "run"))
    for name in ("config.yaml", "train.log", "metrics.jsonl", "loss.png", "manifest.json", "samples/step-000004.png"):
        assert (out / name).is_file(), name
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-000002", "step-000004"]
    model = load_base_model(out / "model")
    assert model.kind == "miniature" and model.image_size == (64, 32)
    assert 0.5 < model.codec.scale < 3  # measured on the persons, not left at 1
    finished = load_file(out / "checkpoints" / "step-000004" / "model.safetensors")

    # a run killed after step 2 and started again ends with the same weights
    shutil.rmtree(out / "checkpoints" / "step-000004")
    shutil.rmtree(out / "model")
    run(_base_config(tiny_persons, tmp_path / "run"))
    resumed = load_file(out / "checkpoints" / "step-000004" / "model.safetensors")
    assert all(torch.equal(finished[k], resumed[k]) for k in finished)
    assert "resuming from step 2" in (out / "train.log").read_text()
    with pytest.raises(DiffreidError, match="different config"):
        run(_base_config(tiny_persons, tmp_path / "run", lr=1e-3))


def test_base_train_goes_on_from_a_trained_miniature(tiny_persons, tmp_path):
    """--init continues a model: its weights are the start and its latent normalisation is
    kept; a model of another shape is refused with the field named."""
    from diffreid.synthesis.base_train import run

    first = load_base_model(run(_base_config(tiny_persons, tmp_path / "first")) / "model")
    first.codec.shift, first.codec.scale = 0.25, 2.5  # not what these persons measure
    first.save_pretrained(tmp_path / "start")
    again = run(_base_config(tiny_persons, tmp_path / "again", init=str(tmp_path / "start"), steps=2, lr=0.0,
                             ema_decay=0.0, checkpoint_every=2, sample_every=2))
    continued = load_base_model(again / "model")
    assert (continued.codec.shift, continued.codec.scale) == (0.25, 2.5)
    start = load_file(tmp_path / "start" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(start[k], v) for k, v in continued.unet.state_dict().items())  # lr 0: unchanged
    fresh = load_base_model(run(_base_config(tiny_persons, tmp_path / "fresh", steps=2, lr=0.0, ema_decay=0.0,
                                             checkpoint_every=2, sample_every=2)) / "model")
    assert not torch.equal(fresh.unet.conv_in.weight, continued.unet.conv_in.weight)
    with pytest.raises(DiffreidError, match="text_hidden 32"):
        run(_base_config(tiny_persons, tmp_path / "other", init=str(tmp_path / "start"), text_hidden=48))


def test_shipping_a_trained_miniature_halves_it_and_loads_back_in_float32(tmp_path):
    from diffreid.synthesis.base_model import ship_miniature

    model = new_miniature(TINY, seed=3)
    model.codec.shift, model.codec.scale = 0.05, 1.1
    model.save_pretrained(tmp_path / "trained")
    dest = tmp_path / "package"
    shutil.copytree(MINIATURE / "tokenizer", dest / "tokenizer")
    shutil.copytree(MINIATURE / "codec", dest / "codec", ignore=shutil.ignore_patterns("codec_config.json"))
    ship_miniature(tmp_path / "trained", {"command": "diffreid base-train ...", "seed": 0}, dest=dest)
    assert load_file(dest / "unet" / "diffusion_pytorch_model.safetensors")["conv_in.weight"].dtype == torch.float16
    shipped = load_base_model(dest)
    assert next(shipped.unet.parameters()).dtype == torch.float32
    assert shipped.codec.scale == 1.1
    ids = model.tokenize(["a person"])
    with torch.no_grad():
        a = model.text_encoder.eval()(ids).last_hidden_state
        b = shipped.text_encoder(ids).last_hidden_state
    assert torch.allclose(a, b, atol=1e-2)


def test_the_packaged_miniature_is_trained_small_and_follows_colour_prompts():
    """The shipped model: within its size budget, its training recorded, and its samples
    carry the shirt colour the prompt names (red against blue, in the upper body)."""
    size = sum(p.stat().st_size for p in MINIATURE.rglob("*") if p.is_file())
    assert size <= 40 * 2**20
    model = load_base_model("tiny")
    trained = json.loads((MINIATURE / "model_index.json").read_text())["_trained"]
    assert {"command", "seed", "steps"} <= set(trained)
    prompts = {colour: f"a person with light skin and short black hair, wearing a {colour} long-sleeved shirt, black "
                       "trousers and black sneakers" for colour in ("red", "blue")}
    upper = {}
    for colour, prompt in prompts.items():
        images = sample(model, [prompt] * 6, list(range(6)), steps=15)
        pixels = np.stack([np.asarray(image, float) for image in images])
        height = pixels.shape[1]
        upper[colour] = pixels[:, height // 4:height // 2, :, :].mean(axis=(0, 1, 2))  # torso rows, RGB
    assert upper["red"][0] - upper["red"][2] > upper["blue"][0] - upper["blue"][2] + 10
