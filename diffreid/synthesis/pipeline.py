"""`DiffReidPipeline`: the miniature base model as a diffusers pipeline.

A miniature folder (`BaseModel.save_pretrained`, base-train's `model/`, the packaged
miniature) names this class in its `model_index.json`, beside its components `unet`,
`text_encoder`, `tokenizer`, `scheduler` (the training noise schedule) and `codec` (TAEF2,
which diffusers' `AutoencoderTiny` cannot load), and `reference_tokens` for a model that reads a
reference image as cross-attention tokens. diffusers looks a pipeline class up in
its own namespace, so importing this module adds it there; after that

    import diffreid.synthesis.pipeline
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(folder)

loads a folder as diffusers loads any other, or `DiffReidPipeline.from_pretrained(folder)`
does the same directly. It draws with diffreid's own sampler (`sampling.sample_latents`:
DPM-Solver++ from the folder's schedule, each image's noise from its own seed, the
reference-image guidance of a model that reads references), so an image is the one
`sampling.sample` draws for the same prompt and seed. LoRA loads through diffusers'
`load_lora_weights` (a fine-tuned generator's `pytorch_lora_weights.safetensors`).
"""

from __future__ import annotations

import diffusers
import torch
from diffusers import DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from PIL import Image
from transformers import CLIPTextModel

from diffreid.errors import DiffreidError
from diffreid.synthesis.base_model import BaseModel
from diffreid.synthesis.codec import LatentCodec
from diffreid.synthesis.identity_guidance import IdentityGuidance
from diffreid.synthesis.reference_tokens import ReferenceTokens
from diffreid.synthesis.sampling import REFERENCE_GUIDANCE, image_tensor, sample_latents, to_pil

OUTPUT_TYPES = ("pil", "np", "pt", "latent")


class DiffReidPipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    """Text (and, for a model trained with `--iir reference`, a reference image) to person images."""

    model_cpu_offload_seq = "text_encoder->reference_tokens->unet->codec"
    _optional_components = ["reference_tokens"]

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel, tokenizer, scheduler: SchedulerMixin,
                 codec: LatentCodec, reference_tokens: ReferenceTokens | None = None, image_size=(128, 64)):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                              codec=codec, reference_tokens=reference_tokens)
        self.register_to_config(image_size=[int(side) for side in image_size])

    @classmethod
    def from_base_model(cls, model: BaseModel) -> "DiffReidPipeline":
        """The same modules (not copies) as a pipeline."""
        if model.kind != "miniature":
            raise DiffreidError("DiffReidPipeline holds a miniature (TAEF2 codec); a Stable Diffusion base model "
                                "loads as diffusers' StableDiffusionPipeline")
        return cls(model.unet, model.text_encoder, model.tokenizer, model.noise_scheduler, model.codec,
                   model.reference_tokens, model.image_size)

    def base_model(self, height: int | None = None, width: int | None = None) -> BaseModel:
        """The pipeline's modules (not copies) as the `BaseModel` diffreid's own code takes."""
        size = (height or self.config.image_size[0], width or self.config.image_size[1])
        return BaseModel(self.codec, self.tokenizer, self.text_encoder, self.unet, self.scheduler, size, "miniature",
                         reference_tokens=self.reference_tokens)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], reference_image=None, num_inference_steps: int = 25,
                 guidance_scale: float = 5.0, reference_guidance_scale: float = REFERENCE_GUIDANCE, negative_prompt: str = "",
                 num_images_per_prompt: int = 1, seed: int | list[int] | None = None,
                 generator: torch.Generator | None = None, height: int | None = None, width: int | None = None,
                 output_type: str = "pil", return_dict: bool = True, identity_guidance: IdentityGuidance | None = None):
        """Draw `num_images_per_prompt` images of each prompt.

        reference_image: a PIL image, a list of them (one per prompt), or a tensor (N, 3, H, W) in [0, 1],
            for a model that reads a reference (as input channels, or as tokens through `reference_tokens`).
        seed: each image's noise seed (as diffreid's `sample` takes them): an int gives seed, seed + 1, ...;
            otherwise seeds are drawn from `generator` (or torch's global generator).
        output_type: "pil", "np" (N, H, W, 3 in [0, 1]), "pt" (N, 3, H, W in [0, 1]) or "latent".
        identity_guidance: with reference images, a Re-ID model that steers the first steps towards their
            person (`IdentityGuidance.load(reid_weights, pipe.codec, scale)`).
        """
        if output_type not in OUTPUT_TYPES:
            raise DiffreidError(f"output_type {output_type!r}: use one of {', '.join(OUTPUT_TYPES)}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        model = self.base_model(height, width)
        seeds = _seeds(seed, generator, len(prompts))
        context = model.encode_text(prompts).to(self.unet.dtype)
        uncond = model.encode_text([negative_prompt]).to(self.unet.dtype)
        reference = targets = None
        if identity_guidance is not None and reference_image is None:
            raise DiffreidError("identity_guidance steers towards the person of reference_image; give one")
        if reference_image is not None:
            pixels = _pixels(reference_image, model.image_size).to(device=self.codec.device, dtype=self.codec.dtype)
            if len(pixels) not in (1, len(prompts) // num_images_per_prompt):
                raise DiffreidError(f"{len(pixels)} reference images for {len(prompts) // num_images_per_prompt} "
                                    "prompts: give one, or one per prompt")
            reference = self.codec.encode(pixels).repeat_interleave(len(prompts) // len(pixels), dim=0)
            if identity_guidance is not None:
                targets = identity_guidance.targets([pixels]).repeat_interleave(len(prompts) // len(pixels), dim=0)
        latents = sample_latents(model, context, uncond, seeds, num_inference_steps, guidance_scale, reference,
                                 reference_guidance_scale, identity=identity_guidance, identity_targets=targets)
        if output_type == "latent":
            images = latents
        else:
            decoded = self.codec.decode(latents.to(self.codec.dtype))
            images = {"pil": to_pil, "pt": lambda x: x.float().cpu(),
                      "np": lambda x: x.float().permute(0, 2, 3, 1).cpu().numpy()}[output_type](decoded)
        return ImagePipelineOutput(images=images) if return_dict else (images,)


def _seeds(seed: int | list[int] | None, generator: torch.Generator | None, count: int) -> list[int]:
    if seed is not None and generator is not None:
        raise DiffreidError("give seed or generator, not both")
    if seed is None:
        return torch.randint(0, 2**31 - 1, (count,), generator=generator).tolist()
    seeds = [int(seed) + i for i in range(count)] if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != count:
        raise DiffreidError(f"{len(seeds)} seeds for {count} images")
    return seeds


def _pixels(images, size: tuple[int, int]) -> torch.Tensor:
    """Reference images as a (N, 3, H, W) tensor in [0, 1] at the model's size (PIL: resized bicubic,
    as diffreid reads reference files)."""
    if isinstance(images, torch.Tensor):
        images = images if images.dim() == 4 else images[None]
        if tuple(images.shape[-2:]) != tuple(size):
            raise DiffreidError(f"reference tensor of {tuple(images.shape[-2:])}: the model draws at {tuple(size)}")
        return images.float()
    images = [images] if isinstance(images, Image.Image) else list(images)
    return torch.stack([image_tensor(image, size) for image in images])


# diffusers resolves a model_index.json's `_class_name` in its own namespace: make this class found there
diffusers.DiffReidPipeline = DiffReidPipeline
