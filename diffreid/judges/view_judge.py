"""The view judge (`diffreid attributes --judge views --data sarc3d:ROOT --data mit:ROOT`).

Diversity Injection adds a viewpoint phrase ("back view") to prompts; whether it shows
in the images is a question for a classifier of views. SARC3D and MIT name each image's
view (`view_of`), so they teach one: the PETA judge's machinery with one head, "view",
whose target is the image's own view (not its identity's), and the same held-out
identities per set. `read_views` then groups generated images by the viewpoint phrase
their prompt was given and counts what the judge reads.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

from diffreid.data import load_dataset
from diffreid.data.peta import VIEW_WORDS, view_of
from diffreid.errors import DiffreidError
from diffreid.judges.attribute_classifier import AttributeNet
from diffreid.judges.peta_judge import PetaImage, predict_files, train_judge
from diffreid.synthesis.diversity import VOCABULARY

log = logging.getLogger(__name__)
VIEW = "view"
VIEW_CLASSES: dict[str, tuple[str, ...]] = {VIEW: tuple(VIEW_WORDS.values())}
NONE = "none"  # the group of images given no viewpoint phrase (all of a --no-injection run)


def view_images(spec: str) -> list[PetaImage]:
    """Every image of a dataset whose file name gives its view; the others are counted and left out."""
    dataset = load_dataset(spec)
    items, unknown = [], 0
    for record in dataset.train:
        view = view_of(record.path)
        if view is None:
            unknown += 1
            continue
        items.append(PetaImage(Path(record.path), spec, Path(record.path).parent.name, record.pid,
                               {VIEW: frozenset({view})}))
    if unknown:
        log.warning("%s: %d images whose file name gives no view; left out", spec, unknown)
    return items


def train_view_judge(specs: list[str], out: Path, held_out_fraction: float = 0.2, **settings) -> AttributeNet:
    """Train the view judge on the training identities' images; accuracy.json as the PETA judge's.
    `settings`: those of `train_judge`."""
    items = [item for spec in specs for item in view_images(spec)]
    if not items:
        raise DiffreidError(f"{', '.join(specs)}: no image whose file name gives its view; the view judge learns "
                            "from PETA's SARC3D (001_front.png) and MIT (00001_male_back.jpg): pass "
                            "--data sarc3d:ROOT/SARC3D --data mit:ROOT/MIT (or peta-all:ROOT)")
    return train_judge(items, VIEW_CLASSES, out, {"labels": "views", "data": list(specs)}, held_out_fraction,
                       **settings)


def viewpoint_group(injected: tuple[str, ...]) -> str:
    """The viewpoint phrase(s) DI injected into a prompt, or NONE."""
    phrases = {phrase.lower() for phrase in VOCABULARY["viewpoint"]}
    return ", ".join(phrase.lower() for phrase in injected if phrase.lower() in phrases) or NONE


def read_views(net: AttributeNet, generated: str | Path, batch_size: int = 128) -> dict:
    """Per injected viewpoint phrase: how many generated images were given it, and the share the judge reads
    as each view. Any source will do: the phrase, not the person, is what is checked."""
    from diffreid.filtering.generated import read_generated

    source, made = read_generated(generated)
    predictions = predict_files(net, [item.path for item in made], batch_size, "generated images")
    groups: dict[str, Counter] = defaultdict(Counter)
    for item, prediction in zip(made, predictions):
        groups[viewpoint_group(item.injected)][prediction[VIEW]] += 1
    return {"source": source,
            "views": {group: {"images": sum(counts.values()),
                              "read_as": {view: counts[view] / sum(counts.values()) for view in net.vocabulary[VIEW]}}
                      for group, counts in sorted(groups.items())}}


def judge_generated(judge: str | Path, generated: str | Path, batch_size: int = 128) -> dict:
    """What a judge reads on one generated folder: PETA attribute fidelity (an attribute judge, PETA
    sources only), the views of injected viewpoint phrases (a view judge, any source), or both."""
    from diffreid.judges.attribute_classifier import load_attribute_classifier
    from diffreid.judges.peta_judge import CLASSES, peta_fidelity

    net = load_attribute_classifier(judge)
    attributes, views = set(CLASSES) <= set(net.vocabulary), VIEW in net.vocabulary
    if not (attributes or views):
        raise DiffreidError(f"{judge}: neither PETA attribute heads ({', '.join(CLASSES)}) nor a view head "
                            f"(heads: {', '.join(net.vocabulary)}); train a judge with diffreid attributes "
                            "--data peta-all:ROOT, or with --judge views --data sarc3d:ROOT/SARC3D --data mit:ROOT/MIT")
    found = peta_fidelity(judge, generated, batch_size) if attributes else {}
    return {**read_views(net, generated, batch_size), **found} if views else found
