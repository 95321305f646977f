"""CUHK01: `PPPPIII.png` in one folder; images 001-002 are camera A, 003-004 camera B.

Every identity is a test identity under the usual protocol (query = camera A,
gallery = camera B); training splits are made by identity elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

_NAME = re.compile(r"^(\d{4})(\d{3})\.png$", re.IGNORECASE)


@register("cuhk01")
def read_cuhk01(root: Path) -> ReidDataset:
    folder = root / "campus" if (root / "campus").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DatasetError(f"{folder}: no CUHK01 images (PPPPIII.png) found; point cuhk01: at the folder holding campus/")
    dataset = ReidDataset(name="cuhk01", root=root)
    for path in files:
        match = _NAME.match(path.name)
        if match is None:
            dataset.problems.append(Problem("file name is not PPPPIII.png; skipped", path))
            continue
        pid, index = int(match.group(1)), int(match.group(2))
        camid = 1 if index <= 2 else 2
        split = "query" if camid == 1 else "gallery"
        dataset.split(split).append(Record(path, pid, camid, split))
    return dataset
