"""Folders shaped as `diffreid generate` writes them, built from procedural persons for the filter's tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from diffreid.data import load_dataset


def split_by_camera(persons: Path, out: Path, source_cams: set[int]) -> tuple[Path, dict[int, list[Path]]]:
    """A Market-layout source dataset of `persons`' train images from `source_cams`, and the
    other cameras' images per pid: unseen views of the same people, as generations should be."""
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    views: dict[int, list[Path]] = {}
    for record in load_dataset(f"market1501:{persons}").train:
        if record.camid in source_cams:
            shutil.copy(record.path, out / "bounding_box_train" / record.path.name)
        else:
            views.setdefault(record.pid, []).append(record.path)
    return out, views


def write_generated(folder: Path, source: str, images: list[tuple[int, object]],
                    injected: list[list[str]] | None = None) -> list[Path]:
    """`images`: (pid, PIL image | bytes) in order; bytes are written as they are (a corrupt file).
    `injected`: each image's DI phrases (default: "side view" for every one)."""
    lines, paths, counts = [], [], {}
    for number, (pid, image) in enumerate(images):
        index = counts[pid] = counts.get(pid, -1) + 1
        relative = f"images/{pid:04d}/{pid:04d}_{index:04d}.png"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(image, bytes):
            path.write_bytes(image)
        else:
            image.save(path)
        paths.append(path)
        lines.append({"file": relative, "pid": pid, "source": source, "prompt": f"a photo of person {pid}",
                      "seed": 1000 + len(lines),
                      "injected": ["side view"] if injected is None else injected[number]})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "manifest.json").write_text(json.dumps({"stage": "generate", "config": {"data": source}}))
    return paths


def noise_image(seed: int, size=(64, 128)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def blank_image(size=(64, 128)) -> Image.Image:
    return Image.new("RGB", size, (128, 128, 128))
