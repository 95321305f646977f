"""re_rank against a dense, image-by-image reference of Zhong et al.'s algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from diffreid.evaluation import evaluate_rank, re_rank
from diffreid.evaluation import rerank


def reference_re_rank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """The algorithm as the paper and the authors' code state it: dense V, one image at a time."""
    nq = len(q_g)
    stacked = np.block([[q_q, q_g], [q_g.T, g_g]])
    squared = (stacked ** 2).astype(np.float32)
    original = (squared / squared.max(axis=0)).T  # row i: column i of the stack, over its maximum
    n = len(original)
    ranked = np.argsort(original, axis=1, kind="stable")

    def reciprocal(i, k):
        return [j for j in ranked[i, :k + 1] if i in ranked[j, :k + 1]]

    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        members = reciprocal(i, k1)
        expanded = set(members)
        for c in members:
            half = reciprocal(c, int(round(k1 / 2)))
            if len(set(half) & set(members)) > 2 / 3 * len(half):
                expanded |= set(half)
        cols = sorted(expanded)
        weights = np.exp(-original[i, cols])
        v[i, cols] = weights / weights.sum()
    if k2 != 1:
        v = np.stack([v[ranked[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.zeros((nq, n))
    for i in range(nq):
        for j in range(n):
            overlap = np.minimum(v[i], v[j]).sum()
            jaccard[i, j] = 1 - overlap / (2 - overlap)
    return (jaccard * (1 - lambda_value) + original[:nq] * lambda_value)[:, nq:]


def clustered(seed, nq=24, ng=90, num_ids=12, noise=0.9, dim=8):
    """Euclidean distances of features scattered around identity centres, cameras 0 (query) and 1."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim))
    q_pids, g_pids = rng.integers(0, num_ids, nq), np.arange(ng) % num_ids
    q = (centres[q_pids] + noise * rng.standard_normal((nq, dim))).astype(np.float32)
    g = (centres[g_pids] + noise * rng.standard_normal((ng, dim))).astype(np.float32)

    def dist(a, b):
        return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))

    return dist(q, g), dist(q, q), dist(g, g), q_pids, g_pids


@pytest.mark.parametrize("k1, k2, lambda_value", [(20, 6, 0.3), (7, 1, 0.0), (5, 3, 1.0), (30, 6, 0.5)])
def test_matches_reference(k1, k2, lambda_value):
    q_g, q_q, g_g, _, _ = clustered(seed=k1)
    ours = re_rank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value)
    assert ours.shape == q_g.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_re_rank(q_g, q_q, g_g, k1, k2, lambda_value), atol=1e-5)


def test_fewer_images_than_neighbours():
    q_g, q_q, g_g, _, _ = clustered(seed=1, nq=3, ng=5, num_ids=2)
    np.testing.assert_allclose(re_rank(q_g, q_q, g_g), reference_re_rank(q_g, q_q, g_g), atol=1e-5)


def test_small_blocks_give_the_same_result(monkeypatch):
    q_g, q_q, g_g, _, _ = clustered(seed=2)
    whole = re_rank(q_g, q_q, g_g)
    monkeypatch.setattr(rerank, "BLOCK_ELEMENTS", 300)
    np.testing.assert_allclose(re_rank(q_g, q_q, g_g), whole, atol=1e-6)


@pytest.mark.parametrize("case", ["random", "ties", "sampled columns far"])
def test_top_k_equals_a_stable_sort(case):
    rng = np.random.default_rng(0)
    dist = rng.random((30, 4000), dtype=np.float32)
    if case == "ties":
        dist = np.round(dist * 50).astype(np.float32)
    if case == "sampled columns far":  # the sample's bound is useless: the exact one must take over
        dist[:, ::16] += 10
    k = 21
    np.testing.assert_array_equal(rerank._top_k(dist, k), np.argsort(dist, axis=1, kind="stable")[:, :k])


def test_improves_map_on_clustered_identities():
    q_g, q_q, g_g, q_pids, g_pids = clustered(seed=3, nq=40, ng=240, num_ids=20, noise=1.1, dim=16)
    args = (q_pids, g_pids, np.zeros(len(q_pids)), np.ones(len(g_pids)))
    before = evaluate_rank(q_g, *args)["mAP"]
    after = evaluate_rank(re_rank(q_g, q_q, g_g), *args)["mAP"]
    assert after > before + 0.05


@pytest.mark.parametrize("args, kwargs, message", [
    ((np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 2))), {}, "g_g_dist"),
    ((np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2))), {"k2": 0}, "k2"),
    ((np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))), {}, "distance 0"),
])
def test_bad_inputs_are_reported(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        re_rank(*args, **kwargs)
