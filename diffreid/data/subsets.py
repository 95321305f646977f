"""Training subsets for the small-scale and few-shot settings, written as `list` datasets.

A subset keeps the dataset's query and gallery and thins its train split: a fraction of
the identities (small-scale) or a fraction of each identity's images, or one image per
camera (few-shot). It is a `list:` folder whose `data` link points at the dataset's root,
so the images are read where they are, and the choice is seeded and recorded in CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreid.artifacts import write_text_atomic
from diffreid.data import load_dataset
from diffreid.data.records import Record
from diffreid.errors import DiffreidError

LINK = "data"


def _rows(records: list[Record], root: Path) -> str:
    return "path,pid,camid\n" + "".join(
        f"{LINK}/{Path(r.path).relative_to(root).as_posix()},{r.pid},{r.camid}\n" for r in records)


def choose_identities(records: list[Record], fraction: float, rng: np.random.Generator) -> list[Record]:
    pids = sorted({r.pid for r in records})
    keep = set(rng.choice(pids, size=max(1, round(fraction * len(pids))), replace=False).tolist())
    return [r for r in records if r.pid in keep]


def choose_images(records: list[Record], fraction: float | None, rng: np.random.Generator,
                  count: int | None = None) -> list[Record]:
    """`fraction` of each identity's images (at least one), or `count` of them (all where it has
    fewer); neither: one image per camera."""
    kept = []
    for pid in sorted({r.pid for r in records}):
        own = [r for r in records if r.pid == pid]
        if count is not None:
            picks = rng.choice(len(own), size=min(count, len(own)), replace=False)
            kept += [own[i] for i in sorted(picks)]
        elif fraction is None:
            cameras = sorted({r.camid for r in own})
            kept += [own[int(rng.choice(np.flatnonzero([r.camid == cam for r in own])))] for cam in cameras]
        else:
            picks = rng.choice(len(own), size=max(1, round(fraction * len(own))), replace=False)
            kept += [own[i] for i in sorted(picks)]
    return kept


def subset_spec(spec: str, out: Path, identities: float | None = None, images: float | None = None,
                one_per_camera: bool = False, seed: int = 0) -> str:
    """A `list:` dataset of `spec` with its train split thinned; returns its spec."""
    dataset = load_dataset(spec).require("train", "query", "gallery")
    rng = np.random.default_rng(seed)
    train = dataset.train
    if identities is not None:
        if not 0 < identities <= 1:
            raise DiffreidError(f"identity fraction {identities} must be in (0, 1]")
        train = choose_identities(train, identities, rng)
    if images is not None or one_per_camera:
        if images is not None and not 0 < images <= 1:
            raise DiffreidError(f"image fraction {images} must be in (0, 1]")
        train = choose_images(train, None if one_per_camera else images, rng)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    link = out / LINK
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(dataset.root).resolve(), target_is_directory=True)
    root = Path(dataset.root)
    write_text_atomic(out / "train.csv", _rows(train, root))
    write_text_atomic(out / "query.csv", _rows(dataset.query, root))
    write_text_atomic(out / "gallery.csv", _rows(dataset.gallery, root))
    return f"list:{out}"
