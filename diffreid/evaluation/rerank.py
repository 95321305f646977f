"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), with sparse encodings.

The same computation as the authors' code (as shipped by torchreid and fast-reid), built
differently: only the k1 + 1 nearest neighbours of each image are found (a partial
sort of each row, a block of rows at a time, never the whole N x N rank matrix); the
k-reciprocal sets and their expansion are vectorised over all images; V, its query
expansion and the Jaccard distance are sparse, since each row of V has a few dozen
non-zero entries, not N. Ties between equal distances may be broken differently.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from diffreid.evaluation.rank import EvaluationError

BLOCK_ELEMENTS = 1 << 21  # distances or Jaccard terms handled at a time (8 MiB of float32)


def _copy_transposed(out: np.ndarray, src: np.ndarray, tile: int = 512) -> None:
    """out[:] = src.T a band at a time: one transposed copy of a large block thrashes the cache."""
    for start in range(0, len(src), tile):
        out[:, start:start + tile] = src[start:start + tile].T


class _Original:
    """The method's "original distance" O, read straight from the three input matrices.

    O stacks [[q_q, q_g], [q_g.T, g_g]], squares it and divides each column by its
    maximum; O's row i is that column i. Rows are produced a block at a time.
    """

    def __init__(self, q_g, q_q, g_g):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq, self.ng = q_g.shape
        self.n = self.nq + self.ng
        self.dtype = np.result_type(q_g, q_q, g_g)

    def raw_rows(self, start: int, stop: int) -> np.ndarray:
        """Unnormalised rows start..stop-1, which must all be queries or all gallery images."""
        out = np.empty((stop - start, self.n), dtype=self.dtype)  # C order: rows are read whole
        if stop <= self.nq:
            _copy_transposed(out[:, :self.nq], self.q_q[:, start:stop])
            out[:, self.nq:] = self.q_g[start:stop]
        else:
            cols = slice(start - self.nq, stop - self.nq)
            _copy_transposed(out[:, :self.nq], self.q_g[:, cols])
            _copy_transposed(out[:, self.nq:], self.g_g[:, cols])
        return out

    def raw_entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Unnormalised O[rows, cols]."""
        out = np.empty(len(rows), dtype=self.dtype)
        for row_query in (True, False):
            for col_query in (True, False):
                at = ((rows < self.nq) == row_query) & ((cols < self.nq) == col_query)
                r = rows[at] if row_query else rows[at] - self.nq
                c = cols[at] if col_query else cols[at] - self.nq
                if row_query:
                    out[at] = self.q_q[c, r] if col_query else self.q_g[r, c]
                else:
                    out[at] = self.q_g[c, r] if col_query else self.g_g[c, r]
        return out

    def blocks(self):
        """(start, stop) row blocks of about BLOCK_ELEMENTS entries, never straddling query/gallery."""
        step = max(1, BLOCK_ELEMENTS // self.n)
        for lo, hi in ((0, self.nq), (self.nq, self.n)):
            for start in range(lo, hi, step):
                yield start, min(start + step, hi)


def _squared(raw: np.ndarray) -> np.ndarray:
    return np.square(raw).astype(np.float32, copy=False)


def _top_k(dist: np.ndarray, k: int) -> np.ndarray:
    """Columns of each row's k smallest entries (float32, not negative), ordered by (distance, column).

    The k-th smallest of every 16th column bounds the row's k-th smallest from above, so
    the few entries under that bound hold the answer: a partial sort of a sixteenth of
    the row and a comparison pass instead of a partial sort of all of it. Should the
    sample bound poorly, the row's exact k-th smallest takes its place.
    """
    stride = max(1, min(16, dist.shape[1] // (8 * k)))
    bound = np.partition(dist[:, ::stride], k - 1, axis=1)[:, k - 1]
    near = dist <= bound[:, None]
    if np.count_nonzero(near) > 4 * k * stride * len(dist):
        near = dist <= np.partition(dist, k - 1, axis=1)[:, k - 1, None]
    flat = np.flatnonzero(near)  # row-major, so a stable sort keeps equal distances in column order
    rows, cols = np.divmod(flat, dist.shape[1])
    # O is never negative, so its float32 bit patterns sort as its values do
    order = np.argsort(rows << 32 | dist.ravel()[flat].view(np.uint32).astype(np.int64), kind="stable")
    starts = np.searchsorted(rows, np.arange(len(dist)))
    return cols[order][starts[:, None] + np.arange(k)]


def _nearest(original: _Original, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest columns of O, nearest first, and each row's normaliser."""
    neighbours = np.empty((original.n, k), dtype=np.int64)
    row_max = np.empty(original.n, dtype=np.float32)
    for start, stop in original.blocks():
        raw = original.raw_rows(start, stop)
        dist = np.square(raw, out=raw).astype(np.float32, copy=False)
        row_max[start:stop] = dist.max(axis=1)
        check_normalisers(row_max[start:stop], start)
        dist /= row_max[start:stop, None]
        neighbours[start:stop] = _top_k(dist, k)
    return neighbours, row_max


