"""Training images: one or more datasets' train splits merged into one set of classes.

Each dataset's identities become their own classes (two datasets' pid 1 are two
people), numbered in the order the datasets are given; `classes` records, per class,
which dataset and source pid it came from (`RUN/classes.json`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from diffreid.data import load_dataset
from diffreid.data.records import Record
from diffreid.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSet:
    records: list[Record]  # pid = class index 0..N-1
    classes: list[dict]  # class index -> {"dataset": spec, "pid": source pid}


def load_train_set(specs: list[str] | tuple[str, ...]) -> TrainSet:
    records, classes = [], []
    for spec in specs:
        dataset = load_dataset(spec).require("train")
        for problem in dataset.problems:
            log.warning("%s", problem)
        pids = sorted({r.pid for r in dataset.train})
        offset = len(classes)
        index = {pid: offset + i for i, pid in enumerate(pids)}
        classes += [{"dataset": spec, "pid": pid} for pid in pids]
        records += [Record(r.path, index[r.pid], r.camid, "train") for r in dataset.train]
    if len(classes) < 2:
        raise DatasetError(f"{', '.join(specs)}: training needs at least 2 identities, found {len(classes)}")
    return TrainSet(records, classes)


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
