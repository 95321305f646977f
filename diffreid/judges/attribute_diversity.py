"""Attribute diversity: the attribute values generated images show that their identity's input images lack.

Diversity Injection is meant to give a generated person attributes its input sequence
does not have. The attribute classifier reads every generated image and every input
(training) image of the same identity; per identity, the (attribute, value) pairs read on
its generated images and never on its input images are counted. Reads are compared with
reads, not with the identity's true labels, so the classifier's own noise on the input
images (one shirt read as two shades under two cameras) does not count as new. Values
seen grow with the number of images, so folders are compared at the same count per
identity (`per_identity`).

A new value is a departure from the input sequence: a new view of a bag, or a shirt of
another colour. Read it beside identity consistency, which says how much of it is drift.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from PIL import Image

from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.filtering.generated import read_generated

log = logging.getLogger(__name__)


def new_attribute_values(classifier, generated: str | Path, per_identity: int | None = None) -> dict:
    """Mean number of attribute values per identity read on generated images but on none of its inputs.

    `classifier` is anything with `predict(images) -> [{attribute: value}]` (an `AttributeNet`)."""
    source, items = read_generated(generated)
    inputs = defaultdict(list)
    for record in load_dataset(source).train:
        inputs[record.pid].append(record.path)
    made = defaultdict(list)
    for item in items:
        if per_identity is None or len(made[item.pid]) < per_identity:
            made[item.pid].append(item.path)
    missing = sorted(pid for pid in made if pid not in inputs)
    if missing:
        log.warning("%s: identities %s have no training images in %s; not counted", generated, missing[:10], source)
    pids = sorted(pid for pid in made if pid in inputs)
    if not pids:
        raise DiffreidError(f"{generated}: none of its identities has training images in {source}; "
                            "was the generator fine-tuned on that dataset?")
    rows = []
    for pid in pids:
        read_input = _values(classifier, inputs[pid])
        read_made = _values(classifier, made[pid])
        rows.append((read_input, read_made, read_made - read_input))
    attributes = sorted({name for _, read_made, _ in rows for name, _ in read_made})
    n = len(rows)
    return {"identities": n, "images": sum(len(made[pid]) for pid in pids), "per_identity": per_identity,
            "input_values": sum(len(r[0]) for r in rows) / n, "generated_values": sum(len(r[1]) for r in rows) / n,
            "new_values": sum(len(r[2]) for r in rows) / n,
            "new_per_attribute": {name: sum(sum(1 for a, _ in r[2] if a == name) for r in rows) / n
                                  for name in attributes}}


def _values(classifier, paths: list[Path]) -> set[tuple[str, str]]:
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except OSError as error:
            log.warning("%s: unreadable, skipped (%s)", path, error)
    return {(name, value) for read in classifier.predict(images) for name, value in read.items()} if images else set()
