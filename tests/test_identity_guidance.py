"""Identity guidance: a Re-ID model's gradient steers sampling towards the reference person."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from diffreid.config import GenerateConfig
from diffreid.errors import DiffreidError
from diffreid.reid.torch_model import TorchReidModel
from diffreid.synthesis.base_model import MiniatureShape, new_miniature
from diffreid.synthesis.identity_guidance import IdentityGuidance

from conftest import TINY_SHAPE

TINY = MiniatureShape(**TINY_SHAPE)


def _latents(n: int, spread: float = 1.0) -> torch.Tensor:
    model = new_miniature(TINY, seed=0)
    return torch.randn(n, model.codec.latent_channels, *model.latent_size) * spread


def _guide(scale: float = 0.5, until: float = 1.0) -> IdentityGuidance:
    """A real codec and a small random convolutional Re-ID model: enough to have gradients."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return IdentityGuidance(TorchReidModel(net, (64, 32), device="cpu"), new_miniature(TINY, seed=0).codec, scale, until)


def _cosine(guide: IdentityGuidance, clean: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        features = torch.nn.functional.normalize(guide.reid.embed(guide.codec.decode(clean)), dim=1)
    return (features * targets).sum(1)


def test_a_steered_clean_prediction_is_nearer_the_references_person():
    guide = _guide(scale=0.01)
    clean = _latents(3, 0.5)
    targets = guide.targets([torch.rand(3, 3, 64, 32)])
    assert torch.allclose(targets.norm(dim=1), torch.ones(3))
    steered = guide.steer(clean, targets)
    assert (_cosine(guide, steered, targets) > _cosine(guide, clean, targets)).all()
    # the step's size is the scale, as root mean square in latent units, whatever the gradient's size
    rms = (steered - clean).flatten(1).pow(2).mean(1).sqrt()
    torch.testing.assert_close(rms, torch.full((3,), 0.01), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
def test_a_steered_prediction_implies_the_steered_clean_latents(prediction_type):
    guide = _guide()
    latents, prediction = _latents(2), _latents(2)
    alpha_cumprod = torch.tensor(0.3)
    a, s = alpha_cumprod.sqrt(), (1 - alpha_cumprod).sqrt()

    def clean(p):
        return {"v_prediction": a * latents - s * p, "epsilon": (latents - s * p) / a, "sample": p}[prediction_type]

    targets = guide.targets([torch.rand(2, 3, 64, 32)])
    steered = guide.steer_prediction(prediction, latents, alpha_cumprod, prediction_type, targets)
    torch.testing.assert_close(clean(steered), guide.steer(clean(prediction), targets), rtol=1e-4, atol=1e-4)
    with pytest.raises(DiffreidError, match="prediction type"):
        guide.steer_prediction(prediction, latents, alpha_cumprod, "flow", targets)


def test_only_the_first_share_of_the_steps_is_guided():
    assert [_guide(until=0.6).guides(step, 5) for step in range(5)] == [True, True, True, False, False]
    assert not any(_guide(scale=0.0).guides(step, 5) for step in range(5))
    with pytest.raises(DiffreidError, match="share of steps"):
        _guide(until=0.0)


def _generate(base, persons, out, **overrides):
    from diffreid.synthesis.generate import run

    values = dict(generator=base, out=out, references=f"market1501:{persons}", split="query", per_identity=1,
                  steps=4, batch_size=4, guidance=1.0, injection=False)
    return run(GenerateConfig(**{**values, **overrides}))


def test_generate_with_identity_guidance_draws_nearer_the_person_by_the_guide(tiny_persons, shared_data, tmp_path):
    from diffreid.reid.loading import load_reid_model

    base = tmp_path / "base"
    new_miniature(TINY, seed=0, reference=True).save_pretrained(base)
    guide = str(shared_data / "models" / "osnet_x0_25_market1501.pth")
    plain = _generate(base, tiny_persons, tmp_path / "plain")
    guided = _generate(base, tiny_persons, tmp_path / "guided", identity_model=guide, identity_guidance=1.0)
    reid = load_reid_model(guide, device="cpu")

    def cosines(folder: Path) -> np.ndarray:
        entries = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
        drawn = reid(np.stack([np.asarray(Image.open(folder / e["file"]).resize((128, 256))) for e in entries]))
        refs = reid(np.stack([np.asarray(Image.open(tiny_persons / e["reference"]).convert("RGB").resize((128, 256)))
                              for e in entries]))
        drawn, refs = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (drawn, refs))
        return (drawn * refs).sum(1)

    before, after = cosines(plain), cosines(guided)
    assert after.mean() > before.mean() + 0.05 and (after > before).mean() >= 0.8
    config = json.loads((guided / "manifest.json").read_text())["config"]
    assert config["identity_model"] == guide and config["identity_guidance"] == 1.0
    # a guide without gradients, or guidance without a guide, is refused up front
    with pytest.raises(DiffreidError, match="ONNX"):
        _generate(base, tiny_persons, tmp_path / "onnx", identity_guidance=1.0,
                  identity_model=str(shared_data / "models" / "osnet_x0_25_msmt17.onnx"))
    with pytest.raises(DiffreidError, match="--identity-model"):
        _generate(base, tiny_persons, tmp_path / "none", identity_guidance=1.0)


def test_the_diffusers_pipeline_takes_identity_guidance(tmp_path):
    """The pipeline steers as generate does: the same latents as sample_latents with the same guide."""
    from diffreid.synthesis.pipeline import DiffReidPipeline
    from diffreid.synthesis.sampling import sample_latents

    folder = tmp_path / "base"
    new_miniature(TINY, seed=0, reference=True).save_pretrained(folder)
    pipe = DiffReidPipeline.from_pretrained(folder)
    guide = _guide(scale=0.3, until=0.5)
    guide.codec = pipe.codec
    reference = torch.rand(2, 3, 64, 32)
    draw = dict(prompt=["a person"] * 2, reference_image=reference, num_inference_steps=4, seed=[3, 4],
                output_type="latent")
    plain, guided = pipe(**draw).images, pipe(**draw, identity_guidance=guide).images
    model = pipe.base_model()
    context, uncond = model.encode_text(["a person"] * 2), model.encode_text([""])
    direct = sample_latents(model, context, uncond, [3, 4], 4, 5.0, pipe.codec.encode(reference), identity=guide,
                            identity_targets=guide.targets([reference]))
    torch.testing.assert_close(guided, direct)
    assert not torch.allclose(guided, plain, atol=1e-3)
    with pytest.raises(DiffreidError, match="reference_image"):
        pipe(prompt="a person", num_inference_steps=2, identity_guidance=guide)
