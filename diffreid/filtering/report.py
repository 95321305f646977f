"""Figures of a filter run: where the scores fall, and how many images each identity keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreid.artifacts import atomic_path


def plot_scores(kept: list[float], dropped: list[float], real: list[float], threshold: dict[str, float],
                path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    values = [v for v in kept + dropped + real if np.isfinite(v)]
    bins = np.linspace(min(values, default=0), max(values, default=1), 50)
    for name, scores in (("real (cross-camera)", real), ("kept", kept), ("dropped: low score", dropped)):
        if scores:
            axis.hist(scores, bins=bins, alpha=0.5, density=True, label=f"{name} ({len(scores)})")
    for source, value in threshold.items():
        axis.axvline(value, color="black", linestyle="--", linewidth=1)
        axis.annotate(f"threshold {value:.3f}", (value, axis.get_ylim()[1] * 0.9), fontsize=8,
                      rotation=90, ha="right", va="top", xytext=(-2, 0), textcoords="offset points")
    axis.set(xlabel="score", ylabel="density", title="Re-ID confidence of generated images")
    axis.legend()
    _save(figure, path)


def plot_kept_per_identity(counts: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.hist(counts, bins=range(0, max(counts, default=0) + 2), color="tab:green", align="left")
    axis.set(xlabel="images kept", ylabel="identities", title=f"kept per identity ({len(counts)} identities)")
    _save(figure, path)


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
