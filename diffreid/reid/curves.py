"""Loss and metric curves of a training run, drawn from its metrics.jsonl rows."""

from __future__ import annotations

from pathlib import Path

from diffreid.artifacts import atomic_path


def plot_curves(rows: list[dict], path: Path) -> None:
    """Loss terms per epoch (left) and accuracy, Rank-1 and mAP where measured (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (losses, scores) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in rows]
    for key in sorted({k for row in rows for k in row if k.startswith("loss_")}):
        losses.plot(epochs, [row.get(key) for row in rows], marker=".", label=key.removeprefix("loss_"))
    losses.set(xlabel="epoch", ylabel="loss", title="training loss")
    losses.legend()
    for key in ("train_accuracy", "rank1", "mAP"):
        points = [(row["epoch"], 100 * row[key]) for row in rows if key in row]
        if points:
            scores.plot(*zip(*points), marker=".", label=key)
    scores.set(xlabel="epoch", ylabel="%", title="accuracy and evaluation", ylim=(0, 100))
    scores.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
