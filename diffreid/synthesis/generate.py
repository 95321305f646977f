"""`diffreid generate`: many new images of every identity, from what a generator learnt or from
the person's own images.

Two sources of identity. A fine-tuned generator (`diffreid finetune`) draws the identities
it learnt as tokens (IIR table or encoder). A base model trained to read a reference image
(`diffreid base-train --iir reference`, the image-level IIR) draws any person from their
images alone, with no fine-tuning: `--references FORMAT:ROOT --split query` draws every
identity of that split, each image from one of its images in turn. Either way each
image's prompt joins the identity's description with Diversity Injection's attribute
phrases (viewpoint, pose, scene, light) that its captions never mention, and its noise
comes from a seed derived from (seed, pid, index). An image is thus the same whatever
the batch size, shard or restart. Batches run across identities (one or two images of
each of many people is the zero-shot case). Identities are the units: once all its images
are written, an identity writes `.units/<pid>.jsonl` atomically; the run that finds every identity done (rank 0
of a launched job) merges `manifest.jsonl`, the input of `diffreid filter`, and removes
what killed writers left half-written.

OUT/ holds `images/<pid:04d>/<pid:04d>_<index:04d>.png`, `manifest.jsonl` (file, pid,
source, prompt, seed, injected, and the reference image where there is one) and
`manifest.json` (its config names the source dataset as `data`).
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from diffreid.artifacts import atomic_path, read_jsonl, sweep_partial, write_manifest, write_text_atomic
from diffreid.config import BaseTrainConfig, GenerateConfig, config_dict
from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.scaleout import local_device, merges_here, stage_shard
from diffreid.synthesis.base_model import load_base_model
from diffreid.synthesis.base_train import load_image
from diffreid.synthesis.diversity import injected_attributes, warn_unlearnt_phrases
from diffreid.synthesis.finetune import IdentityGenerator
from diffreid.synthesis.identity_guidance import IdentityGuidance
from diffreid.synthesis.iir import identity_prompt
from diffreid.synthesis.sampling import sample_latents, to_pil

log = logging.getLogger(__name__)
_STAGE = zlib.crc32(b"generate")


def image_seed(seed: int, pid: int, index: int) -> int:
    return int(np.random.default_rng([seed, _STAGE, pid, index]).integers(2**31 - 1))


def _description(description: str, injected: list[str]) -> str:
    return ", ".join(part for part in [description, *injected] if part)


class LearntIdentities:
    """The identities a fine-tuned generator learnt, drawn from their identity tokens."""

    def __init__(self, config: GenerateConfig):
        self.generator = IdentityGenerator.from_pretrained(config.generator)
        self.model = self.generator.model
        self.data = self.generator.settings["data"]
        self.pids = [identity["pid"] for identity in self.generator.identities]

    def to(self, device, dtype) -> None:
        self.model.to(device, dtype)
        self.generator.iir.to(device, dtype)
        self.uncond = self.generator.context([""], None)

    def plan(self, pid: int, position: int, config: GenerateConfig) -> list[dict]:
        """Prompt, seed and injected attributes of each image of one identity."""
        identity = self.generator.identities[position]
        entries = []
        for index in range(config.per_identity):
            seed = image_seed(config.seed, pid, index)
            injected = (injected_attributes(identity.get("captions", []) + [identity["description"]],
                                            np.random.default_rng(seed)) if config.injection else [])
            entries.append({"file": f"images/{pid:04d}/{pid:04d}_{index:04d}.png", "pid": pid, "source": self.data,
                            "prompt": identity_prompt(self.generator.k, _description(identity["description"], injected)),
                            "seed": seed, "injected": injected})
        return entries

    def latents(self, batch: list[dict], positions: list[int], config: GenerateConfig) -> torch.Tensor:
        context = self.generator.context([e["prompt"] for e in batch], torch.tensor(positions))
        return sample_latents(self.model, context, self.uncond, [e["seed"] for e in batch], config.steps,
                              config.guidance)


class ReferenceIdentities:
    """Every identity of a dataset split, drawn from its own images by a model that reads references."""

    def __init__(self, config: GenerateConfig):
        self.model = load_base_model(config.generator)
        if not self.model.takes_reference:
            raise DiffreidError(f"{config.generator}: this base model draws from text only; drawing from reference "
                                "images needs one trained with `diffreid base-train --iir reference`")
        dataset = load_dataset(config.references).require(config.split)
        self.root = Path(dataset.root)
        self.data = config.references
        self.images: dict[int, list[Path]] = {}
        for record in sorted(dataset.split(config.split), key=lambda r: r.path):
            self.images.setdefault(record.pid, []).append(Path(record.path))
        self.images.pop(0, None)  # distractors have no identity to keep
        self.pids = sorted(self.images)
        self.descriptions, self.captions = _read_descriptions(config.captions)
        self.pixels: dict[str, torch.Tensor] = {}
        self.identity_spec = (config.identity_model, config.identity_guidance, config.identity_until)
        self.identity: IdentityGuidance | None = None
        if config.injection:
            warn_unlearnt_phrases(self.model.caption_words, str(config.generator))

    def to(self, device, dtype) -> None:
        self.model.to(device, dtype)
        self.uncond = self.model.encode_text([""])
        model, scale, until = self.identity_spec
        if model:
            self.identity = IdentityGuidance.load(model, self.model.codec, scale, until, device)

    def plan(self, pid: int, position: int, config: GenerateConfig) -> list[dict]:
        """Prompt, seed, injected attributes and reference image of each image of one identity;
        unreadable references are reported and skipped (an identity with none is left out)."""
        references = [path for path in self.images[pid] if self._read(path)]
        if not references:
            log.warning("person %d: no readable reference image among %s; skipped", pid,
                        ", ".join(str(p) for p in self.images[pid]))
            return []
        description = self.descriptions.get(pid, "")
        entries = []
        for index in range(config.per_identity):
            seed = image_seed(config.seed, pid, index)
            injected = (injected_attributes(self.captions.get(pid, []) + [description], np.random.default_rng(seed))
                        if config.injection else [])
            # each image starts at the next of the person's images; with several per image, the following
            # ones join it (cycling, so every image of a batch has as many)
            chosen = [_relative(references[(index + j) % len(references)], self.root)
                      for j in range(config.references_per_image)]
            entries.append({"file": f"images/{pid:04d}/{pid:04d}_{index:04d}.png", "pid": pid, "source": self.data,
                            "prompt": _description(description or BaseTrainConfig.real_caption, injected),
                            "seed": seed, "injected": injected, "reference": chosen[0],
                            **({"references": chosen} if len(chosen) > 1 else {})})
        return entries

    def _read(self, path: Path) -> bool:
        key = _relative(path, self.root)
        if key not in self.pixels:
            image = load_image(path, self.model.image_size)
            if image is None:
                log.warning("%s: unreadable reference image, skipped; `diffreid data check %s` lists such files",
                            path, self.data)
                return False
            self.pixels[key] = image
        return True

    @torch.no_grad()
    def latents(self, batch: list[dict], positions: list[int], config: GenerateConfig) -> torch.Tensor:
        parameter = next(self.model.unet.parameters())
        slots = zip(*(e.get("references", [e["reference"]]) for e in batch))  # the j-th reference of every image
        pixels = [torch.stack([self.pixels[key] for key in slot]).to(parameter) for slot in slots]
        reference = [self.model.codec.encode(p) for p in pixels]
        context = self.model.encode_text([e["prompt"] for e in batch])
        targets = self.identity.targets(pixels) if self.identity else None
        return sample_latents(self.model, context, self.uncond, [e["seed"] for e in batch], config.steps,
                              config.guidance, reference, config.reference_guidance, config.strength,
                              self.identity, targets)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _read_descriptions(folder: Path | None) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Identity descriptions and their images' captions from a `diffreid caption` folder, if given."""
    if folder is None:
        return {}, {}
    for name in ("identities.jsonl", "captions.jsonl"):
        if not (Path(folder) / name).is_file():
            raise DiffreidError(f"{Path(folder) / name}: missing; --captions takes a folder written by "
                                "`diffreid caption` on the reference dataset")
    descriptions = {int(e["pid"]): e["description"] for e in read_jsonl(Path(folder) / "identities.jsonl")
                    if {"pid", "description"} <= set(e)}
    captions: dict[int, list[str]] = {}
    for entry in read_jsonl(Path(folder) / "captions.jsonl"):
        if {"pid", "caption"} <= set(entry):
            captions.setdefault(int(entry["pid"]), []).append(entry["caption"])
    return descriptions, captions


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def run(config: GenerateConfig) -> Path:
    k, n = stage_shard(config.shard)
    if config.strength != 1.0 and not config.references:
        raise DiffreidError(f"--strength {config.strength}: starts from reference images; give --references")
    if config.references_per_image != 1 and not config.references:
        raise DiffreidError(f"--references-per-image {config.references_per_image}: give --references")
    if config.references_per_image < 1:
        raise DiffreidError(f"--references-per-image {config.references_per_image}: at least 1")
    if config.identity_model and not config.references:
        raise DiffreidError(f"--identity-model {config.identity_model}: guides towards reference images; "
                            "give --references")
    if config.identity_guidance and not config.identity_model:
        raise DiffreidError(f"--identity-guidance {config.identity_guidance:g}: give --identity-model, a PyTorch "
                            "Re-ID model that is not the one judging the result")
    out = Path(config.out)
    source = ReferenceIdentities(config) if config.references else LearntIdentities(config)
    source.to(local_device(), _dtype(config.dtype))
    if config.compile:
        source.model.unet = torch.compile(source.model.unet)
    known = source.pids
    if config.identities is not None:
        unknown = sorted(set(config.identities) - set(known))
        if unknown:
            where = (f"{config.references} ({config.split})" if config.references else
                     f"{config.generator} (see its identities.json)")
            raise DiffreidError(f"identities {unknown} are not among the {len(known)} of {where}: "
                                f"{known[0]}…{known[-1]}")
    # an identity keeps its position among all, so its seeds are the same in a subset
    positions = [(position, pid) for position, pid in enumerate(known)
                 if config.identities is None or pid in config.identities]
    pids = [pid for _, pid in positions]
    mine = [(position, pid) for i, (position, pid) in enumerate(positions) if i % n == k - 1]
    todo = [(position, pid) for position, pid in mine if not (out / ".units" / f"{pid}.jsonl").is_file()]
    log.info("%d identities, shard %d/%d holds %d, %d to do; %d images each", len(pids), k, n, len(mine), len(todo),
             config.per_identity)
    with tqdm(total=len(todo) * config.per_identity, desc="generate", unit="img") as bar:
        _draw(source, todo, config, out, bar)
    if not merges_here(config.shard):
        return out
    done = [pid for pid in pids if (out / ".units" / f"{pid}.jsonl").is_file()]
    if len(done) < len(pids):
        log.info("%d of %d identities generated; run the other shards, then once more to merge", len(done), len(pids))
        return out
    sweep_partial(out)
    lines = "".join((out / ".units" / f"{pid}.jsonl").read_text(encoding="utf-8") for pid in pids)
    write_text_atomic(out / "manifest.jsonl", lines)
    write_manifest(out, "generate", {**config_dict(config), "data": source.data},
                   counts={"identities": len(pids), "images": lines.count("\n")},
                   inputs={str(config.generator): "generator",
                           **({config.references: "references"} if config.references else {})})
    return out


