"""The per-block core of the rank metrics: where each query's true matches rank.

torchreid and fast-reid argsort every whole row and walk it. All a query's metrics need,
though, are the positions of its true matches among its valid gallery items, and only
items no farther than its farthest match can come before one. So for a block of query
rows we mark those items in one comparison pass, sort that short list per query and
look the matches up in it: less work, and memory bounded by the block, not the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gallery:
    """Gallery labels, grouped by pid so a query finds its own pid's items without a scan."""

    pids: np.ndarray
    camids: np.ndarray
    group_pids: np.ndarray  # sorted distinct pids
    group_starts: np.ndarray  # where each pid's items start in `by_pid`
    group_sizes: np.ndarray
    by_pid: np.ndarray  # gallery indices sorted by pid, ascending within a pid

    @classmethod
    def of(cls, pids, camids) -> Gallery:
        pids, camids = np.asarray(pids), np.asarray(camids)
        by_pid = np.argsort(pids, kind="stable")
        group_pids, starts, sizes = np.unique(pids[by_pid], return_index=True, return_counts=True)
        return cls(pids, camids, group_pids, starts, sizes, by_pid)

    def group_of(self, q_pids: np.ndarray) -> np.ndarray:
        """Index of each query pid's group, -1 where the gallery lacks that pid."""
        if len(self.group_pids) == 0:
            return np.full(len(q_pids), -1)
        at = np.minimum(np.searchsorted(self.group_pids, q_pids), len(self.group_pids) - 1)
        return np.where(self.group_pids[at] == q_pids, at, -1)

    def same_pid(self, q_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, gallery index) of every gallery item sharing the query's pid, row-major."""
        groups = self.group_of(q_pids)
        found = np.flatnonzero(groups >= 0)
        sizes = self.group_sizes[groups[found]]
        rows = np.repeat(found, sizes)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return rows, self.by_pid[np.repeat(self.group_starts[groups[found]], sizes) + within]


@dataclass(frozen=True)
class MatchRanks:
    """True matches of a block of queries and their 0-based positions among valid items.

    Entries run by query row, then position; `starts` and `counts` slice them per row.
    """

    rows: np.ndarray
    cols: np.ndarray  # gallery index of each match
    ranks: np.ndarray
    counts: np.ndarray  # matches per query row; 0 means the query is skipped

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.counts) - self.counts


def match_ranks(dist: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, gallery: Gallery) -> MatchRanks:
    """Rank the true matches of a block of queries (rows of `dist`) under the Market-1501 rule.

    Gallery items of the query's pid and camera are discarded; the others of its pid are
    its matches. A match's position counts the valid items closer to the query and, among
    equal distances, those of lower gallery index (np.argsort(kind="stable") order).
    """
    rows, cols = gallery.same_pid(q_pids)
    junk = gallery.camids[cols] == q_camids[rows]
    rows, cols, junk_rows, junk_cols = rows[~junk], cols[~junk], rows[junk], cols[junk]
    d = dist[rows, cols]
    counts = np.bincount(rows, minlength=len(dist))
    starts = np.cumsum(counts) - counts
    farthest = np.full(len(dist), -np.inf, dtype=dist.dtype)
    np.maximum.at(farthest, rows, d)
    near = dist <= farthest[:, None]  # the only items that can come before a match
    near[junk_rows, junk_cols] = False
    near_ends = np.cumsum(np.count_nonzero(near, axis=1))
    near_values = dist[near]
    ranks = np.empty(len(rows), dtype=np.int64)
    for row in np.flatnonzero(counts):
        span = slice(starts[row], starts[row] + counts[row])
        ahead = np.sort(near_values[near_ends[row - 1] if row else 0:near_ends[row]])
        before = np.searchsorted(ahead, d[span], "left")
        for k in np.flatnonzero(np.searchsorted(ahead, d[span], "right") - before > 1):  # equal distances
            col = cols[span][k]
            before[k] += np.count_nonzero(near[row, :col] & (dist[row, :col] == d[span][k]))
        ranks[span] = before
    order = np.lexsort((ranks, rows))
    return MatchRanks(rows[order], cols[order], ranks[order], counts)


def query_scores(matches: MatchRanks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first match position, AP, INP) of each query with a match, in row order.

    AP averages k / (position of the k-th match + 1); INP (fast-reid's mINP term) is
    the number of matches / (position of the last match + 1).
    """
    valid = matches.counts > 0
    starts, counts = matches.starts[valid], matches.counts[valid]
    kth = np.arange(len(matches.rows)) - np.repeat(matches.starts, matches.counts) + 1
    precision_sums = np.bincount(matches.rows, kth / (matches.ranks + 1.0), minlength=len(matches.counts))
    return matches.ranks[starts], precision_sums[valid] / counts, counts / (matches.ranks[starts + counts - 1] + 1.0)
