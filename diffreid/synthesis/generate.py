"""`diffreid generate`: many new images of every identity a generator learnt.

Each image's prompt joins the identity tokens and description with Diversity Injection's
attribute phrases (viewpoint, pose, scene, light) that the identity's captions never
mention; its noise comes from a seed derived from (seed, pid, index). An image is thus
the same whatever the batch size, shard or restart. Identities are the units: each one
writes its images and then `.units/<pid>.jsonl` atomically; the run that finds every
identity done (rank 0 of a launched job) merges `manifest.jsonl`, the input of
`diffreid filter`, and removes what killed writers left half-written.

OUT/ holds `images/<pid:04d>/<pid:04d>_<index:04d>.png`, `manifest.jsonl` (file, pid,
source, prompt, seed, injected) and `manifest.json` (its config names the source dataset
as `data`).
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from diffreid.artifacts import atomic_path, sweep_partial, write_manifest, write_text_atomic
from diffreid.config import GenerateConfig, config_dict
from diffreid.errors import DiffreidError
from diffreid.scaleout import local_device, merges_here, stage_shard
from diffreid.synthesis.diversity import injected_attributes
from diffreid.synthesis.finetune import Generator, load_generator
from diffreid.synthesis.identity import identity_prompt
from diffreid.synthesis.sampling import sample_latents, to_pil

log = logging.getLogger(__name__)
_STAGE = zlib.crc32(b"generate")


def image_seed(seed: int, pid: int, index: int) -> int:
    return int(np.random.default_rng([seed, _STAGE, pid, index]).integers(2**31 - 1))


def plan(generator: Generator, pid: int, position: int, config: GenerateConfig) -> list[dict]:
    """Prompt, seed and injected attributes of each image of one identity."""
    identity = generator.identities[position]
    entries = []
    for index in range(config.per_identity):
        seed = image_seed(config.seed, pid, index)
        injected = (injected_attributes(identity.get("captions", []) + [identity["description"]],
                                        np.random.default_rng(seed)) if config.injection else [])
        description = ", ".join(part for part in [identity["description"], *injected] if part)
        entries.append({"file": f"images/{pid:04d}/{pid:04d}_{index:04d}.png", "pid": pid,
                        "source": generator.settings["data"], "prompt": identity_prompt(generator.k, description),
                        "seed": seed, "injected": injected})
    return entries


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def run(config: GenerateConfig) -> Path:
    k, n = stage_shard(config.shard)
    out = Path(config.out)
    generator = load_generator(config.generator)
    device = local_device()
    dtype = _dtype(config.dtype)
    generator.model.to(device, dtype)
    generator.iir.to(device, dtype)
    if config.compile:
        generator.model.unet = torch.compile(generator.model.unet)
    learnt = [identity["pid"] for identity in generator.identities]
    if config.identities is not None:
        unknown = sorted(set(config.identities) - set(learnt))
        if unknown:
            raise DiffreidError(f"{config.generator}: identities {unknown} were not learnt by this generator "
                                f"(it knows {len(learnt)}: {learnt[0]}…{learnt[-1]}); see its identities.json")
    # an identity keeps its position among all learnt ones, so its seeds are the same in a subset
    positions = [(position, pid) for position, pid in enumerate(learnt)
                 if config.identities is None or pid in config.identities]
    pids = [pid for _, pid in positions]
    mine = [(position, pid) for i, (position, pid) in enumerate(positions) if i % n == k - 1]
    todo = [(position, pid) for position, pid in mine if not (out / ".units" / f"{pid}.jsonl").is_file()]
    log.info("%d identities, shard %d/%d holds %d, %d to do; %d images each", len(pids), k, n, len(mine), len(todo),
             config.per_identity)
    uncond = generator.context([""], None)
    with tqdm(total=len(todo) * config.per_identity, desc="generate", unit="img") as bar:
        for position, pid in todo:
            entries = plan(generator, pid, position, config)
            for start in range(0, len(entries), config.batch_size):
                batch = [e for e in entries[start:start + config.batch_size] if not (out / e["file"]).is_file()]
                if batch:
                    _draw(generator, batch, position, uncond, out, config)
                bar.update(len(entries[start:start + config.batch_size]))
            write_text_atomic(out / ".units" / f"{pid}.jsonl", "".join(json.dumps(e) + "\n" for e in entries))
    if not merges_here(config.shard):
        return out
    done = [pid for pid in pids if (out / ".units" / f"{pid}.jsonl").is_file()]
    if len(done) < len(pids):
        log.info("%d of %d identities generated; run the other shards, then once more to merge", len(done), len(pids))
        return out
    sweep_partial(out)
    lines = "".join((out / ".units" / f"{pid}.jsonl").read_text(encoding="utf-8") for pid in pids)
    write_text_atomic(out / "manifest.jsonl", lines)
    write_manifest(out, "generate", {**config_dict(config), "data": generator.settings["data"]},
                   counts={"identities": len(pids), "images": len(pids) * config.per_identity},
                   inputs={str(config.generator): "generator"})
    return out


@torch.no_grad()
def _draw(generator: Generator, batch: list[dict], position: int, uncond: torch.Tensor, out: Path,
          config: GenerateConfig) -> None:
    index = torch.full((len(batch),), position)
    context = generator.context([e["prompt"] for e in batch], index)
    latents = sample_latents(generator.model, context, uncond, [e["seed"] for e in batch], config.steps,
                             config.guidance)
    for entry, image in zip(batch, to_pil(generator.model.codec.decode(latents))):
        with atomic_path(out / entry["file"]) as tmp:
            image.save(tmp, format="PNG")
