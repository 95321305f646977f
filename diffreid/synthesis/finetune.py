"""`diffreid finetune`: teach a base model many identities at once (stage one of Diffusion-ReID).

Each training image's prompt joins the identity tokens (IIR) with its caption (LPE):
"a photo of <id_0>…<id_3> person, {caption}". The UNet learns through LoRA adapters
(peft; or wholly with `full`), the identity tokens through the IIR; the text encoder and
codec stay frozen. Batches mix identities. Beside them, images of the Attribute
Reference Set are denoised under their own fine-grained prompts and weighted by λ: the
Fine-Grain-Specific Prior Preservation loss, so the model keeps drawing attributes the
identities' images never show.

GEN/ holds `generator.json` (base model, image size, K, IIR kind, adapter), `identities.json`,
`identity.safetensors` (the IIR), `pytorch_lora_weights.safetensors` (the LoRA in diffusers'
format: `pipeline.load_lora_weights(GEN)` reads it) or `unet/` (full), `config.yaml`,
`checkpoints/step-NNNNNN/`, `train.log`, `metrics.jsonl`, `loss.png`, `samples.png` and
`manifest.json`; `IdentityGenerator.save_pretrained(GEN)` writes the model files and
`IdentityGenerator.from_pretrained(GEN)` reads them back.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from diffreid.artifacts import atomic_path, inside_root, read_jsonl, write_json_atomic, write_manifest
from diffreid.config import FINETUNE_IIR, FinetuneConfig, config_dict
from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.runtime import training_accelerator
from diffreid.synthesis.base_model import BaseModel, load_base_model
from diffreid.synthesis.base_train import cache_latents, denoising_loss
from diffreid.synthesis.diversity import prior_preservation_loss, warn_unlearnt_phrases
from diffreid.training.checkpoints import open_run
from diffreid.training.metrics import Metrics
from diffreid.training.schedules import warmup_schedule
from diffreid.training.state import TrainingState
from diffreid.synthesis.iir import (
    IdentityEncoder, IdentityTable, add_placeholders, anchor_embedding, identity_prompt, identity_tokens)
from diffreid.synthesis.reference_set import build_reference_set, read_reference_set
from diffreid.synthesis.sampling import grid, sample_latents, to_pil

log = logging.getLogger(__name__)
RESUMABLE = ("steps", "checkpoint_every", "log_every", "sample_steps")


def read_captions(folder: Path, dataset_root: Path) -> tuple[dict[Path, str], dict[int, str]]:
    """Per-image captions (by absolute path) and per-identity descriptions from `diffreid caption`."""
    folder = Path(folder)
    images, identities = folder / "captions.jsonl", folder / "identities.jsonl"
    for path in (images, identities):
        if not path.is_file():
            raise DiffreidError(f"{path}: missing; run `diffreid caption --data ... --out {folder}` first")
    captions = {inside_root(dataset_root, entry["image"], images).resolve(): entry["caption"]
                for entry in read_jsonl(images) if {"image", "caption"} <= set(entry)}
    descriptions = {int(e["pid"]): e["description"] for e in read_jsonl(identities) if {"pid", "description"} <= set(e)}
    return captions, descriptions


@dataclass
class IdentityGenerator:
    """A fine-tuned base model with its identities: what `diffreid generate` samples from."""

    model: BaseModel
    iir: torch.nn.Module
    placeholder_ids: list[int]
    identities: list[dict]  # index -> {"pid", "description", "captions"}
    settings: dict  # generator.json

    @property
    def k(self) -> int:
        return len(self.placeholder_ids)

    def context(self, prompts: list[str], index: torch.Tensor | None) -> torch.Tensor:
        """Text embeddings of `prompts`, identity tokens of identities `index` swapped in."""
        ids = self.model.tokenize(prompts).to(self.model.text_encoder.device)
        vectors = self.iir(index.to(ids.device)) if index is not None else None
        with identity_tokens(self.model.text_encoder, self.placeholder_ids, vectors):
            return self.model.text_encoder(ids).last_hidden_state

    def save_pretrained(self, folder: str | Path) -> Path:
        """`generator.json` (the settings), `identities.json`, `identity.safetensors` (the IIR) and the UNet:
        its LoRA as `pytorch_lora_weights.safetensors` in diffusers' key names, which diffusers'
        `load_lora_weights` reads into a pipeline of the base model, or (fine-tuned whole) `unet/`."""
        folder = Path(folder)
        with atomic_path(folder / "identity.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.iir.state_dict().items()}, tmp)
        if self.settings["adapter"] == "full":
            self.model.unet.save_pretrained(folder / "unet")
        else:
            from diffusers.loaders import StableDiffusionLoraLoaderMixin
            from diffusers.utils import convert_state_dict_to_diffusers
            from peft.utils import get_peft_model_state_dict

            lora = self.settings["lora"]
            layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.model.unet))
            with atomic_path(folder / LORA_WEIGHTS) as tmp:
                StableDiffusionLoraLoaderMixin.save_lora_weights(
                    tmp.parent, unet_lora_layers={k: v.contiguous() for k, v in layers.items()}, weight_name=tmp.name,
                    unet_lora_adapter_metadata={"r": lora["rank"], "lora_alpha": lora["rank"],
                                                "target_modules": list(lora["targets"])})
        write_json_atomic(folder / "identities.json", self.identities)
        write_json_atomic(folder / "generator.json", self.settings)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "IdentityGenerator":
        """A folder written by `save_pretrained` (`diffreid finetune`'s output), on its base model."""
        folder = Path(folder)
        path = folder / "generator.json"
        if not path.is_file():
            raise DiffreidError(f"{path}: missing; --generator takes a folder written by `diffreid finetune`")
        settings = json.loads(path.read_text(encoding="utf-8"))
        model = load_base_model(settings["base_model"], tuple(settings["image_size"]))
        placeholder_ids = add_placeholders(model.tokenizer, model.text_encoder, settings["identity_tokens"])
        identities = json.loads((folder / "identities.json").read_text(encoding="utf-8"))
        state = load_file(folder / "identity.safetensors")
        anchor = anchor_embedding(model.tokenizer, model.text_encoder)
        if settings["iir"] == "table":
            iir = IdentityTable(len(identities), settings["identity_tokens"], anchor)
        else:
            iir = IdentityEncoder(state["features"], settings["identity_tokens"], anchor)
        iir.load_state_dict(state)
        if settings["adapter"] == "full":
            from diffusers import UNet2DConditionModel

            model.unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
        else:
            _load_lora(model.unet, folder, settings["lora"])
        for module in (model.unet, iir):
            module.eval().requires_grad_(False)
        return cls(model, iir, placeholder_ids, identities, settings)


LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' name for a pipeline's LoRA file


def _load_lora(unet, folder: Path, lora: dict) -> None:
    """The generator's LoRA into `unet` as adapter "default" (as fine-tuning made it): diffusers' file, or
    `lora.safetensors` in peft's key names from a generator written before diffreid wrote diffusers' format."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict

    unet.add_adapter(LoraConfig(r=lora["rank"], lora_alpha=lora["rank"], target_modules=lora["targets"]))
    if (folder / LORA_WEIGHTS).is_file():
        from diffusers.utils import convert_unet_state_dict_to_peft

        state = convert_unet_state_dict_to_peft({key[len("unet."):]: value for key, value
                                                 in load_file(folder / LORA_WEIGHTS).items()
                                                 if key.startswith("unet.")})
    else:
        state = load_file(folder / "lora.safetensors")
    result = set_peft_model_state_dict(unet, state)
    unexpected = [key for key in getattr(result, "unexpected_keys", []) if "lora" in key]
    if unexpected:
        raise DiffreidError(f"{folder}: LoRA weights that fit no layer of the base model's UNet ({unexpected[0]}, "
                            f"{len(unexpected)} in all); was it fine-tuned on another base model?")


def _identity_model(config: FinetuneConfig, model: BaseModel, pids: list[int], records) -> torch.nn.Module:
    anchor = anchor_embedding(model.tokenizer, model.text_encoder)
    if config.iir == "table":
        return IdentityTable(len(pids), config.identity_tokens, anchor, seed=config.seed)
    if config.iir not in FINETUNE_IIR:
        raise DiffreidError(f"unknown IIR {config.iir!r}; use {' or '.join(FINETUNE_IIR)}")
    if not config.encoder_model:
        raise DiffreidError("--iir encoder reads identities' image features: give --encoder-model (a Re-ID model)")
    from diffreid.reid.features import extract_features
    from diffreid.reid.loading import load_reid_model

    reid = load_reid_model(config.encoder_model)
    features, kept = extract_features(reid, records, reid.input_size, desc="identity features")
    return IdentityEncoder(identity_features(features, [r.pid for r in kept], pids), config.identity_tokens, anchor)


def identity_features(features: np.ndarray, image_pids: list[int], pids: list[int]) -> torch.Tensor:
    """Each identity's mean L2-normalised feature, in the order of `pids`."""
    features = features / np.linalg.norm(features, axis=1, keepdims=True)
    image_pids = np.asarray(image_pids)
    return torch.from_numpy(np.stack([features[image_pids == pid].mean(axis=0) for pid in pids]))


def sequences(records: list, length: int | None, seed: int) -> list:
    """Each identity's input sequence: `length` of its images (a seeded choice), or all of them."""
    if length is None:
        return list(records)
    if length < 1:
        raise DiffreidError(f"images_per_identity={length}: an input sequence needs at least one image")
    from diffreid.data.subsets import choose_images

    return choose_images(records, None, np.random.default_rng(seed), count=length)


def _prepare_unet(config: FinetuneConfig, model: BaseModel) -> None:
    unet = model.unet
    unet.requires_grad_(config.full)
    if not config.full:
        from peft import LoraConfig

        unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank, init_lora_weights="gaussian",
                                    target_modules=list(config.lora_targets)))
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()


