"""Each image's nearest images and its farthest distance, with faiss (on GPU when present).

k-reciprocal re-ranking needs, per image, only its few nearest images and one
normaliser, its largest distance to any image; both are searches, never an N x N
matrix. "exact" searches are brute force (faiss's flat indexes, blocked matrix
products); "ivf" searches an inverted file (IVF_LISTS_PER_SQRT * sqrt(N) lists, IVF_PROBE
of them per query): approximate, cheaper for large N, and only as good as the features
cluster (docs/evaluation-at-scale.md).
The farthest image is found as a maximum inner product: for unit features (cosine),
the nearest of -x; for squared Euclidean, max_y |y|^2 - 2 x.y over vectors [y, |y|^2]
searched with [-2x, 1]. Its distance is then recomputed in the metric's own convention.
"""

from __future__ import annotations

import numpy as np

from diffreid.evaluation.distance import FeatureDistances

SEARCHES = ("exact", "ivf")
QUERIES_AT_ONCE = 1 << 14
IVF_LISTS_PER_SQRT = 4
IVF_PROBE = 32
IVF_TRAIN_PER_LIST = 64


def _faiss():
    import faiss  # imported here: only re-ranking from features needs it

    return faiss


def _index(vectors: np.ndarray, inner_product: bool, search: str):
    """A faiss index holding `vectors`, moved to the GPUs when there are any."""
    faiss = _faiss()
    n, dim = vectors.shape
    flat = faiss.IndexFlatIP(dim) if inner_product else faiss.IndexFlatL2(dim)
    lists = max(1, min(int(IVF_LISTS_PER_SQRT * np.sqrt(n)), n // IVF_TRAIN_PER_LIST))
    index = flat
    if search == "ivf":  # faiss's wrapper keeps the quantizer alive with the index
        index = faiss.IndexIVFFlat(flat, dim, lists, faiss.METRIC_INNER_PRODUCT if inner_product else faiss.METRIC_L2)
        index.nprobe = min(IVF_PROBE, lists)
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    if not index.is_trained:
        sample = np.sort(np.random.default_rng(0).permutation(n)[:IVF_TRAIN_PER_LIST * lists])
        index.train(np.ascontiguousarray(vectors[sample]))
    index.add(np.ascontiguousarray(vectors))
    return index


def _search(index, queries, k: int) -> np.ndarray:
    """Labels of each query's k best, a block of queries at a time; -1 where fewer were found."""
    labels = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERIES_AT_ONCE):
        labels[start:start + QUERIES_AT_ONCE] = index.search(queries(start, start + QUERIES_AT_ONCE), k)[1]
    return labels


class _Queries:
    """Rows of a query matrix made block by block (a transformed copy of all N would double memory)."""

    def __init__(self, n: int, make):
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __call__(self, start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(self.make(start, min(stop, self.n)), dtype=np.float32)


def _searched(vectors: np.ndarray, queries: _Queries, k: int, inner_product: bool, search: str) -> np.ndarray:
    """Labels of each query's k best in `vectors`; rows an IVF search leaves short are searched exactly."""
    labels = _search(_index(vectors, inner_product, search), queries, k)
    short = np.flatnonzero((labels < 0).any(axis=1))
    if len(short):
        exact = _index(vectors, inner_product, "exact")
        labels[short] = np.concatenate([exact.search(queries(r, r + 1), k)[1] for r in short])
    return labels


def nearest(images: FeatureDistances, k: int, search: str = "exact") -> np.ndarray:
    """Each image's k nearest images (N x k, nearest first; the image itself among them).

    `images` holds one set against itself (query and gallery stacked).
    """
    x = images.q
    return _searched(x, _Queries(len(x), lambda a, b: x[a:b]), k, images.metric == "cosine", search)


def farthest_distance(images: FeatureDistances, search: str = "exact") -> np.ndarray:
    """Each image's largest distance to any image of the set (float32)."""
    x = images.q
    if images.metric == "cosine":
        base, queries = x, _Queries(len(x), lambda a, b: -x[a:b])
    else:
        base = np.hstack([x, images.q_sq[:, None]])
        queries = _Queries(len(x), lambda a, b: np.hstack([-2 * x[a:b], np.ones((b - a, 1), np.float32)]))
    labels = _searched(base, queries, 1, True, search)
    return images.pairs(np.arange(len(x)), labels[:, 0])
