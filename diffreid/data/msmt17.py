"""MSMT17 V1 and V2: image folders plus list files that name each image and its label.

V1 is `MSMT17_V1/{train,test}/`, V2 (faces masked) `MSMT17_V2/{mask_train_v2,mask_test_v2}/`;
both have `list_train.txt`, `list_val.txt`, `list_query.txt` and `list_gallery.txt`
beside the folders, one `0000/0000_000_01_0303morning_0015_0.jpg 0` a line (path
relative to the train or test folder, then the pid). As in torchreid, train is
list_train plus list_val (the val images are of training identities). The camid is the
file name's third `_` field, kept as MSMT17 numbers its 15 cameras (`01`..`15` -> 1..15).
Train and test pids are both counted from 0 but are disjoint people; pid 0 is a person
here, not a distractor.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from diffreid.data.listfile import parse_int, read_list_file
from diffreid.data.records import Problem, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

VERSIONS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
# list file -> (split, 0 for the train folder / 1 for the test folder)
LISTS = {"list_train.txt": ("train", 0), "list_val.txt": ("train", 0),
         "list_query.txt": ("query", 1), "list_gallery.txt": ("gallery", 1)}


def parse_msmt_line(line: str) -> tuple[str, int, int]:
    """`0000/0000_000_01_0303morning_0015_0.jpg 0` -> (path, pid 0, camid 1)."""
    fields = line.split()
    if len(fields) != 2:
        raise ValueError(f"expected 'PATH PID', found {len(fields)} fields")
    relative, pid = fields
    parts = PurePosixPath(relative).name.split("_")
    if len(parts) < 4:
        raise ValueError(f"file name {relative!r} has no camera field (like 0000_000_01_0303morning_0015_0.jpg)")
    return relative, parse_int(pid, "pid"), parse_int(parts[2], "camera field")


def find_version(root: Path) -> str:
    """Which MSMT17 version `root` holds: as ROOT/MSMT17_Vn/, or as ROOT itself."""
    found = [version for version in VERSIONS if (root / version).is_dir()]
    if not found:
        found = [version for version, folders in VERSIONS.items()
                 if root.name.upper() == version or any((root / f).is_dir() for f in folders)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(
            f"{root}: neither MSMT17_V1/ (train/, test/) nor MSMT17_V2/ (mask_train_v2/, mask_test_v2/) found; "
            "point msmt17: at the folder that holds one of them"
        )
    raise DatasetError(f"{root}: holds both MSMT17_V1 and MSMT17_V2; name one: msmt17v1:{root} or msmt17v2:{root}")


def read_msmt17_version(root: Path, version: str) -> ReidDataset:
    """Read one version's folders and four list files from ROOT/MSMT17_Vn/ or ROOT."""
    base = root / version if (root / version).is_dir() else root
    name = f"msmt17{version[-2:].lower()}"
    if not any((base / entry).exists() for entry in (*VERSIONS[version], *LISTS)):
        raise DatasetError(f"{base}: no {version} folders or list files; point {name}: at the folder holding {version}/")
    dataset = ReidDataset(name=name, root=base)
    folders = [base / name for name in VERSIONS[version]]
    for folder in folders:
        if not folder.is_dir():
            dataset.problems.append(Problem(f"image folder {folder.name}/ missing; restore it from {version}", folder,
                                            fatal=True))
    for list_name, (split, which) in LISTS.items():
        read_list_file(base / list_name, folders[which], split, parse_msmt_line, dataset)
    return dataset


@register("msmt17")
def read_msmt17(root: Path) -> ReidDataset:
    return read_msmt17_version(root, find_version(root))


@register("msmt17v1")
def read_msmt17_v1(root: Path) -> ReidDataset:
    return read_msmt17_version(root, "MSMT17_V1")


@register("msmt17v2")
def read_msmt17_v2(root: Path) -> ReidDataset:
    return read_msmt17_version(root, "MSMT17_V2")