def _draw(source, todo: list[tuple[int, int]], config: GenerateConfig, out: Path, bar) -> None:
    """Draw the images of `todo`'s identities in batches that run across identities; an identity's
    unit file is written as soon as its last image is on disk."""
    waiting: dict[int, list[dict]] = {}  # pid -> its entries, until all are drawn
    left: dict[int, int] = {}
    queue: list[tuple[int, int, dict]] = []  # (position, pid, entry) still to draw

    def finish(pid: int) -> None:
        write_text_atomic(out / ".units" / f"{pid}.jsonl", "".join(json.dumps(e) + "\n" for e in waiting.pop(pid)))

    def flush(size: int) -> None:
        while len(queue) >= size and queue:
            batch, queue[:] = queue[:config.batch_size], queue[config.batch_size:]
            _save(source.model, source.latents([e for _, _, e in batch], [p for p, _, _ in batch], config),
                  [e for _, _, e in batch], out)
            bar.update(len(batch))
            for _, pid, _ in batch:
                left[pid] -= 1
                if not left[pid]:
                    finish(pid)

    for position, pid in todo:
        entries = source.plan(pid, position, config)
        waiting[pid] = entries
        missing = [e for e in entries if not (out / e["file"]).is_file()]
        bar.update(config.per_identity - len(missing))
        left[pid] = len(missing)
        if not missing:
            finish(pid)
        queue += [(position, pid, e) for e in missing]
        flush(config.batch_size)
    flush(1)


@torch.no_grad()
def _save(model, latents: torch.Tensor, batch: list[dict], out: Path) -> None:
    for entry, image in zip(batch, to_pil(model.codec.decode(latents))):
        with atomic_path(out / entry["file"]) as tmp:
            image.save(tmp, format="PNG")
