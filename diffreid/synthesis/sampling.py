"""Drawing images from a base or fine-tuned model: DPM-Solver++ with classifier-free guidance.

Each image's starting noise comes from its own seed, so an image depends on (seed,
prompt) only, never on which batch it was drawn in: a resumed or resharded generate
run makes the same files.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from diffreid.synthesis.base_model import BaseModel


def initial_noise(model: BaseModel, seeds: list[int]) -> torch.Tensor:
    shape = (model.codec.latent_channels, *model.latent_size)
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds])


@torch.no_grad()
def sample_latents(model: BaseModel, context: torch.Tensor, uncond: torch.Tensor, seeds: list[int],
                   steps: int = 25, guidance: float = 5.0) -> torch.Tensor:
    """Denoise from each seed's noise under `context` (per-token text embeddings, one per seed).

    `uncond` is the empty prompt's context (one row, broadcast) for classifier-free guidance.
    """
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler.from_config(model.noise_scheduler.config, algorithm_type="dpmsolver++")
    scheduler.set_timesteps(steps)
    device, dtype = context.device, context.dtype
    latents = initial_noise(model, seeds).to(device=device, dtype=dtype) * scheduler.init_noise_sigma
    guided = guidance != 1.0
    if guided:
        context = torch.cat([uncond.expand(len(seeds), -1, -1).to(context), context])
    for t in scheduler.timesteps:
        inputs = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
        out = model.unet(inputs, t, encoder_hidden_states=context).sample
        if guided:
            unconditioned, conditioned = out.chunk(2)
            out = unconditioned + guidance * (conditioned - unconditioned)
        latents = scheduler.step(out, t, latents).prev_sample
    return latents


@torch.no_grad()
def sample(model: BaseModel, prompts: list[str], seeds: list[int], steps: int = 25, guidance: float = 5.0,
           negative_prompt: str = "") -> list[Image.Image]:
    """One image per (prompt, seed)."""
    context = model.encode_text(prompts)
    uncond = model.encode_text([negative_prompt])
    return to_pil(model.codec.decode(sample_latents(model, context, uncond, seeds, steps, guidance)))


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
