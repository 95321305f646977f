"""CUHK01: `PPPPIII.png` in one folder; images 001-002 are camera A, 003-004 camera B.

`cuhk01`: every identity is a test identity (query = camera A, gallery = camera B), for
models trained elsewhere. `cuhk01-485`: the 485 / 486 identity split for training on
CUHK01 itself: identities 0001-0485 (all four images) train, 0486-0971 test, query
camera A and gallery camera B as before. A fixed split by number rather than one of the
random splits of the literature, so results are reproducible.
"""

from __future__ import annotations

import re
from pathlib import Path

from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

_NAME = re.compile(r"^(\d{4})(\d{3})\.png$", re.IGNORECASE)
TRAIN_IDENTITIES = 485  # of 971: the usual 485 train / 486 test protocol


@register("cuhk01-485")
def read_cuhk01_485(root: Path) -> ReidDataset:
    return read_cuhk01(root, train_identities=TRAIN_IDENTITIES, name="cuhk01-485")


@register("cuhk01")
def read_cuhk01(root: Path, train_identities: int = 0, name: str = "cuhk01") -> ReidDataset:
    """CUHK01 with identities 1..`train_identities` as the train split, the rest as query / gallery."""
    folder = root / "campus" if (root / "campus").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DatasetError(f"{folder}: no CUHK01 images (PPPPIII.png) found; point cuhk01: at the folder holding campus/")
    dataset = ReidDataset(name=name, root=root)
    for path in files:
        match = _NAME.match(path.name)
        if match is None:
            dataset.problems.append(Problem("file name is not PPPPIII.png; skipped", path))
            continue
        pid, index = int(match.group(1)), int(match.group(2))
        camid = 1 if index <= 2 else 2
        split = "train" if pid <= train_identities else "query" if camid == 1 else "gallery"
        dataset.split(split).append(Record(path, pid, camid, split))
    return dataset
