"""PETA's pedestrian sets (Deng et al., ACM MM 2014), read as PETA publishes them.

Each set is one folder of images and a `Label.txt` of per-identity attributes. Identity,
and where the name holds them a camera or a view, come from each file name:

| format | folder | name | camera |
|---|---|---|---|
| `prid` | PRID | `0001_a.png` | a / b -> 1 / 2 |
| `grid` | GRID | `0001_1_25004_107_32_106_221.jpeg` | second field |
| `ilids` | i-LID | `0001_001.jpg` | not in the name |
| `caviar` | CAVIAR4REID | `0001_001.jpg` | not in the name |
| `3dpes` | 3DPeS | `100_3_FRAME_26_RGB.png` | not in the name (the second field is not one) |
| `towncentre` | TownCentre | `0_16.jpg` | one camera's tracks |
| `sarc3d` | SARC3D | `001_front.png` | the view: front 1, back 2, left 3, right 4 |
| `mit` | MIT | `00001_male_back.jpg` | the view: front ("fore") 1, back 2 |

Where no camera is known, every image is its own view (its camid is its place in the
set), so the ranking rules drop only a query's own image, never its identity's others:
treating a set as one camera would leave no valid match at all. The published folders
have no train / test split, so every image is a training image; the classic test
protocols of PRID, GRID and i-LIDS are `diffreid.data.small_protocols` (run by `diffreid benchmark small`). MIT has no
identities (each image is another person): each image is its own pid, for base-model
training and attribute judging, and ranking refuses it.

`peta-all:ROOT` (ROOT holding the set folders) is every set at once as one training
source, identities kept apart: set i's pid p becomes `i * PID_STRIDE + p`.

Label.txt keys are matched to file names as integers (`0709`, `806`, `00924`).
TownCentre numbers its tracks from 0, and pid 0 means "distractor" everywhere else, so
its pids are key + 1; `identity_key` gives the Label.txt key of any record's file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from diffreid.data.images import IMAGE_SUFFIXES, is_image_name
from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

LABEL_FILE = "Label.txt"
PID_STRIDE = 100_000  # peta-all: set i's identities start at i * PID_STRIDE
VIEWS = {"front": 1, "fore": 1, "back": 2, "left": 3, "right": 4}
VIEW_WORDS = {1: "front", 2: "back", 3: "left", 4: "right"}
_EXT = "(?:" + "|".join(suffix.lstrip(".") for suffix in sorted(IMAGE_SUFFIXES)) + ")"
_KEY = re.compile(r"^(\d+)_")
_VIEW = re.compile(r"_(front|fore|back|left|right)\.[a-z]+$", re.IGNORECASE)


@dataclass(frozen=True)
class PetaSet:
    """How one PETA set names its files; `pattern` has the groups key and camera (or view)."""

    format: str
    folder: str
    title: str
    pattern: re.Pattern
    example: str
    cameras: str  # "name" (camera group), "view" (view group), "own" (none: each image its own view)
    identities: bool = True
    pid_offset: int = 0
    note: str | None = None

    def camid(self, match: re.Match) -> int | None:
        if self.cameras == "name":
            camera = match.group("camera").lower()
            return {"a": 1, "b": 2}.get(camera) or int(camera)
        if self.cameras == "view":
            return VIEWS[match.group("view").lower()]
        return None


def _name(body: str) -> re.Pattern:
    return re.compile(rf"^(?P<key>\d+){body}\.{_EXT}$", re.IGNORECASE)


_OWN_VIEW = ("the camera is not in the file names: every image is its own view (camid = its place in the set), "
             "so a query never matches itself but does match its identity's other images")
SETS: dict[str, PetaSet] = {s.format: s for s in (
    PetaSet("prid", "PRID", "PRID 2011 (single-shot)", _name(r"_(?P<camera>[ab])"), "0001_a.png", "name",
            note="identities 1-200 are seen by both cameras, 201-385 by camera a only, the rest by camera b only"),
    PetaSet("grid", "GRID", "QMUL underGround Re-ID (GRID)", _name(r"_(?P<camera>\d+)_\d+(?:_\d+){4}"),
            "0001_1_25004_107_32_106_221.jpeg", "name",
            note="identities 1-250 are seen in two views, the rest once (the protocol's distractors)"),
    PetaSet("ilids", "i-LID", "QMUL i-LIDS", _name(r"_\d+"), "0001_001.jpg", "own", note=_OWN_VIEW),
    PetaSet("caviar", "CAVIAR4REID", "CAVIAR4REID", _name(r"_\d+"), "0001_001.jpg", "own",
            note=_OWN_VIEW + " (its authors' ten images per camera is not checked here)"),
    PetaSet("3dpes", "3DPeS", "3DPeS", _name(r"_[0-9a-z]+(?:_\d+)?_FRAME_\d+_RGB"), "100_3_FRAME_26_RGB.png", "own",
            note=_OWN_VIEW),
    PetaSet("towncentre", "TownCentre", "Oxford Town Centre", _name(r"_\d+"), "0_16.jpg", "own", pid_offset=1,
            note=_OWN_VIEW + "; pids are track numbers + 1 (tracks start at 0)"),
    PetaSet("sarc3d", "SARC3D", "SARC3D", _name(r"_(?P<view>front|back|left|right)"), "001_front.png", "view",
            note="camid is the view: front 1, back 2, left 3, right 4"),
    PetaSet("mit", "MIT", "MIT pedestrians", _name(r"_(?:male|female)_(?P<view>back|fore)"), "00001_male_back.jpg",
            "view", identities=False,
            note="no identities: every image is a different person, its own pid; for base-model training and "
                 "attribute judging, not for ranking"),
)}


def set_folder(root: Path, peta_set: PetaSet) -> Path:
    """ROOT itself, or ROOT/<the set's folder> when ROOT is the folder holding PETA's sets."""
    nested = root / peta_set.folder
    return nested if nested.is_dir() and not (root / LABEL_FILE).is_file() else root


def read_peta_set(root: Path, peta_set: PetaSet, pid_base: int = 0, name: str | None = None) -> ReidDataset:
    """Every image of one set as a training record; bad names become problems, not exceptions."""
    folder = set_folder(root, peta_set)
    try:
        files = sorted((p for p in folder.iterdir() if is_image_name(p)), key=lambda p: p.name)
    except OSError as error:
        raise DatasetError(f"{folder}: cannot list the folder ({error.strerror}); check the path and its "
                           "permissions") from None
    if not files:
        raise DatasetError(f"{folder}: no images of {peta_set.title} ({peta_set.example}, ...); point "
                           f"{peta_set.format}: at PETA's {peta_set.folder}/ folder")
    dataset = ReidDataset(name=name or peta_set.format, root=folder)
    if peta_set.note:
        dataset.notes.append(peta_set.note)
    if not (folder / LABEL_FILE).is_file():
        dataset.problems.append(Problem(f"no {LABEL_FILE}: images read, but no attribute captions or labels",
                                        folder / LABEL_FILE))
    own_view = 0
    for path in files:
        match = peta_set.pattern.match(path.name)
        if match is None:
            dataset.problems.append(Problem(f"file name is not like {peta_set.example}; skipped", path))
            continue
        own_view += 1
        camid = peta_set.camid(match)
        pid = pid_base + int(match.group("key")) + peta_set.pid_offset
        dataset.train.append(Record(path, pid, own_view if camid is None else camid, "train"))
    return dataset


def identity_key(path: Path) -> int | None:
    """The Label.txt key of a PETA image (its leading number), or None when the name has none."""
    match = _KEY.match(Path(path).name)
    return int(match.group(1)) if match else None


def view_of(path: Path) -> str | None:
    """'front', 'back', 'left' or 'right' where the file name says it (SARC3D, MIT), else None."""
    match = _VIEW.search(Path(path).name)
    return VIEW_WORDS[VIEWS[match.group(1).lower()]] if match else None


def _reader(peta_set: PetaSet):
    def read(root: Path) -> ReidDataset:
        return read_peta_set(root, peta_set)

    read.__doc__ = f"{peta_set.title}: PETA's {peta_set.folder}/ folder, every image a training image."
    return read


for _set in SETS.values():
    register(_set.format)(_reader(_set))


@register("peta-all", "peta")
def read_peta_all(root: Path) -> ReidDataset:
    """Every PETA set under ROOT as one training source; set i's identities are offset by i * PID_STRIDE."""
    present = [s for s in SETS.values() if (root / s.folder).is_dir()]
    if not present:
        raise DatasetError(f"{root}: none of PETA's set folders ({', '.join(s.folder for s in SETS.values())}); "
                           "point peta-all: at the folder that holds them")
    dataset = ReidDataset(name="peta-all", root=root)
    for index, peta_set in enumerate(SETS.values()):
        if peta_set not in present:
            dataset.notes.append(f"{peta_set.folder}/ not found: {peta_set.title} left out")
            continue
        part = read_peta_set(root / peta_set.folder, peta_set, pid_base=index * PID_STRIDE)
        dataset.train += part.train
        dataset.problems += part.problems
        dataset.notes += [f"{peta_set.folder}: {note}" for note in part.notes]
    return dataset


FORMATS = frozenset({*SETS, "peta-all", "peta"})


def judge_held_out(folder: str | Path) -> list[dict]:
    """The identities a PETA attribute judge never trained on, from its accuracy.json: entries with
    `data` (the spec it read), `set` (the set's folder) and `pid`. Whatever else trains on PETA
    leaves them out, so that the judge later reads people that model never saw either."""
    import json

    path = Path(folder) / "accuracy.json"
    if not path.is_file():
        raise DatasetError(f"{path}: missing; not a folder written by `diffreid attributes` on PETA sets")
    listed = json.loads(path.read_text(encoding="utf-8")).get("held_out_identities")
    if listed is None:
        raise DatasetError(f"{path}: lists no held-out identities (a judge trained on procedural persons)")
    return listed


def held_out_people(folder: str | Path | None) -> set[tuple[str, int]]:
    """(set folder, the set's own pid) of each person a PETA judge held out, whatever spec
    (a set alone or `peta-all`) names them elsewhere; none without a judge."""
    return set() if folder is None else {(e["set"], int(e["pid"]) % PID_STRIDE) for e in judge_held_out(folder)}
