"""Distances between feature sets, in the conventions the rank metrics expect."""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "euclidean")


def l2_normalize(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def pairwise_distance(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Distance matrix (len(a) x len(b)), float32: smaller is more alike.

    cosine: 1 - cosine similarity; euclidean: squared Euclidean distance, as torchreid
    and fast-reid rank with it (monotone in the true distance, so ranks are the same).
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if metric == "cosine":
        return (1.0 - l2_normalize(a) @ l2_normalize(b).T).astype(np.float32)
    if metric == "euclidean":
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return np.maximum(sq, 0.0).astype(np.float32)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
