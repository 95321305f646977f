"""`evaluate_features`: rank metrics straight from features, in memory bounded by a block.

torchreid and fast-reid build the whole query x gallery matrix and its argsort: at
MSMT17's 11,659 x 82,161 that is 3.8 GB plus 7.7 GB. Here distances are computed for
a block of queries at a time and fed to `RankMetrics`, the same per-block core
`evaluate_rank` uses, so the results are the same and memory is the features plus one
block, whose size is chosen from a budget.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from diffreid.evaluation.distance import METRICS, FeatureDistances
from diffreid.evaluation.rank import EvaluationError, RankMetrics, check_labels

BLOCK_BUDGET = 256 << 20  # bytes of working memory per block of queries
BYTES_PER_DISTANCE = 16  # a float32 distance, the core's masks and copies, the re-ranking's Jaccard terms


def auto_chunk(num_gallery: int, budget: int = BLOCK_BUDGET) -> int:
    """Queries per block so that a block's working memory stays near `budget` bytes."""
    return max(1, budget // (BYTES_PER_DISTANCE * max(1, num_gallery)))


def _features(feats, name: str) -> np.ndarray:
    feats = np.asarray(feats)
    if feats.ndim != 2 or 0 in feats.shape:
        raise EvaluationError(f"{name} must be a non-empty (num_images, dim) array, got shape {feats.shape}")
    if not np.isfinite(feats).all():
        raise EvaluationError(f"{name} contain NaN or infinite values; check the model's output")
    return feats


def feature_distances(q_feats, g_feats, metric: str = "cosine", rerank: bool | Mapping = False):
    """The query x gallery distance source for features: `.shape` and `.rows(index)`.

    rerank: False for plain distances; True for k-reciprocal re-ranking with its
    defaults; or a mapping of `ReRankedDistances` arguments (k1, k2, lambda_value, search).
    """
    q_feats, g_feats = _features(q_feats, "q_feats"), _features(g_feats, "g_feats")
    if q_feats.shape[1] != g_feats.shape[1]:
        raise EvaluationError(f"q_feats have {q_feats.shape[1]} dimensions and g_feats {g_feats.shape[1]}; "
                              "query and gallery features must come from the same model")
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if not rerank:
        return FeatureDistances(q_feats, g_feats, metric=metric)
    from diffreid.evaluation.rerank_features import ReRankedDistances

    return ReRankedDistances(q_feats, g_feats, metric, **({} if rerank is True else dict(rerank)))


def evaluate_distances(distances, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                       protocol: str = "market1501", chunk: int | None = None, seed: int = 0) -> dict:
    """`evaluate_rank` of a distance source (see `feature_distances`), fed a block of rows at a time."""
    q_pids, g_pids, q_camids, g_camids = map(np.asarray, (q_pids, g_pids, q_camids, g_camids))
    check_labels(distances.shape, q_pids, g_pids, q_camids, g_camids, max_rank, protocol,
                 name="the query x gallery features")
    if chunk is None:
        chunk = auto_chunk(len(g_pids))
    if chunk < 1:
        raise EvaluationError(f"chunk must be at least 1 query, got {chunk}")
    metrics = RankMetrics(g_pids, g_camids, max_rank, protocol, seed)
    for start in range(0, len(q_pids), chunk):
        rows = slice(start, start + chunk)
        metrics.add(distances.rows(rows), q_pids[rows], q_camids[rows])
    return metrics.result()


def evaluate_features(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids, metric: str = "cosine",
                      max_rank: int = 50, protocol: str = "market1501", chunk: int | None = None, seed: int = 0,
                      rerank: bool | Mapping = False) -> dict:
    """CMC, mAP and mINP of query features against gallery features; the full matrix never exists.

    Returns what `evaluate_rank(pairwise_distance(q_feats, g_feats, metric), ...)` does
    (cosine: 1 - cosine similarity; euclidean: squared distance), equal to it up to
    float rounding of the matrix products. `chunk`: queries per block (default: from
    BLOCK_BUDGET and the gallery size). `rerank`: see `feature_distances`.
    """
    distances = feature_distances(q_feats, g_feats, metric, rerank)
    return evaluate_distances(distances, q_pids, g_pids, q_camids, g_camids, max_rank, protocol, chunk, seed)
