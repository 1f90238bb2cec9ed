"""Ranking over a user's unseen items, in chunks of users: normalisation, top-k, target ranks, HR and NDCG.

One rule for ties everywhere: of two equal scores, the item earlier in the
matrix's column order ranks first, so results never depend on sort internals.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp

# Dense per-chunk working set (users x items x arrays x 4 bytes) stays under this.
CHUNK_BYTES = 256 * 2**20


def chunk_rows(n_rows: int, n_items: int, n_arrays: int = 4, budget: int = CHUNK_BYTES) -> Iterator[slice]:
    """Slices of rows whose dense ``rows x n_items`` float32 arrays (``n_arrays`` of them) fit ``budget``."""
    size = max(1, min(n_rows, budget // max(1, 4 * n_items * n_arrays)))
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))


def rankable_mask(seen: sp.csr_matrix, available: np.ndarray | None = None) -> np.ndarray:
    """Dense bool ``rows x items``: True where an item may be recommended (not seen, and available)."""
    mask = np.ones(seen.shape, dtype=bool)
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    mask[rows, seen.indices] = False
    if available is not None:
        mask &= available[None, :]
    return mask


def zscore_rows(scores: np.ndarray, rankable: np.ndarray) -> np.ndarray:
    """Per-row z-score over the rankable entries (float32); other entries become 0, flat rows all 0.

    Putting components on one scale per user is what lets a single set of blend
    weights serve users with long and short histories alike.
    """
    counts = np.maximum(rankable.sum(axis=1, keepdims=True), 1)
    masked = np.where(rankable, scores, 0.0)
    mean = masked.sum(axis=1, keepdims=True, dtype=np.float64) / counts
    centred = np.where(rankable, scores - mean, 0.0)
    std = np.sqrt((centred * centred).sum(axis=1, keepdims=True, dtype=np.float64) / counts)
    flat = std < 1e-12
    out = centred / np.where(flat, 1.0, std)
    out[np.broadcast_to(flat, out.shape)] = 0.0
    return out.astype(np.float32, copy=False)


def target_ranks(scores: np.ndarray, rankable: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target column among its rankable items (ties: lower column first)."""
    rows = np.arange(scores.shape[0])
    target = scores[rows, targets][:, None]
    cols = np.arange(scores.shape[1])[None, :]
    above = rankable & ((scores > target) | ((scores == target) & (cols < targets[:, None])))
    return above.sum(axis=1)


def hit_rate(ranks: np.ndarray, k: int = 10) -> float:
    """Share of rows whose target is in the top ``k``."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int = 10) -> float:
    """Mean of 1/log2(rank+2) over rows whose target is in the top ``k`` (0 otherwise); one relevant item per row."""
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)
    return float(gains.mean())


def top_k(scores: np.ndarray, rankable: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rankable columns per row, best first (ties: lower column first).

    Returns (columns, scores), both ``rows x k``; a row with fewer than ``k``
    rankable items is padded with column -1 and score -inf.
    """
    n_rows, n_cols = scores.shape
    k = max(0, min(k, n_cols))
    if k == 0 or n_rows == 0:
        return np.zeros((n_rows, 0), dtype=np.int64), np.zeros((n_rows, 0), dtype=np.float32)
    s = np.where(rankable, scores, -np.inf)
    kth = np.partition(s, n_cols - k, axis=1)[:, n_cols - k][:, None]
    above = s > kth
    need = k - above.sum(axis=1, keepdims=True)
    equal = s == kth
    chosen = above | (equal & (np.cumsum(equal, axis=1) <= need))
    rows, cols = np.nonzero(chosen)  # row-major: exactly k per row, columns ascending
    cols = cols.reshape(n_rows, k)
    vals = s[rows, cols.ravel()].reshape(n_rows, k)
    # Columns are ascending within a row, so a stable sort keeps "lower column first" on ties.
    order = np.argsort(-vals, axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    cols = np.where(np.isneginf(vals), -1, cols)
    return cols.astype(np.int64), vals.astype(np.float32)

