"""What a training run measures as it goes: `metrics.jsonl` (one row per epoch or logged step),
its curves, and the row's line in the log; one writer for every trainer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from diffreid.artifacts import atomic_path, read_jsonl, write_text_atomic

log = logging.getLogger(__name__)


class Metrics:
    """Rows keyed by `x` ("epoch" or "step"); each new row rewrites metrics.jsonl and `curves`
    (a PNG) atomically in `out` (nothing on disk when `out` is None, or on processes other
    than the main). `done` resumes: the rows of a run's checkpointed work are kept, a killed
    epoch's or step's are dropped."""

    def __init__(self, out: Path | None, x: str = "epoch", curves: str = "curves.png", done: int = 0,
                 main: bool = True):
        self.out, self.x, self.curves, self.main = out, x, curves, main
        self.rows = [row for row in read_jsonl(out / "metrics.jsonl") if row[x] <= done] if out and done else []

    def record(self, row: dict) -> None:
        self.rows.append(row)
        if not self.main:
            return
        log.info("%s %d: %s", self.x, row[self.x], ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != self.x))
        if self.out is not None:
            write_text_atomic(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
            plot_curves(self.rows, self.out / self.curves, self.x)


def plot_curves(rows: list[dict], path: Path, x: str = "epoch") -> None:
    """Loss terms per epoch or step (left) and accuracy, Rank-1 and mAP where measured (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    score_keys = [key for key in ("train_accuracy", "rank1", "mAP") if any(key in row for row in rows)]
    figure, axes = plt.subplots(1, 2 if score_keys else 1, figsize=(10 if score_keys else 5, 4), squeeze=False)
    losses = axes[0, 0]
    xs = [row[x] for row in rows]
    for key in sorted({k for row in rows for k in row if k.startswith("loss_")}):
        losses.plot(xs, [row.get(key) for row in rows], marker=".", label=key.removeprefix("loss_"))
    losses.set(xlabel=x, ylabel="loss", title="training loss")
    losses.legend()
    if score_keys:
        scores = axes[0, 1]
        for key in score_keys:
            scores.plot(*zip(*[(row[x], 100 * row[key]) for row in rows if key in row]), marker=".", label=key)
        scores.set(xlabel=x, ylabel="%", title="accuracy and evaluation", ylim=(0, 100))
        scores.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
