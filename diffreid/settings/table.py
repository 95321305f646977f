"""The results table every downstream run appends to, and the side-by-side view of it.

`results.csv` holds one row per run and test set (setting, init, training and test
datasets, Rank-1, mAP, mINP, the test's queries and gallery images, run folder, config);
`results.md` is the same as a markdown table, rewritten with each row. `compare` lays
initialisations side by side per setting, as the paper's tables are, each cell over the
initialisation's seeds, and says from the paired intervals whether one initialisation
beats another (`evaluation/intervals.py`).
A row whose config has `"seed": null` is one fixed model (`benchmark small --table` writes
such rows for a published or ImageNet model): it has no seeds of its own, so a comparison
pairs it with every seed of the other initialisation.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from diffreid.artifacts import write_text_atomic
from diffreid.errors import DiffreidError
from diffreid.evaluation.intervals import MIN_SEEDS, paired_verdict, percent, t_interval

TABLE_METRICS = ("mAP", "rank1", "mINP")
COLUMNS = ("setting", "init", "train", "test", "rank1", "mAP", "mINP", "queries", "gallery", "run", "config")


def read_table(folder: Path) -> list[dict]:
    path = Path(folder) / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def append_row(folder: Path, row: dict) -> None:
    """Add a run's row (a rerun of the same run folder on the same test replaces its row)."""
    folder = Path(folder)
    rows = [r for r in read_table(folder) if (r["run"], r["test"]) != (str(row["run"]), str(row["test"]))]
    rows.append({key: (json.dumps(row[key], sort_keys=True) if key == "config" else row.get(key, ""))
                 for key in COLUMNS})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "results.csv", buffer.getvalue())
    lines = ["| setting | init | train | test | Rank-1 | mAP | mINP |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['init']} | {r['train']} | {r['test']} | {float(r['rank1']):.1%} | "
              f"{float(r['mAP']):.1%} | {float(r['mINP']):.1%} |" for r in rows]
    write_text_atomic(folder / "results.md", "\n".join(lines) + "\n")


def read_tables(folders: Path | list[Path]) -> list[dict]:
    """The rows of one table or several (experiments kept in separate folders); an initialisation
    name a later table shares with an earlier one becomes `NAME@FOLDER`, so the two stay apart."""
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    rows, seen = [], set()
    for folder in folders:
        found = read_table(folder)
        if not found:
            raise DiffreidError(f"{folder / 'results.csv'}: no results yet; run `diffreid setting ...` first")
        taken = set(seen)
        for row in found:
            if row["init"] in taken:
                row["init"] = f"{row['init']}@{folder}"
            seen.add(row["init"])
        rows += found
    return rows


def compare(folder: Path | list[Path], baseline: str | None = None, min_seeds: int = MIN_SEEDS,
            metric: str = "mAP") -> str:
    """Rows: (setting, test); columns: initialisations; a cell: mAP / Rank-1, the mean over the
    initialisation's seeds ± the 95% interval, and how many seeds. With `baseline`, each other
    initialisation's paired difference in `metric` (mAP, rank1 or mINP) to it and the verdict, as the
    run report words its claim. `folder` may be several tables (`read_tables`)."""
    if metric not in TABLE_METRICS:
        raise DiffreidError(f"--metric {metric}: choose from {', '.join(TABLE_METRICS)}")
    rows = read_tables(folder)
    runs: dict[tuple, dict[int | None, dict]] = {}  # (setting, test, init) -> {seed (None: fixed): row}
    for row in rows:
        runs.setdefault((row["setting"], row["test"], row["init"]), {})[_seed(row)] = row
    inits = list(dict.fromkeys(init for _, _, init in runs))
    if baseline is not None and baseline not in inits:
        raise DiffreidError(f"--baseline {baseline}: no runs of that initialisation to compare against; the table "
                            f"holds {', '.join(inits)} (a run's name is its --label, else its --init)")
    keys = list(dict.fromkeys((setting, test) for setting, test, _ in runs))
    lines = ["| setting | test | " + " | ".join(inits) + " |", "| --- | --- | " + " | ".join("---" for _ in inits) + " |"]
    lines += [f"| {s} | {t} | " + " | ".join(_cell(runs.get((s, t, i))) for i in inits) + " |" for s, t in keys]
    fixed = any(set(per_seed) == {None} for per_seed in runs.values())
    text = "\n".join(lines) + "\n\n(mAP / Rank-1: mean over seeds ± 95% Student-t interval, [seeds]" + (
        "; [fixed]: one model without seeds, paired with every seed of the other)" if fixed else ")")
    text += "\n\n" + _sizes(rows)
    if baseline is None:
        return text
    lines = [f"| setting | test | init | {metric} difference to {baseline} | 95% interval | paired seeds | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s, t in keys:
        base = runs.get((s, t, baseline))
        for init in inits:
            if init == baseline or base is None or (s, t, init) not in runs:
                continue
            ours, theirs = _metric(runs[(s, t, init)], metric), _metric(base, metric)
            found = paired_verdict(_at_seeds(ours, theirs), _at_seeds(theirs, ours), min_seeds)
            bracket = "—" if found["low"] is None else f"[{100 * found['low']:+.1f}, {100 * found['high']:+.1f}]"
            lines.append(f"| {s} | {t} | {init} | {100 * found['difference']:+.1f} | {bracket} | "
                         f"{len(found['seeds'])} | {found['verdict']} |")
    return text + "\n\n" + "\n".join(lines) + f"\n\n(a verdict needs {min_seeds} paired seeds)"


def _sizes(rows: list[dict]) -> str:
    """The test sets' sizes, one line per (setting, test), as each run recorded them: one query more or
    less moves Rank-1 by 100 / queries points, so a difference is read against this."""
    sizes: dict[tuple, set] = {}
    for row in rows:
        size = (f"{row['queries']} queries / {row['gallery']} gallery" if row.get("queries")
                else "sizes not recorded")
        sizes.setdefault((row["setting"], row["test"]), set()).add(size)
    return "Test sets:\n" + "\n".join(f"- {s} on {t}: {' or '.join(sorted(found))}"
                                       for (s, t), found in sizes.items())


def _seed(row: dict) -> int | None:
    """The run's seed; None for a fixed model (`"seed": null`); 0 for a row that never recorded one."""
    config = json.loads(row["config"] or "{}")
    return None if "seed" in config and config["seed"] is None else int(config.get("seed", 0))


def _at_seeds(values: dict, other: dict) -> dict:
    """A fixed model's one value ({None: v}) stands at each of `other`'s seeds; seeded values stay as they are."""
    if set(values) == {None}:
        return {seed: values[None] for seed in other if seed is not None}
    return values


def _metric(per_seed: dict[int, dict], metric: str = "mAP") -> dict[int, float]:
    return {seed: float(row[metric]) for seed, row in per_seed.items()}


def _cell(per_seed: dict[int, dict] | None) -> str:
    if not per_seed:
        return "—"
    cells = (percent(*t_interval(list(_metric(per_seed, metric).values()))) for metric in ("mAP", "rank1"))
    return " / ".join(cells) + (" [fixed]" if set(per_seed) == {None} else f" [{len(per_seed)}]")
