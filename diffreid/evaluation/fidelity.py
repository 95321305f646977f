"""Prompt fidelity: does a generator draw the clothing colours its prompt asks for?

Prompts are the captions of procedural identities (their exact attributes in words);
the attribute classifier reads the samples back. Identities from the test split were
never seen in base training, so their combinations of attributes are new to the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffreid.data import load_dataset
from diffreid.evaluation.attribute_classifier import AttributeNet, read_labels
from diffreid.synthesis.base_model import BaseModel
from diffreid.synthesis.captioners.procedural import procedural_caption
from diffreid.synthesis.sampling import sample

CHECKED = ("upper colour", "lower colour")


def prompt_fidelity(model: BaseModel, classifier: AttributeNet, spec: str, n: int = 200, split: str = "query",
                    steps: int = 25, guidance: float = 5.0, seed: int = 0, batch_size: int = 16) -> dict:
    """Share of samples whose upper and lower colours the classifier reads as prompted."""
    dataset = load_dataset(spec)
    table = json.loads((Path(dataset.root) / "attributes.json").read_text(encoding="utf-8"))
    pids = sorted({r.pid for r in dataset.split(split)})[:n]
    prompts = [procedural_caption(table[f"{pid:04d}"]) for pid in pids]
    wanted = [read_labels(table[f"{pid:04d}"]) for pid in pids]
    images = []
    for start in range(0, len(prompts), batch_size):
        images += sample(model, prompts[start:start + batch_size], list(range(seed + start, seed + start + batch_size))
                         [:len(prompts[start:start + batch_size])], steps=steps, guidance=guidance)
    read = classifier.predict(images)
    hits = {name: sum(r[name] == w[name] for r, w in zip(read, wanted)) / len(read) for name in CHECKED}
    hits["both"] = sum(all(r[name] == w[name] for name in CHECKED) for r, w in zip(read, wanted)) / len(read)
    return {"samples": len(read), "fidelity": hits, "prompts": prompts, "images": images}
