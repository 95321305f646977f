"""Prompt fidelity: does a generator draw the clothing colours its prompt asks for?

Prompts are the captions of procedural identities (their exact attributes in words);
the attribute classifier reads the samples back. Identities from the test split were
never seen in base training, so their combinations of attributes are new to the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffreid.data import load_dataset
from diffreid.judges.attribute_classifier import AttributeNet, read_labels
from diffreid.synthesis.base_model import BaseModel
from diffreid.synthesis.captioners.procedural import procedural_caption
from diffreid.synthesis.sampling import sample

CHECKED = ("upper colour", "lower colour")
# Shades the procedural renderer's per-camera light makes hard to tell apart even on real
# images (the classifier's commonest confusions: navy blue / black, beige / khaki, grey /
# white); fidelity is also reported at this coarser grain, beside the exact shade.
COLOUR_FAMILIES = {"black": "dark", "dark grey": "dark", "navy blue": "dark", "grey": "light", "white": "light",
                   "blue": "blue", "light blue": "blue", "denim blue": "blue", "beige": "brown", "khaki": "brown",
                   "brown": "brown", "red": "red", "dark red": "red", "pink": "pink", "purple": "purple",
                   "green": "green", "olive": "green", "teal": "green", "orange": "orange", "yellow": "yellow"}


def family(colour: str) -> str:
    return COLOUR_FAMILIES.get(colour, colour)


def agreement(read: list[dict], wanted: list[dict]) -> dict[str, float]:
    """Share of images whose checked colours are read as wanted: per attribute, both, and by family."""
    def share(names, same) -> float:
        return sum(all(same(r[name], w[name]) for name in names) for r, w in zip(read, wanted)) / len(read)

    exact, alike = (lambda a, b: a == b), (lambda a, b: family(a) == family(b))
    hits = {name: share([name], exact) for name in CHECKED}
    hits["both"] = share(CHECKED, exact)
    hits.update({f"{name} (family)": share([name], alike) for name in CHECKED})
    hits["both (colour family)"] = share(CHECKED, alike)
    return hits


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
    return {"samples": len(read), "fidelity": agreement(read, wanted), "prompts": prompts, "images": images}
