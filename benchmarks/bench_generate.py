"""Generation speed: diffreid's sampling path against diffusers' StableDiffusionPipeline.

Both sides get the same randomly initialised modules of Stable Diffusion's architecture
(`--model sd14`: v1.4's UNet, VAE and CLIP text encoder sizes; `sd-small`: the same
structure scaled down for a CPU) and draw images at 256x128. Two comparisons:

- defaults: diffreid's `generate` path as it runs (DPM-Solver++ 25 steps, guidance 5,
  --batch images per call, fp16/bf16 on CUDA) against the pipeline with its defaults
  (its scheduler from SD's config, PNDM, 50 steps, guidance 7.5, one image per call,
  fp32 unless the pipeline is cast);
- same work: both at DPM-Solver++ 25 steps, the same batch and dtype: what remains is
  each side's overhead.

With `--model miniature` both sides run the packaged miniature at its own 128x64 (real
weights): the pipeline gets its UNet, text encoder and DPM-Solver++ and returns latents
(it cannot take the TAEF2 codec), which the same codec then decodes, so decode is in
both times. Prints images/second and ratios.

    python benchmarks/bench_generate.py --model miniature --images 32 --batch 16   # CPU, the issue's bar
    python benchmarks/bench_generate.py --model sd-small --images 8          # CPU
    python benchmarks/bench_generate.py --model sd14 --images 64 --batch 16  # GPU
"""

from __future__ import annotations

import argparse
import time

import torch

from diffreid.synthesis.base_model import MINIATURE, BaseModel, VaeCodec, load_base_model
from diffreid.synthesis.sampling import sample_latents, to_pil

SIZE = (256, 128)


def sd_modules(model: str):
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    big = model == "sd14"
    width = 768 if big else 128
    text = CLIPTextModel(CLIPTextConfig(hidden_size=width, intermediate_size=4 * width,
                                        num_hidden_layers=12 if big else 2, num_attention_heads=12 if big else 4,
                                        max_position_embeddings=77, projection_dim=width))
    channels = (320, 640, 1280, 1280) if big else (32, 64, 128, 128)
    unet = UNet2DConditionModel(
        sample_size=(SIZE[0] // 8, SIZE[1] // 8), in_channels=4, out_channels=4, block_out_channels=channels,
        layers_per_block=2, cross_attention_dim=width, attention_head_dim=8 if big else 4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512) if big else (32, 64, 64, 64), layers_per_block=2,
                        latent_channels=4, norm_num_groups=32,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    tokenizer = CLIPTokenizer.from_pretrained(MINIATURE / "tokenizer", model_max_length=77)
    scheduler = DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                            steps_offset=1)
    return tokenizer, text, unet, vae, scheduler


def ours(model: BaseModel, prompts: list[str], batch: int, steps: int, guidance: float) -> float:
    start = time.perf_counter()
    uncond = model.encode_text([""])
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        with torch.no_grad():
            latents = sample_latents(model, model.encode_text(chunk), uncond, list(range(i, i + len(chunk))),
                                     steps, guidance)
            to_pil(model.codec.decode(latents))
    return len(prompts) / (time.perf_counter() - start)


def pipeline_speed(pipe, prompts: list[str], batch: int, size=SIZE, decode=None, **kwargs) -> float:
    """Images per second of the pipeline; with `decode`, it returns latents and `decode` makes the pictures."""
    start = time.perf_counter()
    for i in range(0, len(prompts), batch):
        out = pipe(prompts[i:i + batch], height=size[0], width=size[1],
                   **({"output_type": "latent"} if decode else {}), **kwargs)
        if decode:
            with torch.no_grad():
                to_pil(decode(out.images))
    return len(prompts) / (time.perf_counter() - start)


def miniature(prompts: list[str], batch: int, repeats: int) -> None:
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    model = load_base_model("tiny")
    for module in (model.text_encoder, model.unet, model.codec):
        module.float().eval()
    scheduler = DPMSolverMultistepScheduler.from_config(model.noise_scheduler.config, algorithm_type="dpmsolver++")
    # no VAE: latents out; the factor 8 the pipeline then assumes is TAEF2's too
    pipe = StableDiffusionPipeline(vae=None, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                                   unet=model.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ours(model, prompts[:1], 1, 2, 5.0)  # warm-up
    mine = same = 0.0
    for _ in range(repeats):
        mine = max(mine, ours(model, prompts, batch, 25, 5.0))
        same = max(same, pipeline_speed(pipe, prompts, batch, model.image_size, model.codec.decode,
                                        num_inference_steps=25, guidance_scale=5.0))
    print(f"diffreid generate path:              {mine:8.2f} img/s")
    print(f"pipeline, same work (DPM++ 25, batch): {same:8.2f} img/s   ratio {mine / same:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("sd14", "sd-small", "miniature"), default="sd-small")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="the sides alternate; the best run of each counts")
    args = parser.parse_args()
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
    prompts = [f"a photo of a person wearing a red shirt, view {i}" for i in range(args.images)]
    if args.model == "miniature":
        print(f"miniature, 128x64, {args.images} images, batch {args.batch}, cpu float32")
        miniature(prompts, args.batch, args.repeats)
        return
    print(f"{args.model}, {SIZE[0]}x{SIZE[1]}, {args.images} images, batch {args.batch}, {device} {dtype}")
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    tokenizer, text, unet, vae, scheduler = sd_modules(args.model)
    model = BaseModel(VaeCodec(vae), tokenizer, text, unet, scheduler, SIZE, "stable-diffusion").to(device, dtype)
    for module in (text, unet, vae):
        module.eval()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ours(model, prompts[:1], 1, 2, 5.0)  # warm-up
    mine = same = 0.0
    for _ in range(args.repeats):
        mine = max(mine, ours(model, prompts, args.batch, 25, 5.0))
        same = max(same, pipeline_speed(pipe, prompts, args.batch, num_inference_steps=25, guidance_scale=5.0))
    pipe.scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   skip_prk_steps=True, steps_offset=1)  # SD v1.4's scheduler_config
    pipe.to(torch_dtype=torch.float32)
    default = pipeline_speed(pipe, prompts, 1)
    print(f"diffreid generate path:              {mine:8.2f} img/s")
    print(f"pipeline, same work (DPM++ 25, batch): {same:8.2f} img/s   ratio {mine / same:.2f}x")
    print(f"pipeline, its defaults (PNDM 50, 1/call, fp32): {default:8.2f} img/s   ratio {mine / default:.2f}x")


if __name__ == "__main__":
    main()
