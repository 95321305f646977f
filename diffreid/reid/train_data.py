"""Training images: one or more datasets' train splits merged into one set of classes.

Each dataset's identities become their own classes (two datasets' pid 1 are two
people), numbered in the order the datasets are given; `classes` records, per class,
which dataset and source pid it came from (`RUN/classes.json`). With `merge_generated`,
a Diff-Person identity drawn from a person of a dataset given before it joins that
person's class: the generator's premise is that it is the same person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from diffreid.data import load_dataset
from diffreid.data.market1501 import generated_from
from diffreid.data.records import Record
from diffreid.data.registry import parse_spec
from diffreid.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSet:
    records: list[Record]  # pid = class index 0..N-1
    classes: list[dict]  # class index -> {"dataset": spec, "pid": source pid}


def load_train_set(specs: list[str] | tuple[str, ...], merge_generated: bool = False) -> TrainSet:
    records, classes = [], []
    known: dict[tuple[str, Path, int], int] = {}  # (format, resolved root, pid) -> class
    for spec in specs:
        dataset = load_dataset(spec).require("train")
        for problem in dataset.problems:
            log.warning("%s", problem)
        drawn_from = generated_from(dataset.root) if merge_generated and parse_spec(spec)[0] == "diffperson" else {}
        index, merged = {}, 0
        for pid in sorted({r.pid for r in dataset.train}):
            source = drawn_from.get(pid)
            person = _person(*source) if source else None
            if person in known:
                index[pid], merged = known[person], merged + 1
                continue
            index[pid] = len(classes)
            known[_person(spec, pid)] = index[pid]
            classes.append({"dataset": spec, "pid": pid})
        if drawn_from:
            log.info("%s: %d of its %d identities joined the class of the person they were drawn from", spec,
                     merged, len(index))
            if not merged:
                log.warning("%s: no generated identity was drawn from a dataset given before it (its sources: %s); "
                            "give those datasets first, with the same FORMAT:ROOT", spec,
                            ", ".join(sorted({source for source, _ in drawn_from.values()})))
        records += [Record(r.path, index[r.pid], r.camid, "train") for r in dataset.train]
    if len(classes) < 2:
        raise DatasetError(f"{', '.join(specs)}: training needs at least 2 identities, found {len(classes)}")
    return TrainSet(records, classes)


def _person(spec: str, pid: int) -> tuple[str, Path, int]:
    """One person's key, whatever relative path spelled the dataset's root."""
    fmt, root = parse_spec(spec)
    return fmt, root.resolve(), pid


class TrainImages(Dataset):
    """Items are (index, seed) pairs from `PKBatchSampler`: the seed drives this item's
    augmentation alone, so a replayed epoch gives the same tensors in any worker.

    An unreadable image is logged and dropped from its batch (`collate_skipping`).
    """

    def __init__(self, records: list[Record], transform):
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        record = self.records[index]
        try:
            with Image.open(record.path) as image:
                pixels = TF.pil_to_tensor(image.convert("RGB"))
        except (OSError, ValueError) as error:
            log.warning("%s: unreadable image skipped (%s)", record.path, error)
            return None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(pixels), record.pid


def collate_skipping(items):
    """Stack a batch, leaving out the images that could not be read."""
    items = [item for item in items if item is not None]
    if not items:
        return None
    return torch.stack([x for x, _ in items]), torch.tensor([label for _, label in items])
