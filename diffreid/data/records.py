"""Records: what every dataset format becomes, and what every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from diffreid.errors import DatasetError

SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class Record:
    """One image: its file, person id and camera id as the dataset numbers them."""

    path: Path
    pid: int
    camid: int
    split: str


@dataclass(frozen=True)
class Problem:
    """Something wrong with a dataset; `fatal` means the dataset cannot be used."""

    message: str
    path: Path | None = None
    fatal: bool = False

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{'ERROR' if self.fatal else 'warning'}: {where}{self.message}"


@dataclass
class ReidDataset:
    """A Re-ID dataset read from its published layout.

    Junk images (pid -1) are already dropped; distractors (pid 0) stay in the gallery.
    Readers record what they had to skip in `problems` instead of failing on one bad
    file, so `diffreid data check` can list everything at once; `notes` say how the
    reader read what the layout leaves open (e.g. no camera in the file names).
    """

    name: str
    root: Path
    train: list[Record] = field(default_factory=list)
    query: list[Record] = field(default_factory=list)
    gallery: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Record]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def require(self, *splits: str) -> "ReidDataset":
        """Raise a DatasetError listing the problems when a split a stage needs is empty."""
        empty = [name for name in splits if not self.split(name)]
        if empty:
            details = "".join(f"\n  note: {note}" for note in self.notes)
            details += "".join(f"\n  {problem}" for problem in self.problems)
            raise DatasetError(
                f"{self.root}: {self.name} dataset has no {' / '.join(empty)} images; "
                f"run `diffreid data check {self.name}:{self.root}` for details{details}"
            )
        return self

    def relabeled_train(self) -> list[Record]:
        """Training records with pids mapped to 0..N-1 in order of the original pid."""
        return relabel(self.train)


def relabel(records: list[Record]) -> list[Record]:
    """Map pids to 0..N-1 (sorted by original pid), as a classifier head needs."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [replace(r, pid=mapping[r.pid]) for r in records]