def run(config: FinetuneConfig) -> Path:
    with open_run(config.out, config_dict(config), RESUMABLE, "finetune") as out:
        return _finetune(config, out)


def _finetune(config: FinetuneConfig, out: Path) -> Path:
    torch.manual_seed(config.seed)
    model = load_base_model(config.base_model, tuple(config.image_size) if config.image_size else None)
    warn_unlearnt_phrases(model.caption_words, str(config.base_model))
    dataset = load_dataset(config.data).require("train")
    captions, descriptions = read_captions(config.captions, dataset.root)
    train = sequences(dataset.train, config.images_per_identity, config.seed)
    pids = sorted({r.pid for r in train})
    index_of = {pid: i for i, pid in enumerate(pids)}
    items = [(r.path, [index_of[r.pid], captions.get(Path(r.path).resolve(), "")]) for r in train]
    sizing = _Sizing(model.image_size, config.encode_batch)
    latents, labels = cache_latents(sizing, model.codec, items, out / "cache" / "identities")
    identity_index = torch.tensor([label[0] for label in labels])
    prompts = [identity_prompt(config.identity_tokens, label[1]) for label in labels]

    reference, reference_prompts = _attribute_reference_set(config, model, sizing, out)
    placeholder_ids = add_placeholders(model.tokenizer, model.text_encoder, config.identity_tokens)
    iir = _identity_model(config, model, pids, train)
    model.text_encoder.requires_grad_(False)
    model.codec.requires_grad_(False)
    _prepare_unet(config, model)
    unet_params = [p for p in model.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": unet_params, "lr": config.lr},
                                   {"params": list(iir.parameters()), "lr": config.iir_lr, "weight_decay": 0.0}])
    generator = IdentityGenerator(model, iir, placeholder_ids, _identities(pids, labels, descriptions),
                                  generator_settings(config, model, iir, len(train)))
    accelerator = training_accelerator(config.mixed_precision)
    unet, _, optimizer, schedule = accelerator.prepare(model.unet, iir, optimizer,
                                                       warmup_schedule(optimizer, config.warmup_steps))
    model.text_encoder.to(accelerator.device)
    state = TrainingState(out / "checkpoints", accelerator, "step", keep=2, trainable_only=True)
    start = state.resume()
    if start:
        log.info("resuming from step %d", start)
    metrics = Metrics(out, "step", curves="loss.png", done=start)
    log.info("%d images of %d identities, %d reference images (λ %.2f); %s; %d trainable UNet parameters, "
             "%d IIR parameters", len(labels), len(pids), len(reference_prompts), config.prior_weight,
             "full UNet" if config.full else f"LoRA rank {config.lora_rank}", sum(p.numel() for p in unet_params),
             sum(p.numel() for p in iir.parameters()))
    unet.train()
    window, tick = [], time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="finetune", unit="step")
    for step in bar:
        rng = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        with accelerator.autocast():
            identity_loss, prior_loss = _losses(config, unet, generator, rng, (latents, identity_index, prompts),
                                                (reference, reference_prompts))
            loss = prior_preservation_loss(identity_loss, prior_loss, config.prior_weight)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(unet_params + list(iir.parameters()), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.append((identity_loss.item(), prior_loss.item() if prior_loss is not None else float("nan")))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            metrics.record({"step": done, "loss_identity": float(np.mean([w[0] for w in window])),
                            **({"loss_prior": float(np.nanmean([w[1] for w in window]))} if reference is not None
                               else {}),
                            "images_per_second": config.batch_size * len(window) / (time.time() - tick)})
            window, tick = [], time.time()
        if done % config.checkpoint_every == 0 or done == config.steps:
            state.save(done)
    unet.eval()
    generator.save_pretrained(out)
    _sample_sheet(IdentityGenerator.from_pretrained(out), out / "samples.png", config.sample_steps)
    write_manifest(out, "finetune", config_dict(config),
                   counts={"images": len(labels), "identities": len(pids), "reference_images": len(reference_prompts),
                           "steps": config.steps},
                   inputs={"data": config.data, "captions": str(config.captions), "base_model": config.base_model})
    return out


def _losses(config: FinetuneConfig, unet, generator: IdentityGenerator, rng: torch.Generator, identities: tuple,
            prior: tuple) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The step's denoising losses on a batch of identity images and, with an Attribute Reference
    Set, on a batch of its images (None without one); both batches drawn from `rng`."""
    (latents, identity_index, prompts), (reference, reference_prompts) = identities, prior
    scheduler, device = generator.model.noise_scheduler, next(unet.parameters()).device
    pick = torch.randint(0, len(latents), (config.batch_size,), generator=rng)
    context = generator.context([prompts[i] for i in pick], identity_index[pick])
    identity_loss = denoising_loss(unet, scheduler, latents[pick].float().to(device), context, rng, config.snr_gamma)
    if reference is None:
        return identity_loss, None
    chosen = torch.randint(0, len(reference), (config.prior_batch_size,), generator=rng)
    prior_context = generator.context([reference_prompts[i] for i in chosen], None)
    return identity_loss, denoising_loss(unet, scheduler, reference[chosen].float().to(device), prior_context, rng,
                                         config.snr_gamma)


def _attribute_reference_set(config: FinetuneConfig, model: BaseModel, sizing, out: Path):
    """DI's Attribute Reference Set as cached latents and prompts (none when FSPP is off)."""
    if config.prior_weight <= 0:
        return None, []
    folder = Path(config.reference_set or out / "reference_set")
    if config.reference_set is None:
        build_reference_set(model, folder, config.reference_size, config.seed, steps=config.sample_steps)
    return cache_latents(sizing, model.codec, read_reference_set(folder), out / "cache" / "reference")


def _identities(pids: list[int], labels: list, descriptions: dict[int, str]) -> list[dict]:
    """Each identity's description and the captions of its training images, as the generator keeps them."""
    seen: dict[int, set[str]] = {pid: set() for pid in pids}
    for label in labels:
        seen[pids[label[0]]].add(label[1])
    return [{"pid": pid, "description": descriptions.get(pid, ""), "captions": sorted(seen[pid] - {""})}
            for pid in pids]


@dataclass
class _Sizing:
    """What `cache_latents` needs to know: the size to encode at and the batch."""

    image_size: tuple[int, int]
    encode_batch: int


def generator_settings(config: FinetuneConfig, model: BaseModel, iir: torch.nn.Module, input_images: int) -> dict:
    """What `generator.json` records: the base model and how the identities and adapter were made."""
    return {
        "base_model": config.base_model, "image_size": list(model.image_size), "data": config.data,
        "identity_tokens": config.identity_tokens, "iir": config.iir, "input_images": input_images,
        "images_per_identity": config.images_per_identity, "identity_features": list(getattr(iir, "features", torch.zeros(0, 0)).shape),
        "adapter": "full" if config.full else "lora",
        "lora": None if config.full else {"rank": config.lora_rank, "targets": list(config.lora_targets)},
        "codec": {"shift": getattr(model.codec, "shift", None), "scale": getattr(model.codec, "scale", None)}}


@torch.no_grad()
def _sample_sheet(generator: IdentityGenerator, path: Path, steps: int, n: int = 8) -> None:
    """One image of each of the first identities, prompted with their descriptions."""
    chosen = list(range(min(n, len(generator.identities))))
    prompts = [identity_prompt(generator.k, generator.identities[i]["description"]) for i in chosen]
    context = generator.context(prompts, torch.tensor(chosen))
    uncond = generator.context([""], None)
    latents = sample_latents(generator.model, context, uncond, [7 + i for i in chosen], steps=steps)
    with atomic_path(path) as tmp:
        grid(to_pil(generator.model.codec.decode(latents)), len(chosen)).save(tmp, format="PNG")
