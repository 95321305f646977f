"""The attribute captioner: every image of an identity gets that identity's attribute caption.

Attributes are annotated per identity in all three sources, so the caption is too; the
images of one person differ only in what no source records (view, pose, light).
"""

from __future__ import annotations

import logging
from pathlib import Path

from diffreid.data.records import Record, ReidDataset
from diffreid.errors import DiffreidError
from diffreid.synthesis.captioners.lin_attributes import lin_caption, read_lin_attributes
from diffreid.synthesis.captioners.procedural import read_procedural_captions

log = logging.getLogger(__name__)

SOURCES = ("attributes.json from `diffreid data synth`, or Lin et al.'s market_attribute.mat / duke_attribute.mat")


def attribute_file(config, dataset: ReidDataset) -> Path | None:
    """--attributes FILE, or the procedural persons' attributes.json in the dataset root; None for BLIP-2."""
    if config.captioner != "attributes":
        return None
    path = Path(config.attributes).expanduser() if config.attributes else dataset.root / "attributes.json"
    if not path.is_file():
        raise DiffreidError(f"{path}: attribute file not found; pass --attributes FILE ({SOURCES})")
    return path


def read_attribute_captions(path: Path) -> dict[int, str]:
    """pid -> caption from any of the three attribute sources, told apart by file type."""
    if path.suffix.lower() == ".mat":
        name, splits = read_lin_attributes(path)
        return {pid: lin_caption(name, attributes) for table in splits.values() for pid, attributes in table.items()}
    if path.suffix.lower() == ".json":
        return read_procedural_captions(path)
    raise DiffreidError(f"{path}: unknown attribute file type {path.suffix!r}; expected {SOURCES}")


class AttributeCaptioner:
    """Captions looked up by identity; identities the file does not cover are reported once and skipped."""

    def __init__(self, path: Path):
        self.path = path
        self.captions = read_attribute_captions(path)
        self._reported: set[int] = set()

    def caption(self, records: list[Record]) -> list[str | None]:
        for pid in {r.pid for r in records if r.pid not in self.captions} - self._reported:
            log.warning("%s has no attributes for identity %d; its images are skipped", self.path, pid)
            self._reported.add(pid)
        return [self.captions.get(r.pid) for r in records]
