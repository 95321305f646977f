"""The Attribute Reference Set: what the frozen base model draws for fine-grained prompts.

About 200 images (configurable) from prompts composed of the DI vocabulary (clothing,
carried objects, actions, poses, viewpoints, camera heights, scenes, light). Fine-tuning
denoises them under their own prompts beside the identities (the FSPP loss), so the
model keeps those attributes while it learns the identities. Written as
`images/ref_NNNN.png` and `prompts.jsonl` (file, prompt, seed), each image atomically,
so a killed build resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from diffreid.artifacts import atomic_path, inside_root, read_jsonl, write_text_atomic
from diffreid.errors import DiffreidError
from diffreid.synthesis.base_model import BaseModel
from diffreid.synthesis.diversity import reference_prompt
from diffreid.synthesis.sampling import sample


def build_reference_set(model: BaseModel, out: Path, n: int = 200, seed: int = 0, steps: int = 25,
                        guidance: float = 5.0, batch_size: int = 8) -> Path:
    out = Path(out)
    entries = [{"file": f"images/ref_{i:04d}.png", "prompt": reference_prompt(seed * 100_003 + i),
                "seed": seed * 100_003 + i} for i in range(n)]
    todo = [e for e in entries if not (out / e["file"]).is_file()]
    for start in tqdm(range(0, len(todo), batch_size), desc="attribute reference set", unit="batch"):
        batch = todo[start:start + batch_size]
        for entry, image in zip(batch, sample(model, [e["prompt"] for e in batch], [e["seed"] for e in batch],
                                              steps=steps, guidance=guidance)):
            with atomic_path(out / entry["file"]) as tmp:
                image.save(tmp, format="PNG")
    write_text_atomic(out / "prompts.jsonl", "".join(json.dumps(e) + "\n" for e in entries))
    return out


def read_reference_set(folder: Path) -> list[tuple[Path, str]]:
    path = Path(folder) / "prompts.jsonl"
    if not path.is_file():
        raise DiffreidError(f"{path}: missing; build the attribute reference set first (finetune builds one when "
                            "--reference-set is not given)")
    entries = read_jsonl(path)
    return [(inside_root(folder, e["file"], path), e["prompt"]) for e in entries]
