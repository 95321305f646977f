"""evaluate_rank against a per-query reference of the protocols, hand-worked cases and ties."""

from __future__ import annotations

import numpy as np
import pytest

from diffreid.evaluation import EvaluationError, evaluate_rank
from diffreid.evaluation import cuhk03, rank
from diffreid.evaluation.cuhk03 import SingleShot
from diffreid.evaluation.matches import Gallery, match_ranks


def reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """The Market-1501 protocol written out query by query, as torchreid's python evaluator."""
    cmcs, aps, inps = [], [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        hits = np.flatnonzero(g_pids[order][keep] == q_pids[i])
        if len(hits) == 0:
            continue
        cmc = np.zeros(max_rank)
        cmc[hits[0]:] = 1
        cmcs.append(cmc)
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
        inps.append(len(hits) / (hits[-1] + 1))
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps)


def labels(rng, nq, ng, num_ids, num_cams):
    """Random pids (0 = distractor, some query pids absent from the gallery) and camids."""
    q_pids = rng.integers(1, num_ids + 2, nq)
    g_pids = rng.integers(0, num_ids + 1, ng)
    return q_pids, g_pids, rng.integers(0, num_cams, nq), rng.integers(0, num_cams, ng)


def assert_matches_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    result = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    cmc, mAP, mINP = reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    assert result["cmc"].shape == (max_rank,)
    np.testing.assert_allclose(result["cmc"], cmc, atol=1e-6)
    assert result["mAP"] == pytest.approx(mAP, abs=1e-6)
    assert result["mINP"] == pytest.approx(mINP, abs=1e-6)
    assert isinstance(result["mAP"], float) and isinstance(result["mINP"], float)
    return result


@pytest.mark.parametrize("nq, ng, num_ids, num_cams, max_rank", [
    (1, 3, 1, 2, 1), (5, 30, 4, 2, 50), (40, 200, 15, 3, 20), (120, 900, 60, 6, 50), (30, 12, 5, 2, 10),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference_without_ties(nq, ng, num_ids, num_cams, max_rank, dtype):
    rng = np.random.default_rng(nq * 1000 + ng)
    q_pids, g_pids, q_camids, g_camids = labels(rng, nq, ng, num_ids, num_cams)
    q_pids[0], g_pids[0], g_camids[0] = g_pids[-1] or 1, g_pids[-1] or 1, (q_camids[0] + 1) % num_cams  # one match
    distmat = rng.permutation(nq * ng).reshape(nq, ng).astype(dtype) / (nq * ng)  # distinct values
    assert_matches_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)


def test_blocks_of_queries_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(7)
    q_pids, g_pids, q_camids, g_camids = labels(rng, 50, 80, 10, 3)
    distmat = rng.random((50, 80))
    whole = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    monkeypatch.setattr(rank, "BLOCK_ELEMENTS", 3 * 80)
    blocked = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    np.testing.assert_array_equal(whole["cmc"], blocked["cmc"])
    assert whole["mAP"] == pytest.approx(blocked["mAP"], abs=1e-12)


def test_hand_worked_example():
    # query 0 (pid 1, cam 0): gallery sorted by distance is junk (pid 1 cam 0), pid 2, pid 1,
    # pid 3, pid 1. Valid list: pid 2, pid 1, pid 3, pid 1 -> matches at positions 1 and 3:
    # AP = (1/2 + 2/4) / 2 = 0.5, INP = 2/4 = 0.5, first match at rank 2.
    # query 1 (pid 3, cam 1): valid list pid 3 first -> AP = INP = 1, first match at rank 1.
    # query 2 (pid 9) has no match and is skipped.
    g_pids = np.array([1, 2, 1, 3, 1])
    g_camids = np.array([0, 1, 1, 0, 2])
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],
                        [0.5, 0.4, 0.3, 0.1, 0.2],
                        [0.1, 0.2, 0.3, 0.4, 0.5]])
    result = evaluate_rank(distmat, np.array([1, 3, 9]), g_pids, np.array([0, 1, 0]), g_camids, max_rank=6)
    np.testing.assert_allclose(result["cmc"], [0.5, 1, 1, 1, 1, 1])
    assert result["mAP"] == pytest.approx(0.75)
    assert result["mINP"] == pytest.approx(0.75)
    assert result["num_valid_queries"] == 2


