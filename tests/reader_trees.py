"""Helpers for the reader tests: tiny real images in dataset layouts, records as comparable tuples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from diffreid.data.records import ReidDataset

# A Market-1501 tree: train, query and gallery (with a distractor 0000 and a junk -1 box)
MARKET = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s3_077419_03.jpg"],
    "query": ["0002_c3s1_000551_01.jpg", "0007_c1s1_000001_00.jpg"],
    "bounding_box_test": ["0000_c1s1_000151_01.jpg", "-1_c1s1_000401_03.jpg", "0002_c6s1_000976_02.jpg",
                          "0007_c3s3_077000_01.jpg"],
}


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 16)) -> np.ndarray:
    """A tiny real image (width x height) of seeded noise; JPEG or PNG by suffix. Returns its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def write_images(folder: Path, names: list[str]) -> None:
    for seed, name in enumerate(names):
        write_image(folder / name, seed)


def rows(dataset: ReidDataset, base: Path) -> list[tuple[str, int, int, str]]:
    """Every record as (path relative to base, pid, camid, split), sorted."""
    base = base.resolve()
    return sorted(
        (Path(r.path).resolve().relative_to(base).as_posix(), r.pid, r.camid, r.split)
        for split in ("train", "query", "gallery") for r in dataset.split(split)
    )


def make_tree(base: Path, layout: dict[str, list[str]]) -> Path:
    """Folders (created even when empty) of tiny images named as given; returns base."""
    for folder, names in layout.items():
        (base / folder).mkdir(parents=True, exist_ok=True)
        write_images(base / folder, names)
    return base
