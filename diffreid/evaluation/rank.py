"""`evaluate_rank`: CMC, mAP and mINP of a query x gallery distance matrix, block by block."""

from __future__ import annotations

import numpy as np

from diffreid.errors import DiffreidError
from diffreid.evaluation.cuhk03 import SingleShot
from diffreid.evaluation.matches import Gallery, match_ranks, query_scores

PROTOCOLS = ("market1501", "cuhk03")
BLOCK_ELEMENTS = 1 << 21  # distances ranked at a time: 8 MiB of float32


class EvaluationError(DiffreidError, ValueError):
    """Inputs the rank metrics cannot evaluate; the message says what to fix."""


def check_labels(shape, q_pids, g_pids, q_camids, g_camids, max_rank, protocol, name="distmat") -> None:
    """`shape`: that of the (possibly never built) distance matrix, which `name` gives."""
    if protocol not in PROTOCOLS:
        raise EvaluationError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if tuple(shape) != (len(q_pids), len(g_pids)):
        raise EvaluationError(f"{name} has shape {tuple(shape)}, expected (num_query, num_gallery) = "
                              f"({len(q_pids)}, {len(g_pids)}) from the pid arrays")
    if len(q_camids) != len(q_pids) or len(g_camids) != len(g_pids):
        raise EvaluationError(f"camid arrays have lengths ({len(q_camids)}, {len(g_camids)}), pid arrays "
                              f"({len(q_pids)}, {len(g_pids)}); they must match")
    if max_rank < 1:
        raise EvaluationError(f"max_rank must be at least 1, got {max_rank}")


class RankMetrics:
    """CMC, mAP and mINP summed over blocks of query rows, fed in query order.

    `evaluate_rank` feeds it slices of a distance matrix; an evaluator that computes
    distances from features a block of queries at a time can feed it those blocks.
    """

    def __init__(self, g_pids, g_camids, max_rank: int = 50, protocol: str = "market1501", seed: int = 0):
        self.gallery = Gallery.of(g_pids, g_camids)
        self.max_rank = max_rank
        self.single_shot = SingleShot(self.gallery, max_rank, seed) if protocol == "cuhk03" else None
        self.first_hits = np.zeros(max_rank + 1, dtype=np.int64)  # market1501: queries per first-match position
        self.ap_sum = self.inp_sum = 0.0
        self.num_valid = 0

    def add(self, dist: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray) -> None:
        """Count a block of queries: their rows of distances to the whole gallery."""
        if np.isnan(dist).any():
            raise EvaluationError("distances contain NaN; every query-gallery distance must be a number")
        matches = match_ranks(dist, q_pids, q_camids, self.gallery)
        first, ap, inp = query_scores(matches)
        if self.single_shot is None:
            self.first_hits += np.bincount(np.minimum(first, self.max_rank), minlength=self.max_rank + 1)
        else:
            self.single_shot.add(dist, q_pids, matches)
        self.ap_sum += ap.sum()
        self.inp_sum += inp.sum()
        self.num_valid += len(first)

    def result(self) -> dict:
        n = self.num_valid
        if n == 0:
            raise EvaluationError("no query has a true match in the gallery once same-camera images of its "
                                  "identity are discarded; check the query and gallery pids and camids")
        cmc = np.cumsum(self.first_hits[:self.max_rank]) / n if self.single_shot is None else self.single_shot.cmc(n)
        return {"cmc": cmc, "mAP": self.ap_sum / n, "mINP": self.inp_sum / n, "num_valid_queries": n}


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                  protocol: str = "market1501", seed: int = 0) -> dict:
    """CMC, mAP and mINP of a distance matrix (smaller is closer), as fractions in [0, 1].

    protocol "market1501": per query, gallery items of its pid and camera are discarded
    and queries left without a match are skipped (an error if all are). Without ties the
    results equal torchreid's and fast-reid's evaluators; ties are broken by gallery index
    (np.argsort(kind="stable") order), where theirs follow an unstable sort.
    protocol "cuhk03": single-gallery-shot CMC (see `diffreid.evaluation.cuhk03`; `seed`
    fixes its draws); mAP and mINP as for market1501, as those evaluators compute AP.

    Float32 and float64 distances are ranked as given, others as float64. `cmc` always
    has `max_rank` entries: past the gallery's end (where those evaluators warn and cut
    the curve short) they are 1.0, as every counted query has met its match by then.
    Also returned: `num_valid_queries`, the number of queries counted.
    """
    distmat = np.asarray(distmat)
    if distmat.dtype not in (np.float32, np.float64):
        distmat = distmat.astype(np.float64)
    q_pids, g_pids, q_camids, g_camids = map(np.asarray, (q_pids, g_pids, q_camids, g_camids))
    check_labels(distmat.shape, q_pids, g_pids, q_camids, g_camids, max_rank, protocol)
    metrics = RankMetrics(g_pids, g_camids, max_rank, protocol, seed)
    block = max(1, BLOCK_ELEMENTS // max(1, distmat.shape[1]))
    for start in range(0, len(q_pids), block):
        rows = slice(start, start + block)
        metrics.add(distmat[rows], q_pids[rows], q_camids[rows])
    return metrics.result()
