"""k-reciprocal re-ranking from features, for sets too large for any N x N matrix.

`re_rank` takes three distance matrices; at MSMT17's 93,820 images those alone are
35 GB. Everything the method needs is smaller: each image's k1 + 1 (and k2) nearest
images and its largest distance to any image (faiss searches, `neighbours`), the
distances of the pairs in its expanded k-reciprocal set, the sparse encodings V built
from those, and finally each evaluated query's distances to the gallery, which are
computed a block of queries at a time. So `ReRankedDistances.rows` gives any queries'
re-ranked rows, and the evaluation streams them without the whole matrix.

With search="exact" this is the same computation as `re_rank` on the features'
distance matrices (differences: rounding, and ties between equal distances may order
neighbours differently). search="ivf" finds neighbours and farthest images
approximately (see `neighbours`): the farthest distance found can only be smaller.
"""

from __future__ import annotations

import numpy as np

from diffreid.evaluation.distance import FeatureDistances, l2_normalize
from diffreid.evaluation.neighbours import SEARCHES, farthest_distance, nearest
from diffreid.evaluation.rank import EvaluationError
from diffreid.evaluation.rerank import check_normalisers, check_parameters, encodings, final_rows


class ReRankedDistances:
    """Re-ranked query x gallery distances, computed on demand a block of query rows at a time."""

    def __init__(self, q_feats, g_feats, metric: str = "euclidean", k1: int = 20, k2: int = 6,
                 lambda_value: float = 0.3, search: str = "exact"):
        check_parameters(k1, k2, lambda_value)
        if search not in SEARCHES:
            raise EvaluationError(f"unknown neighbour search {search!r}; expected one of {SEARCHES}")
        q_feats, g_feats = np.asarray(q_feats), np.asarray(g_feats)
        self.lambda_value = lambda_value
        images = FeatureDistances(np.concatenate([q_feats, g_feats]), metric=metric)
        nq, n = len(q_feats), len(images.q)
        self.plain = images.split(nq)
        self.row_max = np.square(farthest_distance(images, search))
        check_normalisers(self.row_max)
        neighbours = nearest(images, min(max(k1 + 1, k2), n), search)
        v = encodings(neighbours, k1, k2, self.row_max, images.pairs)
        self.v_query, self.v_gallery = v[:nq], v[nq:].tocsc()
        self.metric = metric

    @property
    def shape(self) -> tuple[int, int]:
        return self.plain.shape

    def rows(self, index) -> np.ndarray:
        """Re-ranked distances of queries `index` (a slice or indices) to the whole gallery, float32."""
        raw = self.plain.rows(index)
        return final_rows(raw, self.row_max[:len(self.plain.q)][index], self.v_query[index], self.v_gallery,
                          self.lambda_value, out=raw)


def re_rank_features(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                     metric: str = "euclidean", search: str = "exact") -> np.ndarray:
    """The dense re-ranked query x gallery matrix (float32), built from features.

    Equal, up to rounding and ties, to `re_rank(pairwise_distance(q, g, metric), ...)`
    with exact search; its memory is the result (nq x ng x 4 bytes) plus what
    `ReRankedDistances` holds. To evaluate at scale use `evaluate_features(rerank=...)`,
    which never holds the result.
    """
    distances = ReRankedDistances(q_feats, g_feats, metric, k1, k2, lambda_value, search)
    nq, ng = distances.shape
    out = np.empty((nq, ng), dtype=np.float32)
    step = max(1, (64 << 20) // (4 * max(1, ng)))
    for start in range(0, nq, step):
        out[start:start + step] = distances.rows(slice(start, start + step))
    return out


def jaccard_distances(features: np.ndarray, k1: int = 30, k2: int = 6) -> np.ndarray:
    """N x N k-reciprocal Jaccard distances of L2-normalised features (re-ranking with λ = 0)."""
    images = FeatureDistances(l2_normalize(np.asarray(features, np.float32)), metric="euclidean")
    n = len(images.q)
    row_max = np.square(farthest_distance(images))
    v = encodings(nearest(images, min(max(k1 + 1, k2), n)), min(k1, n - 1), min(k2, n), row_max, images.pairs)
    columns = v.tocsc()
    out = np.empty((n, n), np.float32)
    step = max(1, (32 << 20) // (4 * n))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        raw = images.rows(rows)
        out[rows] = final_rows(raw, row_max[rows], v[rows], columns, 0.0, out=raw)
    return out
