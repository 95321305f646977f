"""The results table every downstream run appends to, and the side-by-side view of it.

`results.csv` holds one row per run (setting, init, training and test datasets,
Rank-1, mAP, mINP, run folder, config); `results.md` is the same as a markdown table,
rewritten with each row. `compare` lays initialisations side by side per setting, as the
paper's tables are.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from diffreid.artifacts import write_text_atomic
from diffreid.errors import DiffreidError

COLUMNS = ("setting", "init", "train", "test", "rank1", "mAP", "mINP", "run", "config")


def read_table(folder: Path) -> list[dict]:
    path = Path(folder) / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def append_row(folder: Path, row: dict) -> None:
    """Add a run's row (a rerun of the same run folder replaces its row)."""
    folder = Path(folder)
    rows = [r for r in read_table(folder) if r["run"] != str(row["run"])]
    rows.append({key: (json.dumps(row[key], sort_keys=True) if key == "config" else row[key]) for key in COLUMNS})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "results.csv", buffer.getvalue())
    lines = ["| setting | init | train | test | Rank-1 | mAP | mINP |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['init']} | {r['train']} | {r['test']} | {float(r['rank1']):.1%} | "
              f"{float(r['mAP']):.1%} | {float(r['mINP']):.1%} |" for r in rows]
    write_text_atomic(folder / "results.md", "\n".join(lines) + "\n")


def compare(folder: Path) -> str:
    """Rows: (setting, test); columns: initialisations; cells 'mAP / Rank-1'."""
    rows = read_table(folder)
    if not rows:
        raise DiffreidError(f"{Path(folder) / 'results.csv'}: no results yet; run `diffreid setting ...` first")
    inits = list(dict.fromkeys(r["init"] for r in rows))
    keys = list(dict.fromkeys((r["setting"], r["test"]) for r in rows))
    cells = {(r["setting"], r["test"], r["init"]): f"{float(r['mAP']):.1%} / {float(r['rank1']):.1%}" for r in rows}
    lines = ["| setting | test | " + " | ".join(inits) + " |", "| --- | --- | " + " | ".join("---" for _ in inits) + " |"]
    lines += [f"| {s} | {t} | " + " | ".join(cells.get((s, t, i), "—") for i in inits) + " |" for s, t in keys]
    return "\n".join(lines) + "\n\n(mAP / Rank-1)"
