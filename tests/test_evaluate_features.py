"""evaluate_features and re-ranking from features against the matrix-based evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from diffreid.evaluation import EvaluationError, evaluate_features, evaluate_rank, re_rank, re_rank_features
from diffreid.evaluation import feature_metrics as features_module
from diffreid.evaluation.distance import pairwise_distance
from diffreid.evaluation.rerank_features import ReRankedDistances


def identities(seed, nq=40, ng=150, num_ids=12, num_cams=3, noise=0.9, dim=16):
    """Features scattered around identity centres (continuous, so no distance ties) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim))
    q_pids, g_pids = rng.integers(0, num_ids, nq), np.arange(ng) % num_ids
    q = (centres[q_pids] + noise * rng.standard_normal((nq, dim))).astype(np.float32)
    g = (centres[g_pids] + noise * rng.standard_normal((ng, dim))).astype(np.float32)
    return q, g, q_pids, g_pids, rng.integers(0, num_cams, nq), rng.integers(0, num_cams, ng)


def assert_same_results(ours, expected, atol=1e-6):
    np.testing.assert_allclose(ours["cmc"], expected["cmc"], atol=atol)
    assert ours["mAP"] == pytest.approx(expected["mAP"], abs=atol)
    assert ours["mINP"] == pytest.approx(expected["mINP"], abs=atol)
    assert ours["num_valid_queries"] == expected["num_valid_queries"]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("protocol", ["market1501", "cuhk03"])
@pytest.mark.parametrize("chunk", [1, 7, None, 1000])
def test_equals_evaluate_rank_of_the_matrix(metric, protocol, chunk):
    q, g, *labels = identities(seed=len(metric) + (chunk or 0))
    expected = evaluate_rank(pairwise_distance(q, g, metric), *labels, max_rank=20, protocol=protocol)
    ours = evaluate_features(q, g, *labels, metric=metric, max_rank=20, protocol=protocol, chunk=chunk)
    assert_same_results(ours, expected)


def test_chunk_comes_from_the_memory_budget(monkeypatch):
    assert features_module.auto_chunk(82161) * 82161 * features_module.BYTES_PER_DISTANCE <= features_module.BLOCK_BUDGET
    assert features_module.auto_chunk(10**9) == 1
    q, g, *labels = identities(seed=3)
    whole = evaluate_features(q, g, *labels)
    monkeypatch.setattr(features_module, "BLOCK_BUDGET", 16 * len(g) * 3)  # three queries a block
    assert_same_results(evaluate_features(q, g, *labels), whole, atol=1e-12)


@pytest.mark.parametrize("change, message", [
    ({"q_feats": np.ones(5)}, "q_feats must be"),
    ({"g_feats": np.ones((0, 16))}, "g_feats must be"),
    ({"g_feats": np.ones((150, 8))}, "dimensions"),
    ({"q_feats": np.full((40, 16), np.nan)}, "NaN"),
    ({"metric": "manhattan"}, "unknown metric"),
    ({"chunk": 0}, "chunk"),
    ({"protocol": "viper"}, "unknown protocol"),
    ({"q_pids": np.zeros(39)}, "shape"),
    ({"rerank": {"k1": 0}}, "k1"),
    ({"rerank": {"search": "hnsw"}}, "neighbour search"),
])
def test_bad_inputs_are_clear_errors(change, message):
    q, g, q_pids, g_pids, q_camids, g_camids = identities(seed=4)
    args = dict(q_feats=q, g_feats=g, q_pids=q_pids, g_pids=g_pids, q_camids=q_camids, g_camids=g_camids)
    with pytest.raises(EvaluationError, match=message):
        evaluate_features(**{**args, **change})


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k1, k2, lambda_value", [(20, 6, 0.3), (7, 1, 0.0), (5, 9, 1.0)])
def test_re_ranking_from_features_equals_re_rank(metric, k1, k2, lambda_value):
    q, g, *_ = identities(seed=k1 + k2)
    dense = re_rank(pairwise_distance(q, g, metric), pairwise_distance(q, q, metric), pairwise_distance(g, g, metric),
                    k1=k1, k2=k2, lambda_value=lambda_value)
    ours = re_rank_features(q, g, k1=k1, k2=k2, lambda_value=lambda_value, metric=metric)
    assert ours.shape == dense.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, dense, atol=1e-5)


def test_re_ranked_evaluation_streams_the_same_matrix():
    q, g, *labels = identities(seed=5, noise=1.2)
    expected = evaluate_rank(re_rank_features(q, g, metric="cosine"), *labels)
    assert_same_results(evaluate_features(q, g, *labels, metric="cosine", chunk=4, rerank=True), expected)
    assert expected["mAP"] > evaluate_features(q, g, *labels, metric="cosine")["mAP"] + 0.02


def test_rows_of_chosen_queries_are_rows_of_the_whole():
    q, g, *_ = identities(seed=6, nq=12, ng=30)
    distances = ReRankedDistances(q, g, "euclidean", k1=6, k2=3)
    chosen = np.array([0, 5, 11])
    np.testing.assert_allclose(distances.rows(chosen), distances.rows(slice(None))[chosen], atol=1e-7)


def test_ivf_search_agrees_with_exact():
    q, g, *labels = identities(seed=7, nq=300, ng=3000, num_ids=60, noise=1.0, dim=32)
    exact = evaluate_features(q, g, *labels, rerank=True)
    ivf = evaluate_features(q, g, *labels, rerank={"search": "ivf"})
    assert abs(exact["mAP"] - ivf["mAP"]) < 1e-3
