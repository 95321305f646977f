"""Loss and metric curves of a training run, drawn from its metrics.jsonl rows."""

from __future__ import annotations

from pathlib import Path

from diffreid.artifacts import atomic_path


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
