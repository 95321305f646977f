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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from diffreid.artifacts import atomic_path, write_json_atomic, write_manifest
from diffreid.config import BASE_TRAIN_IIR, BaseTrainConfig, config_dict
from diffreid.data import load_dataset
from diffreid.data.peta import FORMATS as PETA_FORMATS, PID_STRIDE, held_out_people
from diffreid.errors import DiffreidError
from diffreid.runtime import default_device, training_accelerator
from diffreid.synthesis.base_model import (MiniatureShape, load_base_model, new_miniature, new_reference_tokens,
                                            with_reference_input)
from diffreid.synthesis.captioners.peta import PetaCaptioner
from diffreid.synthesis.captioners.procedural import read_procedural_captions
from diffreid.synthesis.diversity import words
from diffreid.synthesis.reference_tokens import reference_context
from diffreid.synthesis.sampling import grid, image_tensor, sample, to_pil
from diffreid.training.checkpoints import open_run
from diffreid.training.metrics import Metrics
from diffreid.training.schedules import warmup_schedule
from diffreid.training.state import TrainingState

log = logging.getLogger(__name__)
CHUNK = 512  # images per cache file: a killed encoding loses at most one chunk
SAMPLE_SEED = 1234
RESUMABLE_CHANGES = ("steps", "sample_every", "sample_steps", "checkpoint_every", "log_every")  # safe to change on resume


@dataclass(frozen=True)
class TrainingImage:
    path: Path
    caption: str
    identity: str  # "<dataset index>:<pid>": one person, kept apart across the run's datasets
    source: int  # its dataset's index in config.data
    camera: int  # its camera id in that dataset: references can be asked from another camera


def training_images(config: BaseTrainConfig) -> list[TrainingImage]:
    """Every training image with its caption and person, in a fixed order; a PETA judge's held-out
    identities left out, so the judge later reads people the model never saw."""
    held_out = held_out_people(config.exclude_judged)
    items: list[TrainingImage] = []
    for source, spec in enumerate(config.data):
        dataset = load_dataset(spec).require(*config.splits)
        records = [r for split in config.splits for r in dataset.split(split)
                   if (Path(r.path).parent.name, r.pid % PID_STRIDE) not in held_out or dataset.name not in PETA_FORMATS]
        dropped = sum(len(dataset.split(split)) for split in config.splits) - len(records)
        if dropped:
            log.info("%s: %d images of the judge's held-out identities left out", spec, dropped)
        for record, caption in zip(records, _captions(dataset, records, config.real_caption)):
            items.append(TrainingImage(Path(record.path), caption, f"{source}:{record.pid}", source, record.camid))
    if not items:
        raise DiffreidError(f"no images in splits {', '.join(config.splits)} of {', '.join(config.data)}")
    return items


def _captions(dataset, records, real_caption: str) -> list[str]:
    """Procedural persons from their attributes.json, PETA sets from their Label.txt, others `real_caption`."""
    attributes = Path(dataset.root) / "attributes.json"
    if attributes.is_file():
        captions = read_procedural_captions(attributes)
        return [captions.get(r.pid, real_caption) for r in records]
    if dataset.name in PETA_FORMATS:
        return [c or real_caption for c in PetaCaptioner().caption(records)]
    return [real_caption] * len(records)


def load_image(path: Path, size: tuple[int, int]) -> torch.Tensor | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image_tensor(image, size)
    except OSError as error:
        log.warning("%s: unreadable, skipped (%s)", path, error)
        return None


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
                batch = [(load_image(p, config.image_size), c) for p, c in part[i:i + config.encode_batch]]
                batch = [(x, c) for x, c in batch if x is not None]
                if batch:
                    pixels = torch.stack([x for x, _ in batch]).to(next(codec.parameters()).device)
                    encoded.append(codec.encode(pixels).half().cpu())
                    kept += [c for _, c in batch]
            with atomic_path(path) as tmp:
                save_file({"latents": torch.cat(encoded)}, tmp, metadata={"captions": json.dumps(kept)})
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            captions += json.loads(f.metadata()["captions"])
        latents.append(load_file(path)["latents"])
    return torch.cat(latents), captions


