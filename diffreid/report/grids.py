"""Sample grids: an identity's input images beside what generators made of it.

One row per identity: its real (input) images, then each generated folder's images of
it (e.g. with and without Diversity Injection), separated by a blank column; all
resized to one height so different sizes line up.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from diffreid.artifacts import atomic_path
from diffreid.data import load_dataset
from diffreid.filtering.generated import read_generated


def comparison_grid(generated: list[Path], pids: list[int], out: Path, per_column: int = 4,
                    height: int = 128) -> Path:
    """Rows: identities `pids`; columns: `per_column` input images, then as many of each folder's."""
    folders = [read_generated(folder) for folder in generated]
    source = folders[0][0]
    records = [r for split in ("train", "query", "gallery") for r in load_dataset(source).split(split)]
    width = height // 2
    gap = width // 4
    groups = 1 + len(folders)
    sheet = Image.new("RGB", (groups * per_column * width + (groups - 1) * gap, len(pids) * height), "white")
    for row, pid in enumerate(pids):
        columns = [[r.path for r in records if r.pid == pid][:per_column]]
        columns += [[item.path for item in items if item.pid == pid][:per_column] for _, items in folders]
        for group, paths in enumerate(columns):
            for column, path in enumerate(paths):
                with Image.open(path) as image:
                    tile = image.convert("RGB").resize((width, height), Image.BICUBIC)
                sheet.paste(tile, (group * (per_column * width + gap) + column * width, row * height))
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
