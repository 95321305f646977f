"""The generic list format, and the list-file reading it shares with MSMT17.

A `list:ROOT` dataset is a directory with `query.csv`, `gallery.csv` and optionally
`train.csv`, each with the header `path,pid,camid` and one image a line; paths are
relative to ROOT, pids and camids are integers as the dataset numbers them (pid -1 is
junk and dropped, pid 0 a distractor). Any dataset without a reader of its own (Airport,
a private set) comes in this way. No path read from a list may leave its root.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from diffreid.artifacts import inside_root
from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError, DiffreidError

LineParser = Callable[[str], tuple[str, int, int]]
CSV_HEADER = "path,pid,camid"
CSV_FILES = {"train": "train.csv", "query": "query.csv", "gallery": "gallery.csv"}


def parse_int(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field} {text!r} is not an integer") from None


def read_list_file(list_file: Path, image_root: Path, split: str, parse_line: LineParser,
                   dataset: ReidDataset, header: str | None = None) -> None:
    """Add a record per line of `list_file` to `dataset`; bad lines become problems, not exceptions.

    A missing or unreadable file, or a wrong header, is fatal; an unparsable line is
    skipped with a warning; a path that leaves `image_root` is fatal (a tampered list).
    """
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        dataset.problems.append(Problem(f"{split} list {list_file.name} missing", list_file, fatal=True))
        return
    except (OSError, UnicodeDecodeError) as error:
        dataset.problems.append(Problem(f"cannot read {list_file.name} ({error})", list_file, fatal=True))
        return
    first = 1
    if header is not None:
        found = lines[0].strip() if lines else ""
        if found.replace(" ", "") != header:
            dataset.problems.append(Problem(
                f"line 1: header is {found!r}, expected {header!r}; fix the header line", list_file, fatal=True))
            return
        first = 2
    for lineno, line in enumerate(lines[first - 1:], first):
        if not line.strip():
            continue
        try:
            relative, pid, camid = parse_line(line)
        except ValueError as error:
            dataset.problems.append(Problem(f"line {lineno}: {error}; line skipped", list_file))
            continue
        try:
            path = inside_root(image_root, relative, f"{list_file}:{lineno}")
        except DiffreidError as error:
            dataset.problems.append(Problem(str(error), fatal=True))
            continue
        if pid != -1:
            dataset.split(split).append(Record(path, pid, camid, split))


def parse_csv_line(line: str) -> tuple[str, int, int]:
    """`path,pid,camid` (CSV quoting allowed) -> (path, pid, camid)."""
    row = next(csv.reader([line]))
    if len(row) != 3:
        raise ValueError(f"expected 3 fields {CSV_HEADER}, found {len(row)}")
    path, pid, camid = (field.strip() for field in row)
    if not path:
        raise ValueError("empty path")
    return path, parse_int(pid, "pid"), parse_int(camid, "camid")


@register("list")
def read_list_dataset(root: Path) -> ReidDataset:
    if not any((root / name).is_file() for name in CSV_FILES.values()):
        raise DatasetError(
            f"{root}: no query.csv, gallery.csv or train.csv; a list dataset holds CSV files "
            f"with the header {CSV_HEADER!r} and paths relative to this directory"
        )
    dataset = ReidDataset(name="list", root=root)
    for split, name in CSV_FILES.items():
        if split == "train" and not (root / name).exists():
            continue  # optional: an evaluation-only dataset
        read_list_file(root / name, root, split, parse_csv_line, dataset, header=CSV_HEADER)
    return dataset
