"""Drawing images from a base or fine-tuned model: DPM-Solver++ with classifier-free guidance.

Each image's starting noise comes from its own seed, so an image depends on (seed,
prompt) only, never on which batch it was drawn in: a resumed or resharded generate
run makes the same files.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from diffreid.config import GenerateConfig
from diffreid.errors import DiffreidError
from diffreid.synthesis.base_model import BaseModel
from diffreid.synthesis.identity_guidance import IdentityGuidance
from diffreid.synthesis.reference_tokens import reference_context

REFERENCE_GUIDANCE = GenerateConfig.reference_guidance  # one default for generate, sampling and the pipeline


def initial_noise(model: BaseModel, seeds: list[int]) -> torch.Tensor:
    shape = (model.codec.latent_channels, *model.latent_size)
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds])


def guidance_branches(model: BaseModel, context: torch.Tensor, uncond: torch.Tensor,
                      reference: torch.Tensor | list[torch.Tensor] | None, guidance: float, reference_guidance: float):
    """The UNet inputs to evaluate each step and the weights that combine their outputs.

    Text alone: classifier-free guidance, e(∅) + g·(e(text) − e(∅)). A model that reads a
    reference guides on both, as InstructPix2Pix does: e(∅, ∅) + r·(e(ref, ∅) − e(∅, ∅)) +
    g·(e(ref, text) − e(ref, ∅)), the reference's pull set apart from the prompt's. A
    dropped reference is zeros, the input the model was trained with for "no reference".
    Several references per image (a list): each e(ref, ·) is their mean, so the image is
    pulled towards what the person's photographs share rather than towards one of them.
    """
    uncond = uncond.expand(len(context), -1, -1).to(context)
    references = [] if reference is None else list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if not model.takes_reference:
        references, dropped = [], None
    else:
        dropped = torch.zeros(len(context), model.codec.latent_channels, *model.latent_size).to(context)
        references = [r.to(context) for r in references]
    k = len(references)
    if references and reference_guidance != 1.0:
        return ([(dropped, uncond)] + [(r, uncond) for r in references] + [(r, context) for r in references],
                [1 - reference_guidance] + [(reference_guidance - guidance) / k] * k + [guidance / k] * k)
    given = references or [dropped]
    k = len(given)
    if guidance == 1.0:
        return [(g, context) for g in given], [1.0 / k] * k
    return [(g, uncond) for g in given] + [(g, context) for g in given], [(1 - guidance) / k] * k + [guidance / k] * k


@torch.no_grad()
def sample_latents(model: BaseModel, context: torch.Tensor, uncond: torch.Tensor, seeds: list[int],
                   steps: int = 25, guidance: float = 5.0, reference: torch.Tensor | list[torch.Tensor] | None = None,
                   reference_guidance: float = REFERENCE_GUIDANCE, strength: float = 1.0,
                   identity: IdentityGuidance | None = None, identity_targets: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """Denoise from each seed's noise under `context` (per-token text embeddings, one per seed).

    `uncond` is the empty prompt's context (one row, broadcast) for classifier-free guidance;
    `reference` the normalised latents of one reference image per seed, for a model that reads them,
    or a list of such batches (several references per image, see `guidance_branches`). A
    `strength` below 1 starts from the (first) reference noised to that level and runs that share
    of the steps (img2img, as DA-Fusion makes variations): nearer the person, and nearer the image.
    `identity` steers the first steps towards `identity_targets`, the references' Re-ID features
    (see `IdentityGuidance`).
    """
    from diffusers import DPMSolverMultistepScheduler

    if reference is not None and not model.takes_reference:
        raise DiffreidError("this base model draws from text only; reference images need one trained with "
                            "`diffreid base-train --iir reference`")
    scheduler = DPMSolverMultistepScheduler.from_config(model.noise_scheduler.config, algorithm_type="dpmsolver++")
    if not 0 < strength <= 1 or (strength < 1 and reference is None):
        raise DiffreidError(f"strength {strength}: a share of the steps in (0, 1]; below 1 it needs reference images")
    scheduler.set_timesteps(steps)
    noise = initial_noise(model, seeds).to(device=context.device, dtype=context.dtype)
    skipped = steps - max(1, round(steps * strength))
    timesteps = scheduler.timesteps[skipped:]
    if skipped:
        scheduler.set_begin_index(skipped)
        first = reference[0] if isinstance(reference, (list, tuple)) else reference
        latents = scheduler.add_noise(first.to(noise), noise, timesteps[:1])
    else:
        latents = noise * scheduler.init_noise_sigma
    branches, weights = guidance_branches(model, context, uncond, reference, guidance, reference_guidance)
    extra = torch.cat([r for r, _ in branches]) if model.takes_reference else None
    contexts = torch.cat([c for _, c in branches])
    if model.reference_tokens is not None:  # read once: the same tokens at every step
        contexts, extra = reference_context(model.reference_tokens, contexts, extra), None
    for step, t in enumerate(timesteps):
        inputs = scheduler.scale_model_input(torch.cat([latents] * len(branches)), t)
        if extra is not None:
            inputs = torch.cat([inputs, extra], dim=1)
        outs = model.unet(inputs, t, encoder_hidden_states=contexts).sample.chunk(len(branches))
        prediction = sum(w * o for w, o in zip(weights, outs))
        if identity is not None and identity.guides(step, len(timesteps)):
            prediction = identity.steer_prediction(prediction, latents, scheduler.alphas_cumprod[int(t)],
                                                   scheduler.config.prediction_type, identity_targets)
        latents = scheduler.step(prediction, t, latents).prev_sample
    return latents


@torch.no_grad()
def sample(model: BaseModel, prompts: list[str], seeds: list[int], steps: int = 25, guidance: float = 5.0,
           negative_prompt: str = "", reference: torch.Tensor | None = None,
           reference_guidance: float = REFERENCE_GUIDANCE) -> list[Image.Image]:
    """One image per (prompt, seed), and per reference latent where given."""
    context = model.encode_text(prompts)
    uncond = model.encode_text([negative_prompt])
    return to_pil(model.codec.decode(sample_latents(model, context, uncond, seeds, steps, guidance, reference,
                                                    reference_guidance)))


def image_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """A picture as the codec takes it: RGB, resized bicubic to `size` (height, width), (3, H, W) in [0, 1]."""
    pixels = np.asarray(image.convert("RGB").resize((size[1], size[0]), Image.BICUBIC))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    array = (images.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return [Image.fromarray(a) for a in array]


def grid(images: list[Image.Image], columns: int) -> Image.Image:
    """Images side by side, `columns` to a row (sample sheets for logs and docs)."""
    width, height = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    for i, image in enumerate(images):
        sheet.paste(image, ((i % columns) * width, (i // columns) * height))
    return sheet
