"""`diffreid base-train`: teach the miniature to draw people before anyone fine-tunes it.

Stable Diffusion arrives already knowing what a person looks like; the miniature has to
learn it here. Its codec and tokenizer are pretrained files; its UNet and text encoder
learn from captioned person images: procedural persons (captions from their attributes,
so prompts steer clothing colours) and real images (one generic caption, so samples get
photographic texture). Images are encoded to latents once and cached; training then
never touches the codec, as diffusers' examples do for large runs.

OUT/ holds `cache/` (latents in chunks), `checkpoints/step-NNNNNN/`, `model/` (the
EMA weights as a base-model folder `load_base_model` reads), `samples/`, `train.log`,
`metrics.jsonl`, `loss.png` and `manifest.json`. A killed run resumes from its last
checkpoint with the same batches it would have drawn.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from diffreid.artifacts import atomic_path, read_jsonl, write_json_atomic, write_manifest, write_text_atomic
from diffreid.config import BaseTrainConfig, config_dict
from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.reid.checkpoints import checkpoints, load_checkpoint, open_run, save_checkpoint
from diffreid.reid.curves import plot_curves
from diffreid.runtime import resolve_precision
from diffreid.synthesis.base_model import MiniatureShape, load_base_model, new_miniature
from diffreid.synthesis.captioners.procedural import read_procedural_captions
from diffreid.synthesis.sampling import grid, sample

log = logging.getLogger(__name__)
CHUNK = 512  # images per cache file: a killed encoding loses at most one chunk
SAMPLE_SEED = 1234
RESUMABLE_CHANGES = ("steps", "sample_every", "sample_steps", "checkpoint_every", "log_every")  # safe to change on resume


def captioned_images(config: BaseTrainConfig) -> list[tuple[Path, str]]:
    """(image, caption) for every training image, in a fixed order."""
    items: list[tuple[Path, str]] = []
    for spec in config.data:
        dataset = load_dataset(spec).require(*config.splits)
        attributes = Path(dataset.root) / "attributes.json"
        captions = read_procedural_captions(attributes) if attributes.is_file() else {}
        for split in config.splits:
            for record in dataset.split(split):
                items.append((Path(record.path), captions.get(record.pid, config.real_caption)))
    if not items:
        raise DiffreidError(f"no images in splits {', '.join(config.splits)} of {', '.join(config.data)}")
    return items


def _load_image(path: Path, size: tuple[int, int]) -> torch.Tensor | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
    except OSError as error:
        log.warning("%s: unreadable, skipped (%s)", path, error)
        return None
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


@torch.no_grad()
def cache_latents(config: BaseTrainConfig, codec, items: list[tuple[Path, str]], folder: Path) -> tuple[torch.Tensor, list[str]]:
    """Raw codec latents of every readable image and its label (a caption, or anything JSON);
    chunks already on disk are reused."""
    folder.mkdir(parents=True, exist_ok=True)
    latents, captions = [], []
    chunks = range(0, len(items), CHUNK)
    for start in tqdm(chunks, desc="encode", unit="chunk"):
        path = folder / f"chunk-{start // CHUNK:05d}.safetensors"
        if not path.is_file():
            kept, encoded = [], []
            part = items[start:start + CHUNK]
            for i in range(0, len(part), config.encode_batch):
                batch = [(_load_image(p, config.image_size), c) for p, c in part[i:i + config.encode_batch]]
                batch = [(x, c) for x, c in batch if x is not None]
                if batch:
                    encoded.append(codec.encode(torch.stack([x for x, _ in batch])).half())
                    kept += [c for _, c in batch]
            with atomic_path(path) as tmp:
                save_file({"latents": torch.cat(encoded)}, tmp, metadata={"captions": json.dumps(kept)})
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            captions += json.loads(f.metadata()["captions"])
        latents.append(load_file(path)["latents"])
    return torch.cat(latents), captions


def _lr(config: BaseTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def denoising_loss(unet, scheduler, latents: torch.Tensor, context: torch.Tensor, generator: torch.Generator,
                   snr_gamma: float | None = None) -> torch.Tensor:
    """The diffusion loss: predict the scheduler's target (noise or v) at a random timestep.

    With `snr_gamma`, min-SNR weighting (Hang et al. 2023) keeps the easy, low-noise steps
    from dominating; it speeds up small models most.
    """
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, t)
    target = scheduler.get_velocity(latents, noise, t) if scheduler.config.prediction_type == "v_prediction" else noise
    prediction = unet(noisy, t, encoder_hidden_states=context).sample
    per_item = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if snr_gamma is None:
        return per_item.mean()
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, t)
    weight = torch.clamp(snr, max=snr_gamma) / (snr + 1 if scheduler.config.prediction_type == "v_prediction" else snr)
    return (per_item * weight).mean()


def run(config: BaseTrainConfig) -> Path:
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    with open_run(config.out, config_dict(config), RESUMABLE_CHANGES, "base-train") as out:
        model = _initial_model(config)
        items = captioned_images(config)
        raw, captions = cache_latents(config, model.codec.eval(), items, out / "cache")
        if config.init is None:  # the codec's normalisation, measured once on these people (SD's VAE scaling factor)
            model.codec.shift, model.codec.scale = float(raw.float().mean()), float(1 / raw.float().std())
        latents = (raw.float() - model.codec.shift) * model.codec.scale
        log.info("%d images (%d unreadable skipped), latents %s, shift %.4f scale %.4f", len(captions),
                 len(items) - len(captions), tuple(latents.shape[1:]), model.codec.shift, model.codec.scale)
        accelerator = Accelerator(mixed_precision=resolve_precision(config.mixed_precision))
        _train(config, out, model, latents, captions, accelerator, EMAModel)
    return out


def _initial_model(config: BaseTrainConfig):
    """A fresh miniature of the config's shape, or the one `init` names, to go on training.

    Continuing keeps the model's codec normalisation (its UNet learned in that latent
    scale), as fine-tuning SD keeps the VAE's scaling factor; its shape must be the config's.
    """
    if config.init is None:
        shape = MiniatureShape(image_size=tuple(config.image_size), unet_channels=tuple(config.unet_channels),
                               layers_per_block=config.layers_per_block, text_hidden=config.text_hidden,
                               text_layers=config.text_layers, text_heads=max(1, config.text_hidden // 32))
        return new_miniature(shape, config.codec, config.tokenizer, seed=config.seed)
    if config.codec is not None or config.tokenizer is not None:
        raise DiffreidError(f"init {config.init}: its own codec and tokenizer are used; drop codec / tokenizer")
    model = load_base_model(config.init)
    if model.kind != "miniature":
        raise DiffreidError(f"init {config.init}: base-train continues a miniature (a folder with codec/); "
                            "fine-tune Stable Diffusion with `diffreid finetune` instead")
    found = {"image_size": model.image_size, "unet_channels": model.unet.config.block_out_channels,
             "layers_per_block": model.unet.config.layers_per_block,
             "text_hidden": model.text_encoder.config.hidden_size,
             "text_layers": model.text_encoder.config.num_hidden_layers}
    wrong = {name: value for name, value in found.items() if _plain(value) != _plain(getattr(config, name))}
    if wrong:
        raise DiffreidError(f"init {config.init} has " + ", ".join(f"{k} {v}" for k, v in wrong.items()) +
                            "; set the same (--set FIELD=VALUE) or leave init out to train a new shape")
    return model


def _plain(value):
    """Lists (from YAML or a model's config) and tuples compare alike."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _train(config, out, model, latents, captions, accelerator, ema_class) -> None:
    trained = list(model.unet.parameters()) + list(model.text_encoder.parameters())
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
    ema = ema_class(trained, decay=config.ema_decay)
    start, rows = 0, []
    found = checkpoints(out / "checkpoints")
    if found:
        tensors, state = load_checkpoint(found[-1][1])
        model.unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        model.text_encoder.load_state_dict({k[13:]: v for k, v in tensors.items() if k.startswith("text_encoder.")})
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        start = state["epoch"]
        rows = [r for r in read_jsonl(out / "metrics.jsonl") if r["step"] <= start]
        log.info("resuming from step %d (of %d)", start, config.steps)
    model.unet.train()
    model.text_encoder.train()
    unet, text_encoder, optimizer = accelerator.prepare(model.unet, model.text_encoder, optimizer)
    ema.to(accelerator.device)
    tokens = model.tokenize(sorted(set(captions)) + [""])
    token_of = {c: i for i, c in enumerate(sorted(set(captions)) + [""])}
    caption_ids = torch.tensor([token_of[c] for c in captions])
    log.info("%d trainable parameters (UNet %d, text encoder %d), batch %d, %d steps, precision %s",
             sum(p.numel() for p in trained), sum(p.numel() for p in model.unet.parameters()),
             sum(p.numel() for p in model.text_encoder.parameters()), config.batch_size, config.steps,
             accelerator.mixed_precision)
    window, tick = [], time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="base-train", unit="step")
    for step in bar:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)  # same batches after a resume
        index = torch.randint(0, len(latents), (config.batch_size,), generator=generator)
        batch = latents[index]
        flip = torch.rand(config.batch_size, generator=generator) < 0.5
        batch[flip] = batch[flip].flip(-1)
        ids = caption_ids[index].clone()
        ids[torch.rand(config.batch_size, generator=generator) < config.caption_dropout] = token_of[""]
        for group in optimizer.param_groups:
            group["lr"] = _lr(config, step)
        with accelerator.autocast():
            context = text_encoder(tokens[ids].to(accelerator.device)).last_hidden_state
            loss = denoising_loss(unet, model.noise_scheduler, batch.to(accelerator.device), context, generator,
                                  config.snr_gamma)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(trained)
        window.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            speed = len(window) * config.batch_size / (time.time() - tick)
            rows.append({"step": done, "lr": _lr(config, step), "loss_denoise": sum(window) / len(window),
                         "images_per_second": speed})
            log.info("step %d: loss %.4f, lr %.2e, %.1f images/s", done, rows[-1]["loss_denoise"], rows[-1]["lr"], speed)
            write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
            plot_curves(rows, out / "loss.png", x="step")
            window, tick = [], time.time()
        if done % config.checkpoint_every == 0 or done == config.steps:
            tensors = {**{f"unet.{k}": v for k, v in accelerator.unwrap_model(unet).state_dict().items()},
                       **{f"text_encoder.{k}": v for k, v in accelerator.unwrap_model(text_encoder).state_dict().items()}}
            save_checkpoint(out / "checkpoints", done, tensors, {"optimizer": optimizer.state_dict(),
                                                                  "ema": ema.state_dict()}, unit="step")
        if done % config.sample_every == 0 or done == config.steps:
            _export(model, ema, trained, out / "model")
            _sample_sheet(captions, out / "samples" / f"step-{done:06d}.png", config.sample_steps)
            model.unet.train()
            model.text_encoder.train()
    write_manifest(out, "base-train", config_dict(config), counts={"images": len(captions), "steps": config.steps},
                   inputs={spec: "dataset" for spec in config.data})


def _export(model, ema, trained, folder: Path) -> None:
    """The EMA weights as a base-model folder (written beside, then swapped in whole)."""
    import shutil
    import tempfile

    ema.store(trained)
    ema.copy_to(trained)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".model.", dir=folder.parent))
        model.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        ema.restore(trained)


def _sample_sheet(captions: list[str], path: Path, steps: int) -> None:
    """Eight distinct training prompts, drawn with the EMA weights just exported, two seeds each."""
    from diffreid.synthesis.base_model import load_base_model

    exported = load_base_model(path.parents[1] / "model")
    prompts = sorted(set(captions))
    prompts = [prompts[i * len(prompts) // 8] for i in range(min(8, len(prompts)))]
    images = sample(exported, prompts * 2, [SAMPLE_SEED + i for i in range(2 * len(prompts))], steps=steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        grid(images, len(prompts)).save(tmp, format="PNG")
    write_json_atomic(path.with_suffix(".json"), {"prompts": prompts, "seeds": SAMPLE_SEED})