def denoising_loss(unet, scheduler, latents: torch.Tensor, context: torch.Tensor, generator: torch.Generator,
                   snr_gamma: float | None = None, reference: torch.Tensor | None = None,
                   reference_tokens=None) -> torch.Tensor:
    """The diffusion loss: predict the scheduler's target (noise or v) at a random timestep;
    `reference` latents, for a UNet that reads them, join the noisy ones as input channels, or,
    given its `reference_tokens` reader, the text's tokens as tokens.

    With `snr_gamma`, min-SNR weighting (Hang et al. 2023) keeps the easy, low-noise steps
    from dominating; it speeds up small models most.
    """
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, t)
    target = scheduler.get_velocity(latents, noise, t) if scheduler.config.prediction_type == "v_prediction" else noise
    if reference is not None and reference_tokens is not None:
        context, reference = reference_context(reference_tokens, context, reference), None
    inputs = noisy if reference is None else torch.cat([noisy, reference.to(noisy)], dim=1)
    prediction = unet(inputs, t, encoder_hidden_states=context).sample
    per_item = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if snr_gamma is None:
        return per_item.mean()
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, t)
    weight = torch.clamp(snr, max=snr_gamma) / (snr + 1 if scheduler.config.prediction_type == "v_prediction" else snr)
    return (per_item * weight).mean()


def run(config: BaseTrainConfig) -> Path:
    from diffusers.training_utils import EMAModel

    if config.iir not in (None, *BASE_TRAIN_IIR):
        raise DiffreidError(f"iir {config.iir!r}: base-train knows \"reference\" (a reference image read by the "
                            "UNet); identity tokens are learnt per dataset by `diffreid finetune --iir table|encoder`")
    if config.reference_tokens < 0 or (config.reference_tokens and config.iir != "reference"):
        raise DiffreidError(f"reference_tokens={config.reference_tokens}: the number of tokens a reference image "
                            "becomes (0: input channels instead), with iir: reference")
    with open_run(config.out, config_dict(config), RESUMABLE_CHANGES, "base-train") as out:
        model = _initial_model(config)
        items = training_images(config)
        # encoded where training will run: on a GPU the codec takes seconds where a CPU takes minutes
        raw, labels = cache_latents(config, model.codec.to(default_device()).eval(),
                                    [(i.path, asdict(i) | {"path": str(i.path)}) for i in items], out / "cache")
        model.codec.cpu()
        if config.init is None:  # the codec's normalisation, measured once on these people (SD's VAE scaling factor)
            model.codec.shift, model.codec.scale = float(raw.float().mean()), float(1 / raw.float().std())
            latents = (raw.float() - model.codec.shift) * model.codec.scale
        else:  # encoded by the model's own codec: already in its latent scale
            latents = raw.float()
        log.info("%d images (%d unreadable skipped), latents %s, shift %.4f scale %.4f", len(labels),
                 len(items) - len(labels), tuple(latents.shape[1:]), model.codec.shift, model.codec.scale)
        _train(config, out, model, latents, labels, training_accelerator(config.mixed_precision), EMAModel)
    return out


class BatchDraw:
    """Which images, flips, prompt drops and references make up step `step`'s batch: drawn from
    (seed, step) alone, so a resumed run draws the batches it would have drawn."""

    def __init__(self, config: BaseTrainConfig, labels: list[dict]):
        self.config = config
        sources = torch.tensor([label["source"] for label in labels])
        self.members = [torch.nonzero(sources == s).flatten() for s in range(len(config.data))]
        if config.data_weights is not None:
            if len(config.data_weights) != len(config.data) or min(config.data_weights) < 0:
                raise DiffreidError(f"data_weights {config.data_weights}: one weight >= 0 per dataset "
                                    f"({len(config.data)}: {', '.join(config.data)})")
            weights = torch.tensor([w if len(m) else 0.0 for w, m in zip(config.data_weights, self.members)])
            self.weights = weights / weights.sum()
        else:
            self.weights = None
        self.partners = reference_partners(labels, config.reference_pairs)
        self.size = len(labels)

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        config, b = self.config, self.config.batch_size
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        if self.weights is None:
            index = torch.randint(0, self.size, (b,), generator=generator)
        else:
            source = torch.multinomial(self.weights, b, replacement=True, generator=generator)
            pick = torch.rand(b, generator=generator)
            index = torch.stack([self.members[s][int(p * len(self.members[s]))] for s, p in zip(source.tolist(), pick)])
        draw = {"index": index, "flip": torch.rand(b, generator=generator) < 0.5,
                "drop_caption": torch.rand(b, generator=generator) < config.caption_dropout,
                "generator": generator}
        if config.iir == "reference":
            # an image's reference is another image of its person; a person seen once has none (dropped)
            choice = torch.rand(b, generator=generator)
            draw["reference"] = torch.tensor([
                int(self.partners[i][int(c * len(self.partners[i]))]) if len(self.partners[i]) else -1
                for i, c in zip(index.tolist(), choice)])
            draw["reference"][torch.rand(b, generator=generator) < config.reference_dropout] = -1
            draw["flip_reference"] = torch.rand(b, generator=generator) < 0.5
        return draw


