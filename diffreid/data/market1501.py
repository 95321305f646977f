"""Market-1501 and DukeMTMC-reID: one folder per split, pid and camera in each file name.

Both publish `bounding_box_train/` (train), `query/` and `bounding_box_test/` (gallery).
Names are `0002_c1s1_000451_03.jpg` in Market-1501 (pid, camera, sequence, frame, box)
and `0005_c2_f0046985.jpg` in DukeMTMC-reID (pid, camera, frame). The number after `c`
is the camid, kept as the dataset numbers it (Market `c1`..`c6` -> 1..6, Duke
`c1`..`c8` -> 1..8). pid -1 marks junk boxes, dropped as torchreid and fast-reid drop
them; pid 0 marks distractors, kept in the gallery, where the protocol wants them.
Diff-Person and the procedural sets are written in this layout too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from diffreid.data.images import is_image_name
from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}

# Market `PPPP_cCsS_FFFFFF_BB.jpg` or Duke `PPPP_cC_fFFFFFFF.jpg`; pid -1 is junk.
_NAME = re.compile(r"^(-1|\d+)_c(\d+)(?:s\d+_\d+_\d+|_f\d+)\.(?:jpe?g|png)$", re.IGNORECASE)


def parse_market_name(name: str) -> tuple[int, int] | None:
    """(pid, camid) from a Market-1501 or DukeMTMC-reID file name; None when it is neither."""
    match = _NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def read_market_layout(root: Path, name: str, archive_dir: str, example: str,
                       required: tuple[str, ...] = tuple(FOLDERS)) -> ReidDataset:
    """Read the three split folders from `root`, or from `root/archive_dir` as torchreid accepts;
    a split not `required` may be absent."""
    base = root / archive_dir if (root / archive_dir).is_dir() else root
    if not any((base / folder).is_dir() for folder in FOLDERS.values()):
        raise DatasetError(
            f"{root}: none of {', '.join(f'{f}/' for f in FOLDERS.values())} here or in {archive_dir}/; "
            f"point {name}: at the folder that holds them"
        )
    dataset = ReidDataset(name=name, root=base)
    for split, folder_name in FOLDERS.items():
        folder = base / folder_name
        if not folder.is_dir() and split not in required:
            continue
        if not folder.is_dir():
            dataset.problems.append(Problem(
                f"{split} folder {folder_name}/ missing; restore it from the {name} archive", folder, fatal=True))
            continue
        try:
            files = sorted(p for p in folder.iterdir() if is_image_name(p))
        except OSError as error:
            dataset.problems.append(Problem(f"cannot list {folder_name}/ ({error.strerror}); check its permissions",
                                            folder, fatal=True))
            continue
        if not files:
            dataset.problems.append(Problem(f"no images in {folder_name}/", folder))
        for path in files:
            parsed = parse_market_name(path.name)
            if parsed is None:
                dataset.problems.append(Problem(f"file name is not like {example}; skipped", path))
            elif parsed[0] != -1:
                dataset.split(split).append(Record(path, parsed[0], parsed[1], split))
    return dataset


@register("market1501", "market")
def read_market1501(root: Path) -> ReidDataset:
    return read_market_layout(root, "market1501", "Market-1501-v15.09.15", "0002_c1s1_000451_03.jpg")


@register("dukemtmc", "dukemtmcreid")
def read_dukemtmc(root: Path) -> ReidDataset:
    return read_market_layout(root, "dukemtmc", "DukeMTMC-reID", "0005_c2_f0046985.jpg")


@register("diffperson")
def read_diffperson(root: Path) -> ReidDataset:
    """Diff-Person (`diffreid filter`): Market-1501 names, a training set only."""
    return read_market_layout(root, "diffperson", "Diff-Person", "0001_c1s1_000000_00.jpg", required=("train",))


def generated_from(root: Path) -> dict[int, tuple[str, int]]:
    """{Diff-Person pid: (source dataset spec, source pid)} from ROOT/manifest.jsonl, the person each
    generated identity was drawn from; empty for a folder without one (any other dataset)."""
    manifest = Path(root) / "manifest.jsonl"
    if not manifest.is_file():
        return {}
    found = {}
    with open(manifest, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                entry = json.loads(line)
                found[int(entry["pid"])] = (entry["source"], int(entry["source_pid"]))
    return found
