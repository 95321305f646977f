"""Folders diffreid writes load with diffusers itself: base models as pipelines, generators' LoRA."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from diffreid.config import FinetuneConfig
from diffreid.synthesis.base_model import MINIATURE, BaseModel, MiniatureShape, VaeCodec, load_base_model, new_miniature
from diffreid.synthesis.sampling import sample

from conftest import TINY_SHAPE

TINY = MiniatureShape(**TINY_SHAPE)
COMPONENTS = {"unet", "text_encoder", "tokenizer", "scheduler", "codec"}


def _pipeline(folder):
    import diffreid.synthesis.pipeline  # noqa: F401  (makes DiffReidPipeline known to diffusers)
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(folder)


def _same(a: list[Image.Image], b: list[Image.Image]) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_a_miniature_folder_loads_with_diffusers_and_draws_what_sample_draws(tiny_base, tmp_path):
    from diffreid.synthesis.pipeline import DiffReidPipeline

    index = json.loads((tiny_base / "model_index.json").read_text())
    assert index["_class_name"] == "DiffReidPipeline"
    assert {k for k in index if not k.startswith("_")} == COMPONENTS | {"image_size"}  # image_size: the pipeline's
    pipe = _pipeline(tiny_base)
    assert type(pipe) is DiffReidPipeline and pipe.config.image_size == [64, 32]
    prompts = ["a person in a red shirt", "a person in blue trousers"]
    drawn = pipe(prompts, seed=[3, 4], num_inference_steps=3).images
    assert drawn[0].size == (32, 64)
    assert _same(drawn, sample(load_base_model(tiny_base), prompts, [3, 4], steps=3))
    assert _same(pipe(prompts[1], seed=4, num_inference_steps=3).images, drawn[1:])  # an image is its seed's
    assert pipe(prompts[0], seed=3, num_inference_steps=3, output_type="pt").images.shape == (1, 3, 64, 32)

    pipe.save_pretrained(tmp_path / "again")  # diffusers' own writing reads back both ways
    assert load_base_model(tmp_path / "again").image_size == (64, 32)
    direct = DiffReidPipeline.from_pretrained(tmp_path / "again")
    assert _same(direct(prompts, seed=[3, 4], num_inference_steps=3).images, drawn)


@pytest.mark.parametrize("tokens", [0, 4])  # the reference as input channels, or as cross-attention tokens
def test_a_reference_reading_miniature_draws_from_a_reference_image(tmp_path, tokens):
    from diffreid.synthesis.base_train import load_image

    model = new_miniature(TINY, seed=0, reference=True, reference_tokens=tokens)
    model.save_pretrained(tmp_path / "ref")
    model = load_base_model(tmp_path / "ref")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 40, 3), dtype=np.uint8)).save(tmp_path / "r.png")
    pixels = load_image(tmp_path / "r.png", model.image_size)[None]
    with torch.no_grad():
        latents = model.codec.encode(pixels)
    expected = sample(model, ["a person"], [9], steps=3, reference=latents, reference_guidance=1.5)
    pipe = _pipeline(tmp_path / "ref")
    assert (pipe.reference_tokens is not None) == bool(tokens)
    with Image.open(tmp_path / "r.png") as reference:
        drawn = pipe("a person", reference_image=reference, seed=9, num_inference_steps=3,
                     reference_guidance_scale=1.5).images
    assert _same(drawn, expected)
    assert not _same(pipe("a person", seed=9, num_inference_steps=3).images, expected)


def test_the_packaged_miniature_and_old_folders(tiny_base, tmp_path):
    """The packaged miniature loads with diffusers; a folder in the format written before (image_size
    beside a class diffusers does not know) still loads with diffreid."""
    pipe = _pipeline(MINIATURE)
    assert pipe.config.image_size == [128, 64] and pipe.codec.scale == load_base_model("tiny").codec.scale
    old = tmp_path / "old"
    shutil.copytree(tiny_base, old)
    (old / "model_index.json").write_text(json.dumps({"_class_name": "DiffreidMiniature", "image_size": [64, 32]}))
    model = load_base_model(old)
    assert model.kind == "miniature" and model.image_size == (64, 32)


def test_a_stable_diffusion_folder_stays_stable_diffusions(tmp_path):
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    mini = new_miniature(TINY, seed=0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=32, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    model = BaseModel(VaeCodec(vae), mini.tokenizer, mini.text_encoder, mini.unet, mini.noise_scheduler, (32, 16),
                      "stable-diffusion")
    model.save_pretrained(tmp_path / "sd")
    index = json.loads((tmp_path / "sd" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["_image_size"] == [32, 16]
    assert "image_size" not in index
    pipe = _pipeline(tmp_path / "sd")
    assert type(pipe) is StableDiffusionPipeline and pipe.safety_checker is None
    loaded = load_base_model(tmp_path / "sd")
    assert loaded.kind == "stable-diffusion" and loaded.image_size == (32, 16)

    from diffreid.synthesis.finetune import IdentityGenerator

    _tiny_generator(tmp_path / "sd", tmp_path / "gen").save_pretrained(tmp_path / "gen")  # fine-tuned on SD
    pipe.load_lora_weights(tmp_path / "gen")
    ours = IdentityGenerator.from_pretrained(tmp_path / "gen").model.unet
    assert torch.allclose(_unet_out(pipe.unet), _unet_out(ours), atol=1e-5)


def _tiny_generator(base, folder):
    """A generator with LoRA weights that change the UNet (random, not trained) and two identities."""
    from diffreid.synthesis.finetune import IdentityGenerator, _prepare_unet, generator_settings
    from diffreid.synthesis.iir import IdentityTable, add_placeholders, anchor_embedding

    model = load_base_model(base)
    config = FinetuneConfig(data="market1501:none", captions=folder, out=folder, base_model=str(base),
                            identity_tokens=2, lora_rank=2)
    ids = add_placeholders(model.tokenizer, model.text_encoder, config.identity_tokens)
    iir = IdentityTable(2, config.identity_tokens, anchor_embedding(model.tokenizer, model.text_encoder), seed=1)
    _prepare_unet(config, model)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)
    identities = [{"pid": pid, "description": f"person {pid}", "captions": []} for pid in (4, 7)]
    return IdentityGenerator(model, iir, ids, identities, generator_settings(config, model, iir, 8))


def _unet_out(unet) -> torch.Tensor:
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(1, 32, 8, 4, generator=rng)
    context = torch.randn(1, 77, TINY.text_hidden, generator=rng)
    with torch.no_grad():
        return unet.eval()(x, 500, encoder_hidden_states=context).sample


def test_generator_save_and_from_pretrained_and_its_lora_in_diffusers(tiny_base, tmp_path):
    from peft.utils import get_peft_model_state_dict

    from diffreid.synthesis.finetune import IdentityGenerator

    made = _tiny_generator(tiny_base, tmp_path / "gen")
    made.save_pretrained(tmp_path / "gen")
    loaded = IdentityGenerator.from_pretrained(tmp_path / "gen")
    assert loaded.identities == made.identities and loaded.settings == made.settings
    assert torch.equal(loaded.iir.vectors, made.iir.vectors) and loaded.placeholder_ids == made.placeholder_ids
    with torch.no_grad():
        assert torch.allclose(loaded.context(["a photo of <id_0> <id_1> person"], torch.tensor([1])),
                              made.context(["a photo of <id_0> <id_1> person"], torch.tensor([1])))
    ours = _unet_out(loaded.model.unet)
    assert torch.allclose(ours, _unet_out(made.model.unet), atol=1e-6)

    pipe = _pipeline(tiny_base)
    plain = _unet_out(pipe.unet)
    pipe.load_lora_weights(tmp_path / "gen")  # diffusers' reader, diffusers' file name and key names
    theirs = _unet_out(pipe.unet)
    assert not torch.allclose(plain, theirs, atol=1e-3)
    assert torch.allclose(theirs, ours, atol=1e-5)

    # a generator written before (peft's key names in lora.safetensors) still loads
    save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(made.model.unet).items()},
              tmp_path / "gen" / "lora.safetensors")
    (tmp_path / "gen" / "pytorch_lora_weights.safetensors").unlink()
    assert torch.allclose(_unet_out(IdentityGenerator.from_pretrained(tmp_path / "gen").model.unet), ours, atol=1e-6)


def test_pipeline_refuses_what_it_cannot_draw(tiny_base):
    from diffreid.errors import DiffreidError

    pipe = _pipeline(tiny_base)
    with pytest.raises(DiffreidError, match="text only"):
        pipe("a person", reference_image=Image.new("RGB", (32, 64)), num_inference_steps=1)
    with pytest.raises(DiffreidError, match="output_type"):
        pipe("a person", output_type="jpeg")