def reference_partners(labels: list[dict], pairs: str) -> list[torch.Tensor]:
    """Each image's possible references: the other images of its person, or only those of
    another camera, so that the reference is a new view of the person rather than the same
    pose, which a UNet reading aligned reference latents learns to copy."""
    if pairs not in ("any", "other_camera"):
        raise DiffreidError(f"reference_pairs={pairs!r}: use any or other_camera")
    if pairs == "other_camera" and any("camera" not in label for label in labels):
        raise DiffreidError("reference_pairs=other_camera needs each image's camera, which this run's latent cache "
                            "predates: delete OUT/cache (it is rebuilt) or use reference_pairs=any")
    by_identity = images_by_person(labels)
    return [torch.tensor([j for j in by_identity[label["identity"]]
                          if j != i and (pairs == "any" or labels[j]["camera"] != label["camera"])], dtype=torch.long)
            for i, label in enumerate(labels)]


def images_by_person(labels: list[dict]) -> dict[str, list[int]]:
    """The indices of each person's training images."""
    found: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        found.setdefault(label["identity"], []).append(i)
    return found


def latents_at(latents: torch.Tensor, index: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """The latents at `index` (zeros where it is -1: no reference), flipped where asked."""
    found = latents[index.clamp(min=0)].clone()
    found[index < 0] = 0
    found[flip] = found[flip].flip(-1)
    return found


def _initial_model(config: BaseTrainConfig):
    """A fresh miniature of the config's shape, or the one `init` names, to go on training.

    Continuing keeps the model's codec normalisation (its UNet learned in that latent
    scale), as fine-tuning SD keeps the VAE's scaling factor; its shape must be the config's.
    """
    if config.init is None:
        shape = MiniatureShape(image_size=tuple(config.image_size), unet_channels=tuple(config.unet_channels),
                               layers_per_block=config.layers_per_block, text_hidden=config.text_hidden,
                               text_layers=config.text_layers, text_heads=max(1, config.text_hidden // 32))
        return new_miniature(shape, config.codec, config.tokenizer, seed=config.seed,
                             reference=config.iir == "reference", reference_tokens=config.reference_tokens)
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
    if config.iir == "reference" and not model.takes_reference:
        torch.manual_seed(config.seed)
        if config.reference_tokens:
            log.info("init %s draws from text only: it gets a reader of references as %d tokens", config.init,
                     config.reference_tokens)
            model.reference_tokens = new_reference_tokens(model, config.reference_tokens)
        else:
            log.info("init %s draws from text only: its UNet is widened to read a reference (new inputs at zero)",
                     config.init)
            model.unet = with_reference_input(model.unet)
    elif config.iir is None and model.takes_reference:
        raise DiffreidError(f"init {config.init} reads reference images; go on training it with iir: reference")
    elif model.takes_reference:
        tokens = model.reference_tokens.config.tokens if model.reference_tokens is not None else 0
        if tokens != config.reference_tokens:
            raise DiffreidError(f"init {config.init} reads references as " +
                                (f"{tokens} tokens" if tokens else "input channels") +
                                f"; go on with reference_tokens={tokens}")
    return model


def _plain(value):
    """Lists (from YAML or a model's config) and tuples compare alike."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _train(config, out, model, latents, labels, accelerator, ema_class) -> None:
    captions = [label["caption"] for label in labels]
    model.caption_words = words(captions) | (model.caption_words or set())  # what its text encoder reads
    draw = BatchDraw(config, labels)
    learners = [m for m in (model.unet, model.text_encoder, model.reference_tokens) if m is not None]
    trained = [p for module in learners for p in module.parameters()]
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
    ema = ema_class(trained, decay=config.ema_decay, foreach=True)  # one fused update, not one per tensor
    for module in learners:
        module.train()
    schedule = warmup_schedule(optimizer, config.warmup_steps, config.steps, min_rate=0.1)  # cosine to a tenth
    unet, text_encoder, *reader, optimizer, schedule = accelerator.prepare(*learners, optimizer, schedule)
    state = TrainingState(out / "checkpoints", accelerator, "step", keep=2, extras={"ema": ema})
    start = state.resume()
    if start:
        log.info("resuming from step %d (of %d)", start, config.steps)
    metrics = Metrics(out, "step", curves="loss.png", done=start)
    ema.to(accelerator.device)
    tokens = model.tokenize(sorted(set(captions)) + [""])
    token_of = {c: i for i, c in enumerate(sorted(set(captions)) + [""])}
    caption_ids = torch.tensor([token_of[c] for c in captions])
    log.info("%d trainable parameters (%s), batch %d, %d steps, precision %s",
             sum(p.numel() for p in trained), ", ".join(f"{type(m).__name__} {sum(p.numel() for p in m.parameters())}"
                                                       for m in learners), config.batch_size, config.steps,
             accelerator.mixed_precision)
    window, tick = [], time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="base-train", unit="step")
    for step in bar:
        batch = draw(step)
        index = batch["index"]
        images = latents_at(latents, index, batch["flip"])
        reference = (latents_at(latents, batch["reference"], batch["flip_reference"]).to(accelerator.device)
                     if "reference" in batch else None)
        ids = caption_ids[index].clone()
        ids[batch["drop_caption"]] = token_of[""]
        lr = optimizer.param_groups[0]["lr"]
        with accelerator.autocast():
            # each distinct caption of the batch encoded once: the same values and gradients, far cheaper
            distinct, inverse = ids.unique(return_inverse=True)
            context = text_encoder(tokens[distinct].to(accelerator.device)).last_hidden_state[inverse.to(accelerator.device)]
            loss = denoising_loss(unet, model.noise_scheduler, images.to(accelerator.device), context,
                                  batch["generator"], config.snr_gamma, reference, *reader)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(trained)
        window.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            metrics.record({"step": done, "lr": lr, "loss_denoise": sum(window) / len(window),
                            "images_per_second": len(window) * config.batch_size / (time.time() - tick)})
            window, tick = [], time.time()
        if done % config.checkpoint_every == 0 or done == config.steps:
            state.save(done)
        if done % config.sample_every == 0 or done == config.steps:
            _export(model, ema, trained, out / "model")
            _sample_sheet(labels, latents, out / "samples" / f"step-{done:06d}.png", config.sample_steps)
            for module in learners:
                module.train()
    write_manifest(out, "base-train", config_dict(config), counts={"images": len(labels), "steps": config.steps},
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


@torch.no_grad()
def _sample_sheet(labels: list[dict], latents: torch.Tensor, path: Path, steps: int) -> None:
    """Eight training images' prompts (of distinct captions), drawn with the EMA weights just exported,
    two seeds each; a model that reads references draws each from another image of that person,
    shown in the first row."""
    from diffreid.synthesis.base_model import load_base_model

    exported = load_base_model(path.parents[1] / "model")
    partner = images_by_person(labels)
    first = {}
    for i, label in enumerate(labels):  # a reference-reading model is shown people it has another image of
        if not exported.takes_reference or len(partner[label["identity"]]) > 1:
            first.setdefault(label["caption"], i)
    chosen = [first[c] for c in sorted(first)]
    chosen = [chosen[i * len(chosen) // 8] for i in range(min(8, len(chosen)))]
    prompts = [labels[i]["caption"] for i in chosen]
    seeds = [SAMPLE_SEED + i for i in range(2 * len(prompts))]
    shown = []
    reference = None
    if exported.takes_reference:
        index = torch.tensor([next((j for j in partner[labels[i]["identity"]] if j != i), -1) for i in chosen])
        reference = latents_at(latents, index, torch.zeros(len(index), dtype=torch.bool))
        shown = to_pil(exported.codec.decode(reference))
        reference = reference.repeat(2, 1, 1, 1)
    images = sample(exported, prompts * 2, seeds, steps=steps, reference=reference)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        grid(shown + images, len(prompts)).save(tmp, format="PNG")
    write_json_atomic(path.with_suffix(".json"), {"prompts": prompts, "seeds": SAMPLE_SEED,
                                                  "references": [labels[i]["identity"] for i in chosen]
                                                  if reference is not None else None})
