"""CUHK03's single-gallery-shot CMC, as torchreid's and fast-reid's eval_cuhk03 define it.

Per query (after the Market-1501 discard of its pid's same-camera items) and per repeat,
one gallery item is drawn at random for every gallery pid (for the query's own pid, one
of its matches); the CMC counts the drawn items ranked before the drawn match, and the
query's CMC is the mean over repeats. Those evaluators draw with numpy's global state;
here a Generator seeded once per evaluation draws, query after query, one number per
repeat and gallery pid, so the result depends only on the inputs and the seed (not on
how queries are split into blocks).
"""

from __future__ import annotations

import numpy as np

from diffreid.evaluation.matches import Gallery, MatchRanks

REPEATS = 10
DRAWS_AT_ONCE = 1 << 21


class SingleShot:
    """Single-shot CMC, accumulated block by block with one seeded Generator."""

    def __init__(self, gallery: Gallery, max_rank: int, seed: int = 0, repeats: int = REPEATS):
        self.gallery, self.max_rank, self.repeats = gallery, max_rank, repeats
        self.rng = np.random.default_rng(seed)
        self.hits = np.zeros(max_rank + 1, dtype=np.int64)  # (query, repeat) pairs per drawn-match position

    def cmc(self, num_valid: int) -> np.ndarray:
        return np.cumsum(self.hits[:self.max_rank]) / (num_valid * self.repeats)

    def add(self, dist: np.ndarray, q_pids: np.ndarray, matches: MatchRanks) -> None:
        """Draw for a block of queries (rows of `dist`, ranked by `match_ranks`)."""
        step = max(1, DRAWS_AT_ONCE // (self.repeats * len(self.gallery.group_pids)))
        for start in range(0, len(dist), step):
            rows = np.arange(start, min(start + step, len(dist)))
            draws = self.rng.random((len(rows), self.repeats, len(self.gallery.group_pids)))
            valid = matches.counts[rows] > 0
            ranks = self._ranks(dist[rows[valid]], q_pids[rows[valid]], draws[valid],
                                matches.starts[rows[valid]], matches.counts[rows[valid]], matches.cols)
            self.hits += np.bincount(np.minimum(ranks, self.max_rank).ravel(), minlength=self.max_rank + 1)

    def _ranks(self, dist, q_pids, draws, starts, counts, match_cols) -> np.ndarray:
        """Position of the drawn match among the drawn items, per (query, repeat)."""
        g = self.gallery
        queries = np.arange(len(dist))
        own = g.group_of(q_pids)
        picks = g.by_pid[g.group_starts + np.minimum((draws * g.group_sizes).astype(np.int64), g.group_sizes - 1)]
        own_draws = draws[queries, :, own]
        match = match_cols[starts[:, None] + np.minimum((own_draws * counts[:, None]).astype(np.int64),
                                                        counts[:, None] - 1)]
        match_dist = dist[queries[:, None], match][..., None]
        pick_dist = dist[queries[:, None, None], picks]
        before = (pick_dist < match_dist) | ((pick_dist == match_dist) & (picks < match[..., None]))
        before[queries, :, own] = False
        return np.count_nonzero(before, axis=-1)
