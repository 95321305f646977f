"""The attribute captioner: every image of an identity gets that identity's attribute caption.

Attributes are annotated per identity in all four sources, so the caption is too; the
images of one person differ only in what no source records (view, pose, light), except
where a PETA file name gives the view (SARC3D, MIT), which the caption then says.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from diffreid.data.peta import LABEL_FILE
from diffreid.data.records import SPLITS, Record, ReidDataset
from diffreid.errors import DiffreidError
from diffreid.synthesis.captioners.lin_attributes import lin_caption, read_lin_attributes
from diffreid.synthesis.captioners.peta import PetaCaptioner, is_peta
from diffreid.synthesis.captioners.procedural import read_procedural_captions

log = logging.getLogger(__name__)

SOURCES = ("attributes.json from `diffreid data synth`, Lin et al.'s market_attribute.mat / duke_attribute.mat, "
           "or PETA's Label.txt")


def attribute_file(config, dataset: ReidDataset) -> Path | None:
    """--attributes FILE; without it the dataset folder for a PETA set (each image labelled by the Label.txt
    beside it), else the procedural persons' attributes.json in the dataset root; None for other captioners."""
    if config.captioner != "attributes":
        return None
    if not config.attributes and is_peta(dataset.name):
        if not any(path.is_file() for path in label_files(dataset)):
            raise DiffreidError(f"{dataset.root}: no {LABEL_FILE} beside the images; PETA ships one in every set's "
                                "folder, or pass --attributes FILE")
        return dataset.root
    path = Path(config.attributes).expanduser() if config.attributes else dataset.root / "attributes.json"
    if not path.is_file():
        raise DiffreidError(f"{path}: attribute file not found; pass --attributes FILE ({SOURCES})")
    return path


def label_files(dataset: ReidDataset) -> list[Path]:
    """The Label.txt beside each of a PETA dataset's images (one per set folder)."""
    return sorted({record.path.parent / LABEL_FILE for split in SPLITS for record in dataset.split(split)})


def attribute_fingerprint(path: Path, dataset: ReidDataset) -> dict:
    """What a resumed run must find unchanged: the file and its sha256; for a PETA folder, the sha256 of each
    Label.txt beside its images (None where one is missing, so adding it later starts afresh)."""
    if not path.is_dir():
        return {"path": str(path.resolve()), "sha256": _sha256(path)}
    return {"path": str(path.resolve()),
            "label_files": {file.relative_to(path).as_posix(): _sha256(file) if file.is_file() else None
                            for file in label_files(dataset)}}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def attribute_captioner(path: Path) -> AttributeCaptioner | PetaCaptioner:
    """The captioner for an attribute source: PETA labels for a folder (Label.txt beside each image) or a .txt
    file (Label.txt named by --attributes), else captions looked up by pid."""
    if path.is_dir():
        return PetaCaptioner()
    if path.suffix.lower() == ".txt":
        return PetaCaptioner(path)
    return AttributeCaptioner(path)


def read_attribute_captions(path: Path) -> dict[int, str]:
    """pid -> caption from the per-pid attribute sources (json, mat), told apart by file type."""
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
