"""Distances between feature sets, in the conventions the rank metrics expect.

cosine: 1 - cosine similarity; euclidean: squared Euclidean distance, as torchreid and
fast-reid rank with it (monotone in the true distance, so ranks are the same). The
whole matrix (`pairwise_distance`), any rows of it (`FeatureDistances.rows`) and any
single entries (`FeatureDistances.pairs`) come from the same prepared features.
"""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "euclidean")
PAIRS_AT_ONCE = 1 << 14


def l2_normalize(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


class FeatureDistances:
    """Query x gallery distances computed from features on demand, a few rows at a time.

    Features are prepared once (unit-normalised for cosine, squared norms for
    euclidean); a block of rows costs one matrix product, so the full matrix never has
    to exist.
    """

    def __init__(self, q_feats, g_feats=None, metric: str = "cosine"):
        """g_feats None: the query set against itself, prepared once."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
        self.metric = metric
        self.q = self._prepared(q_feats)
        self.g = self.q if g_feats is None else self._prepared(g_feats)
        if metric == "euclidean":
            self.q_sq = (self.q * self.q).sum(1)
            self.g_sq = self.q_sq if g_feats is None else (self.g * self.g).sum(1)

    def _prepared(self, feats) -> np.ndarray:
        feats = np.asarray(feats, dtype=np.float32)
        return l2_normalize(feats) if self.metric == "cosine" else feats

    def split(self, num_query: int) -> FeatureDistances:
        """A set against itself, cut in two: its first `num_query` items against the rest (no copies)."""
        part = object.__new__(FeatureDistances)
        part.metric, part.q, part.g = self.metric, self.q[:num_query], self.g[num_query:]
        if self.metric == "euclidean":
            part.q_sq, part.g_sq = self.q_sq[:num_query], self.g_sq[num_query:]
        return part

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.q), len(self.g)

    def rows(self, index) -> np.ndarray:
        """Distances of queries `index` (a slice or indices) to the whole gallery, float32."""
        products = self.q[index] @ self.g.T
        if self.metric == "cosine":
            return np.subtract(np.float32(1), products, out=products)
        sums = self.q_sq[index][:, None] + self.g_sq[None, :]
        products *= np.float32(2)
        return np.maximum(np.subtract(sums, products, out=products), 0, out=products)

    def pairs(self, q_index: np.ndarray, g_index: np.ndarray) -> np.ndarray:
        """Distances of the pairs (q_index[i], g_index[i]), float32."""
        out = np.empty(len(q_index), dtype=np.float32)
        for start in range(0, len(out), PAIRS_AT_ONCE):
            qi, gi = q_index[start:start + PAIRS_AT_ONCE], g_index[start:start + PAIRS_AT_ONCE]
            products = np.einsum("ij,ij->i", self.q[qi], self.g[gi])
            if self.metric == "cosine":
                out[start:start + len(qi)] = 1 - products
            else:
                out[start:start + len(qi)] = np.maximum(self.q_sq[qi] + self.g_sq[gi] - 2 * products, 0)
        return out


def pairwise_distance(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Distance matrix (len(a) x len(b)), float32: smaller is more alike."""
    return FeatureDistances(a, b, metric=metric).rows(slice(None))