def check_normalisers(row_max: np.ndarray, start: int = 0) -> None:
    """Each image's largest squared distance must be positive: its distances are divided by it."""
    if not (row_max > 0).all():
        raise EvaluationError(f"image {start + np.flatnonzero(~(row_max > 0))[0]} is at distance 0 (or NaN) from "
                              "all images; re-ranking divides each image's distances by their maximum")


def _reciprocal(neighbours: np.ndarray) -> np.ndarray:
    """mask[i, p]: image i is among the neighbours of its own p-th neighbour."""
    return (neighbours[neighbours] == np.arange(len(neighbours))[:, None, None]).any(axis=-1)


def _expanded_pairs(neighbours: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each image's expanded k-reciprocal set, sorted, without repeats.

    The set is R(i, k1) plus, for each of its members c, R(c, k1/2) when more than two
    thirds of R(c, k1/2) already lie in R(i, k1).
    """
    n, k = neighbours.shape
    recip = _reciprocal(neighbours)
    half_nb = neighbours[:, :half]
    half_recip = _reciprocal(half_nb)
    half_size = half_recip.sum(axis=1)
    codes = [np.flatnonzero(recip) // k * n + neighbours[recip]]
    step = max(1, BLOCK_ELEMENTS // (k * half * k))
    for start in range(0, n, step):
        nb, rc = neighbours[start:start + step], recip[start:start + step]
        cand = half_nb[nb]  # (b, k, half): half-set candidates of each neighbour
        in_set = ((cand[..., None] == nb[:, None, None, :]) & rc[:, None, None, :]).any(axis=-1)
        keep = half_recip[nb]
        overlap = np.count_nonzero(in_set & keep, axis=-1)
        accepted = rc & (3 * overlap > 2 * half_size[nb])
        take = accepted[..., None] & keep
        rows = np.broadcast_to(np.arange(start, start + len(nb))[:, None, None], take.shape)[take]
        codes.append(rows * n + cand[take])
    codes = np.unique(np.concatenate(codes))
    return codes // n, codes % n


def _spans(costs: np.ndarray, budget: int):
    """Consecutive (start, stop) spans of items whose costs add up to about `budget`, one item at least."""
    ends = np.cumsum(costs)
    start = 0
    while start < len(costs):
        stop = max(start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + budget, side="right")))
        yield start, stop
        start = stop


def _jaccard_min_sums(v_query: sparse.csr_matrix, v_gallery: sparse.csc_matrix):
    """sum_l min(V[i, l], V[j, l]) for each query row i and gallery row j: (start, stop, block of rows).

    Only the (i, l, j) where both V[i, l] and V[j, l] are non-zero add anything: each
    non-zero V[i, l] is paired with the non-zeros of gallery column l.
    """
    nq, ng = v_query.shape[0], v_gallery.shape[0]
    col_sizes = np.diff(v_gallery.indptr)
    terms = np.bincount(np.repeat(np.arange(nq), np.diff(v_query.indptr)), col_sizes[v_query.indices], minlength=nq)
    for start, stop in _spans(terms + ng, BLOCK_ELEMENTS):
        block = v_query[start:stop]
        sizes = col_sizes[block.indices]
        at = np.repeat(v_gallery.indptr[block.indices] - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum())
        mins = np.minimum(np.repeat(block.data, sizes), v_gallery.data[at])
        flat = np.repeat(np.repeat(np.arange(stop - start), np.diff(block.indptr)), sizes) * ng + v_gallery.indices[at]
        yield start, stop, np.bincount(flat, mins, minlength=(stop - start) * ng).reshape(-1, ng)


def encodings(neighbours: np.ndarray, k1: int, k2: int, row_max: np.ndarray, raw_pairs) -> sparse.csr_matrix:
    """V: each image's k-reciprocal encoding (rows sum to 1), averaged over its k2 nearest when k2 > 1.

    `neighbours` holds each image's nearest images, nearest first (at least k1 + 1 and
    k2 of them, or all); `raw_pairs(rows, cols)` gives the unsquared distances of pairs.
    """
    n = len(neighbours)
    rows, cols = _expanded_pairs(neighbours[:, :min(k1 + 1, n)], min(int(round(k1 / 2)) + 1, n))
    weights = np.exp(-(_squared(raw_pairs(rows, cols)) / row_max[rows]))
    weights /= np.bincount(rows, weights, minlength=n)[rows].astype(np.float32)
    v = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    if k2 == 1:
        return v
    kq = min(k2, n)
    expand = sparse.csr_matrix((np.full(n * kq, 1 / kq, dtype=np.float32),
                                (np.repeat(np.arange(n), kq), neighbours[:, :kq].ravel())), shape=(n, n))
    return (expand @ v).tocsr()


def final_rows(raw: np.ndarray, row_max: np.ndarray, v_query, v_gallery: sparse.csc_matrix,
               lambda_value: float, out: np.ndarray) -> np.ndarray:
    """Re-ranked distances of some queries: `raw` their unsquared distances to the gallery,
    `row_max` their normalisers, `v_query` their rows of V; `out` may be `raw` itself."""
    for start, stop, overlap in _jaccard_min_sums(v_query, v_gallery):
        similarity = overlap.astype(np.float32)
        similarity /= 2 - similarity  # sum of minima / sum of maxima, as each row of V sums to 1
        block = out[start:stop]
        np.divide(_squared(raw[start:stop]), row_max[start:stop, None], out=block)
        block *= np.float32(lambda_value)
        block += np.float32(1 - lambda_value) * (1 - similarity)
    return out


def check_parameters(k1: int, k2: int, lambda_value: float) -> None:
    if k1 < 1 or k2 < 1:
        raise EvaluationError(f"re-ranking needs k1 >= 1 and k2 >= 1, got k1={k1}, k2={k2}")
    if not 0 <= lambda_value <= 1:
        raise EvaluationError(f"re-ranking needs 0 <= lambda_value <= 1, got {lambda_value}")


def re_rank(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked query x gallery distances (float32, nq x ng): smaller is closer.

    final = (1 - lambda_value) * Jaccard distance of the (k2-query-expanded) k-reciprocal
    encodings + lambda_value * the original distance (squared, normalised per image).
    """
    q_g, q_q, g_g = (np.asarray(d) for d in (q_g_dist, q_q_dist, g_g_dist))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise EvaluationError(f"re_rank needs q_q_dist {(nq, nq)} and g_g_dist {(ng, ng)} to match q_g_dist "
                              f"{q_g.shape}; got {q_q.shape} and {g_g.shape}")
    check_parameters(k1, k2, lambda_value)
    original = _Original(q_g, q_q, g_g)
    neighbours, row_max = _nearest(original, min(max(k1 + 1, k2), original.n))
    v = encodings(neighbours, k1, k2, row_max, original.raw_entries)
    return final_rows(q_g, row_max[:nq], v[:nq], v[nq:].tocsc(), lambda_value, np.empty((nq, ng), dtype=np.float32))
