"""The classic test protocols of PRID, GRID and i-LIDS, one seeded trial at a time.

The small benchmarks of the domain-generalisation literature, as it tests them (10
random trials, the mean reported), on PETA's folders (`diffreid.data.peta`: every image
a training record, pid and camera from the file name):

- PRID: 100 of the identities seen by both cameras are test: query = their camera-a
  images; gallery = their camera-b images plus every camera-b image of an identity seen
  by camera b only (549 distractors, their own pids, never a match). Training = the
  other two-camera identities, both cameras.
- GRID: 125 of the identities seen in two views are test: query = their first image by
  file name (the probe view), gallery = their other image plus every image of an
  identity seen once (775 distractors). Training = the other pairs.
- i-LIDS: 60 of the identities with 2+ images are test: per test identity one random
  image as query and one other random image as gallery. Training = every image of the
  other identities.

Which identities are paired, distractors or usable is read from the records (cameras
and image counts), not from the published id ranges, so a scaled-down tree follows the
same rules; `test_ids` sets the protocol's size (defaults: the published 100, 125, 60).
Each trial draws from its own generator, seeded by (set, seed, trial): the same
arguments always give the same split.

`export_lists` writes a trial as a `list` dataset (`train.csv`, `query.csv`,
`gallery.csv`, header `path,pid,camid`) beside an `images` link to the set's folder,
so `list:FOLDER` reads back exactly the records of the trial, and any other toolkit can
read the same CSV files.
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from diffreid.artifacts import write_json_atomic, write_text_atomic
from diffreid.data.listfile import CSV_FILES, CSV_HEADER
from diffreid.data.records import Record, ReidDataset
from diffreid.errors import DatasetError

SMALL_BENCHMARKS = ("prid", "grid", "ilids")
TEST_IDS = {"prid": 100, "grid": 125, "ilids": 60}  # the published protocols
FOLDERS = {"prid": "PRID", "grid": "GRID", "ilids": "i-LID"}  # PETA's folder of each set
PRID_QUERY_CAMERA, PRID_GALLERY_CAMERA = 1, 2  # camera a, camera b (diffreid.data.peta)
IMAGES_LINK = "images"  # the link to the set's folder that an exported list's paths start with

DESCRIPTIONS = {
    "prid": "{n} of the ids seen by both cameras as test; query = their camera-a images, gallery = their "
            "camera-b images + every camera-b image of the ids seen by camera b only (distractors)",
    "grid": "{n} of the paired ids as test; query = their first (probe) image, gallery = their other image + "
            "every image of the ids seen once (distractors)",
    "ilids": "{n} of the ids with 2+ images as test; one random image of each as query, one other as gallery",
}


def describe(name: str, test_ids: int | None = None) -> str:
    """One line saying what a trial of `name` is."""
    return DESCRIPTIONS[_known(name)].format(n=test_ids or TEST_IDS[name])


def _known(name: str) -> str:
    if name not in SMALL_BENCHMARKS:
        raise DatasetError(f"no small-benchmark protocol for {name!r}; choose from {', '.join(SMALL_BENCHMARKS)}")
    return name


def _by_pid(records: list[Record]) -> dict[int, list[Record]]:
    groups: dict[int, list[Record]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.pid, Path(r.path).name)):
        groups[record.pid].append(record)
    return dict(groups)


def _as(split: str, records) -> list[Record]:
    return [replace(r, split=split) for r in records]


def _draw(rng: random.Random, pids: list[int], n: int, name: str, what: str) -> set[int]:
    if len(pids) < n:
        raise DatasetError(f"{name}: {len(pids)} {what}, the protocol needs {n} test ids; point {name}: at "
                           f"PETA's complete {FOLDERS[name]}/ folder")
    return set(rng.sample(sorted(pids), n))


def small_split(name: str, dataset: ReidDataset, seed: int = 0, trial: int = 0,
                test_ids: int | None = None) -> ReidDataset:
    """Trial `trial` of `name`'s protocol on `dataset` (as `diffreid.data.peta` reads the set):
    train (the trial's training identities), query and gallery; the same (seed, trial)
    always gives the same split."""
    n = TEST_IDS[_known(name)] if test_ids is None else test_ids
    rng = random.Random(f"{name}:{seed}:{trial}")
    groups = _by_pid(dataset.train + dataset.query + dataset.gallery)
    train, query, gallery = [], [], []
    if name == "prid":
        cameras = {pid: {r.camid for r in records} for pid, records in groups.items()}
        paired = [pid for pid, cams in cameras.items() if {PRID_QUERY_CAMERA, PRID_GALLERY_CAMERA} <= cams]
        test = _draw(rng, paired, n, name, "ids seen by both cameras")
        for pid, records in groups.items():
            if pid in test:
                query += [r for r in records if r.camid == PRID_QUERY_CAMERA]
                gallery += [r for r in records if r.camid == PRID_GALLERY_CAMERA]
            elif pid in paired:
                train += records
            elif cameras[pid] == {PRID_GALLERY_CAMERA}:
                gallery += records  # distractors: camera b only
    elif name == "grid":
        paired = [pid for pid, records in groups.items() if len(records) >= 2]
        test = _draw(rng, paired, n, name, "ids seen in two views")
        for pid, records in groups.items():
            if pid in test:
                query.append(records[0])  # the first image by file name: the probe view
                gallery += records[1:]
            elif pid in paired:
                train += records
            else:
                gallery += records  # distractors: seen once
    else:  # ilids
        usable = [pid for pid, records in groups.items() if len(records) >= 2]
        test = _draw(rng, usable, n, name, "ids with 2+ images")
        for pid, records in groups.items():
            if pid in test:
                probe, other = rng.sample(records, 2)
                query.append(probe)
                gallery.append(other)
            else:
                train += records
    split = ReidDataset(name=name, root=dataset.root, train=_as("train", train), query=_as("query", query),
                        gallery=_as("gallery", gallery))
    split.notes.append(f"{name} seed {seed} trial {trial}: {describe(name, n)}")
    return split


def trial_sizes(split: ReidDataset) -> dict[str, int]:
    """Queries, gallery images and test identities of a trial."""
    return {"num_query": len(split.query), "num_gallery": len(split.gallery),
            "test_ids": len({r.pid for r in split.query})}


def export_lists(split: ReidDataset, folder: str | os.PathLike, **info) -> Path:
    """Write a trial as a `list` dataset: FOLDER/train.csv, query.csv, gallery.csv (paths
    relative to FOLDER, each starting with `images/`), FOLDER/images -> the set's folder,
    and FOLDER/split.json (the set's folder, counts, `info`) to re-make the link from
    elsewhere. `list:FOLDER` reads back the trial's records. Returns FOLDER."""
    folder = Path(folder)
    source = Path(os.path.abspath(split.root))
    folder.mkdir(parents=True, exist_ok=True)
    _link(folder / IMAGES_LINK, source)
    for name, file in CSV_FILES.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        buffer.write(CSV_HEADER + "\n")
        for record in split.split(name):
            try:
                relative = Path(os.path.abspath(record.path)).relative_to(source)
            except ValueError:
                raise DatasetError(f"{record.path}: not inside the set's folder {source}; cannot export "
                                   f"{split.name}'s lists") from None
            writer.writerow([(Path(IMAGES_LINK) / relative).as_posix(), record.pid, record.camid])
        write_text_atomic(folder / file, buffer.getvalue())
    write_json_atomic(folder / "split.json", {
        "dataset": split.name, "source": str(source), "images": IMAGES_LINK, **info,
        "counts": {name: len(split.split(name)) for name in CSV_FILES}, **trial_sizes(split),
        "notes": split.notes,
        "how": f"paths in the CSV files are relative to this folder and start with {IMAGES_LINK}/, a link to "
               f"'source'; elsewhere, re-make it: ln -s SET_FOLDER {IMAGES_LINK}",
    })
    return folder


def _link(link: Path, target: Path) -> None:
    """`link` -> `target`, replacing an older link atomically; never a real folder."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.exists() and not link.is_symlink():
        raise DatasetError(f"{link}: exists and is not a link; remove it or export to another folder")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