def test_ties_are_broken_by_gallery_index():
    # all distances equal: the valid list is the gallery in index order, pid 2, pid 1, pid 2, pid 1
    result = evaluate_rank(np.zeros((1, 4)), np.array([1]), np.array([2, 1, 2, 1]), np.array([0]),
                           np.array([1, 1, 1, 1]), max_rank=4)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1, 1])
    assert result["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result["mINP"] == pytest.approx(2 / 4)


@pytest.mark.parametrize("levels", [2, 5, 40])
def test_many_ties_match_a_stable_sort(levels):
    rng = np.random.default_rng(levels)
    q_pids, g_pids, q_camids, g_camids = labels(rng, 60, 300, 12, 3)
    distmat = rng.integers(0, levels, (60, 300)).astype(np.float32)
    assert_matches_reference(distmat, q_pids, g_pids, q_camids, g_camids, 50)


def test_integer_distances_and_lists_are_accepted():
    result = evaluate_rank([[3, 1, 2]], [1], [1, 2, 1], [0], [1, 1, 1], max_rank=3)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1])
    assert result["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)


@pytest.mark.parametrize("g_pids, g_camids", [([1, 3], [0, 0]), ([], [])])
def test_no_valid_query_is_an_error(g_pids, g_camids):
    with pytest.raises(EvaluationError, match="no query has a true match"):
        evaluate_rank(np.zeros((2, len(g_pids))), [1, 2], g_pids, [0, 0], g_camids)


@pytest.mark.parametrize("kwargs, message", [
    ({"distmat": np.zeros((2, 3))}, "shape"),
    ({"q_camids": np.zeros(3)}, "camid"),
    ({"protocol": "viper"}, "unknown protocol"),
    ({"max_rank": 0}, "max_rank"),
    ({"distmat": np.full((2, 2), np.nan)}, "NaN"),
])
def test_bad_inputs_are_reported(kwargs, message):
    args = {"distmat": np.zeros((2, 2)), "q_pids": np.array([1, 2]), "g_pids": np.array([1, 2]),
            "q_camids": np.array([0, 0]), "g_camids": np.array([1, 1])} | kwargs
    with pytest.raises(ValueError, match=message):
        evaluate_rank(**args)


def clustered(rng, nq, ng, num_ids, noise):
    q_pids, g_pids = rng.integers(0, num_ids, nq), np.arange(ng) % num_ids
    centres = rng.standard_normal((num_ids, 16))
    q = centres[q_pids] + noise * rng.standard_normal((nq, 16))
    g = centres[g_pids] + noise * rng.standard_normal((ng, 16))
    distmat = ((q[:, None] - g[None]) ** 2).sum(-1)
    return distmat, q_pids, g_pids, np.zeros(nq, int), np.ones(ng, int)


def test_cuhk03_is_deterministic_and_independent_of_blocks(monkeypatch):
    args = clustered(np.random.default_rng(3), 40, 120, 12, 1.5)
    first = evaluate_rank(*args, protocol="cuhk03")
    np.testing.assert_array_equal(first["cmc"], evaluate_rank(*args, protocol="cuhk03")["cmc"])
    monkeypatch.setattr(rank, "BLOCK_ELEMENTS", 7 * 120)
    monkeypatch.setattr(cuhk03, "DRAWS_AT_ONCE", 3 * 10 * 12)
    np.testing.assert_array_equal(first["cmc"], evaluate_rank(*args, protocol="cuhk03")["cmc"])
    assert not np.array_equal(first["cmc"], evaluate_rank(*args, protocol="cuhk03", seed=1)["cmc"])
    market = evaluate_rank(*args)
    assert first["mAP"] == market["mAP"] and first["mINP"] == market["mINP"]
    assert np.all(np.diff(first["cmc"]) >= 0) and first["cmc"][-1] == 1.0


def test_cuhk03_ties_are_broken_by_gallery_index():
    # one image per identity, all at the same distance: pid 2 (index 0) is always drawn ahead
    result = evaluate_rank(np.zeros((1, 4)), [1], [2, 1, 3, 4], [0], [1, 1, 1, 1], max_rank=3, protocol="cuhk03")
    np.testing.assert_allclose(result["cmc"], [0, 1, 1])


def test_cuhk03_perfect_ranking():
    args = clustered(np.random.default_rng(4), 20, 60, 6, 0.01)
    result = evaluate_rank(*args, max_rank=10, protocol="cuhk03")
    np.testing.assert_allclose(result["cmc"], 1.0)
    assert result["mAP"] == pytest.approx(1.0)


def exact_single_shot(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Expected single-shot CMC: per match, the number of identities drawn ahead is Poisson-binomial."""
    total, counted = np.zeros(max_rank), 0
    for i, (pid, cam) in enumerate(zip(q_pids, q_camids)):
        matches = np.flatnonzero((g_pids == pid) & (g_camids != cam))
        if len(matches) == 0:
            continue
        counted += 1
        for m in matches:
            ahead = np.zeros(len(set(g_pids)))
            ahead[0] = 1
            for other in set(g_pids) - {pid}:
                p = np.mean(distmat[i, g_pids == other] < distmat[i, m])
                ahead[1:], ahead[0] = ahead[1:] * (1 - p) + ahead[:-1] * p, ahead[0] * (1 - p)
            total += np.cumsum(ahead)[:max_rank] / len(matches)
    return total / counted


def test_cuhk03_draws_have_the_right_expectation():
    rng = np.random.default_rng(5)
    distmat, q_pids, g_pids, q_camids, g_camids = clustered(rng, 12, 40, 8, 2.0)
    g_camids = rng.integers(0, 2, 40)
    gallery = Gallery.of(g_pids, g_camids)
    matches = match_ranks(distmat, q_pids, q_camids, gallery)
    single_shot = SingleShot(gallery, max_rank=6, seed=0, repeats=4000)
    single_shot.add(distmat, q_pids, matches)
    expected = exact_single_shot(distmat, q_pids, g_pids, q_camids, g_camids, 6)
    np.testing.assert_allclose(single_shot.cmc(np.count_nonzero(matches.counts)), expected, atol=0.01)
