"""`diffreid data check`: per-split counts and every problem, before a long run trips on one.

A dataset is unusable when a reader found a fatal problem (a missing folder or list),
when query or gallery is empty, or when no query has a valid match: a gallery image of
its identity from another camera, the only kind the Re-ID ranking protocols score.
"""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from diffreid.data.images import file_problem, image_problem
from diffreid.data.records import SPLITS, Problem, Record, ReidDataset
from diffreid.data.registry import load_dataset
from diffreid.errors import DiffreidError

MAX_SHOWN = 20  # problems of one kind printed before "... and N more"


@dataclass(frozen=True)
class SplitCount:
    split: str
    identities: int
    images: int
    cameras: int


@dataclass
class CheckReport:
    """What `data check` found; `render()` is what it prints."""

    spec: str
    counts: list[SplitCount] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    queries: int = 0
    matched_queries: int = 0

    @property
    def usable(self) -> bool:
        return not any(problem.fatal for problem in self.problems)

    def render(self) -> str:
        lines = [f"{self.spec}: {'usable' if self.usable else 'NOT usable'}"]
        if self.counts:
            lines.append(f"{'split':<8}{'identities':>11}{'images':>9}{'cameras':>9}")
            lines += [f"{c.split:<8}{c.identities:>11}{c.images:>9}{c.cameras:>9}" for c in self.counts]
            lines.append(f"queries with a gallery match from another camera: {self.matched_queries} of {self.queries}")
        lines += [f"note: {note}" for note in self.notes]
        errors = sum(problem.fatal for problem in self.problems)
        warnings = len(self.problems) - errors
        if not self.problems:
            lines.append("no problems found")
            return "\n".join(lines)
        lines.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}:")
        for group in _group(self.problems):
            lines += [f"  {problem}" for problem in group[:MAX_SHOWN]]
            if len(group) > MAX_SHOWN:
                lines.append(f"  ... and {len(group) - MAX_SHOWN} more like this")
        return "\n".join(lines)


def _group(problems: list[Problem]) -> list[list[Problem]]:
    """Problems of one kind together (same message but for numbers and quoted values), errors first."""
    groups: dict[tuple[bool, str], list[Problem]] = {}
    for problem in problems:
        kind = re.sub(r"'[^']*'|\d+", "#", problem.message)
        groups.setdefault((not problem.fatal, kind), []).append(problem)
    return [groups[key] for key in sorted(groups, key=lambda key: key[0])]  # stable: first seen first


def check_dataset(spec: str, open_images: bool = True, workers: int | None = None) -> CheckReport:
    """Read `FORMAT:ROOT`, check every image file (decoding each when `open_images`) and the query matches."""
    try:
        dataset = load_dataset(spec)
    except DiffreidError as error:
        return CheckReport(spec, problems=[Problem(str(error), fatal=True)])
    report = CheckReport(spec, problems=list(dataset.problems), notes=list(dataset.notes))
    paths = sorted({record.path for split in SPLITS for record in dataset.split(split)})
    bad = bad_images(paths, open_images, workers)
    report.problems += [Problem(reason, path) for path, reason in bad.items()]
    for split in SPLITS:
        records = dataset.split(split)
        report.counts.append(SplitCount(split, len({r.pid for r in records}), len(records),
                                        len({r.camid for r in records})))
    _check_matches(dataset, set(bad), report)
    return report


def bad_images(paths: list[Path], open_images: bool = True, workers: int | None = None) -> dict[Path, str]:
    """{path: reason} for each file that is missing, empty or (when `open_images`) not decodable."""
    check = image_problem if open_images else file_problem
    workers = workers or min(16, 2 * (os.cpu_count() or 1))  # file I/O and decoding release the GIL
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(tqdm(pool.map(check, paths), total=len(paths), unit="img", file=sys.stderr,
                            desc="opening images" if open_images else "checking files"))
    return {path: reason for path, reason in zip(paths, reasons) if reason is not None}


def _check_matches(dataset: ReidDataset, bad: set[Path], report: CheckReport) -> None:
    """Count queries with a valid gallery match; report each query identity that has none."""
    if dataset.train and not dataset.query and not dataset.gallery:
        # a training set only, e.g. Diff-Person: usable for (pre-)training, not for evaluation
        report.problems.append(Problem("no query or gallery images: a training set only, nothing to evaluate",
                                       dataset.root))
        return
    for split in ("query", "gallery"):
        if not dataset.split(split):
            report.problems.append(Problem(f"no {split} images; nothing to evaluate", dataset.root, fatal=True))
    cameras: dict[int, set[int]] = {}
    for record in dataset.gallery:
        if record.path not in bad:
            cameras.setdefault(record.pid, set()).add(record.camid)
    unmatched: dict[int, list[Record]] = {}
    queries = [record for record in dataset.query if record.path not in bad]
    for record in queries:
        if cameras.get(record.pid, set()) - {record.camid}:
            report.matched_queries += 1
        else:
            unmatched.setdefault(record.pid, []).append(record)
    report.queries = len(queries)
    for pid, records in sorted(unmatched.items()):
        report.problems.append(Problem(
            f"query identity {pid} has no gallery image of it from another camera; "
            f"{len(records)} query image(s) cannot be scored", records[0].path))
    if queries and dataset.gallery and not report.matched_queries:
        report.problems.append(Problem(
            "no query has a gallery image of its identity from another camera; query and gallery do not fit",
            dataset.root, fatal=True))
