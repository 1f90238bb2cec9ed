"""The reference recommenders the evaluation scores segscope against, on a binary user x item matrix.

* Pop: items by how many users interacted with them.
* ItemKNN: cosine item-item similarity of the binary columns, full
  neighbourhood, zero diagonal; a user's scores are ``x @ S``.
* EASE (Steck 2019): ``B = I - P / diag(P)`` with ``P = (X^T X + λI)^-1``,
  so ``diag(B) = 0``; scores are ``x @ B``.

EASE's dense item x item system costs O(n³) time and n² memory, so it is solved
on at most ``max_items`` of the most interacted items (default 10,000: about
0.4 GB in float32, and one solve takes about a minute on two cores). The other
items get the row's lowest EASE score, so they surface only through the other
signals of the hybrid. When there are far fewer users than items the solve goes
through the users' side (Woodbury identity): an eigendecomposition of the
small ``X X^T`` that serves every λ of a search at once. Otherwise each λ
costs one solve, so a λ search on more than ``EASE_TUNE_ITEMS`` items is run on
that many of the most interacted ones (λ tracks the scale of the counts, which
the head carries) and only the chosen λ is solved on the full head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from tools.core.errors import ParameterError
from tools.recommend.ranking import (
    CHUNK_BYTES,
    chunk_rows,
    hit_rate,
    ndcg,
    rankable_mask,
    target_ranks,
)

EASE_L2_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
EASE_MAX_ITEMS = 10_000
EASE_TUNE_ITEMS = 4_000
DENSE_ITEMS = 12_000  # a dense item x item float32 matrix this size is ~0.55 GB


def popularity(csr: sp.csr_matrix) -> np.ndarray:
    """Users per item (float64, one entry per column)."""
    return np.bincount(csr.indices, minlength=csr.shape[1]).astype(np.float64)


def item_gram(csr: sp.csr_matrix, dense: bool) -> np.ndarray | sp.csr_matrix:
    """``X^T X`` of the binary matrix: co-occurrence counts per item pair (float32).

    Dense output is built a block of item columns at a time (sparse x dense is
    much faster than sparse x sparse when most item pairs co-occur).
    """
    x = csr.astype(np.float32)
    x.data[:] = 1.0
    if not dense:
        return (x.T @ x).tocsr()
    n_users, n_items = x.shape
    gram = np.empty((n_items, n_items), dtype=np.float32)
    xt = x.T.tocsr()
    xc = x.tocsc()
    width = max(1, min(n_items, CHUNK_BYTES // max(1, 4 * n_users)))
    for start in range(0, n_items, width):
        stop = min(start + width, n_items)
        gram[:, start:stop] = xt @ xc[:, start:stop].toarray()
    return gram


def gram_is_dense(csr: sp.csr_matrix, max_items: int = DENSE_ITEMS) -> bool:
    """Whether ``X^T X`` is better held dense: few enough items, and most item pairs likely co-occur."""
    n_items = csr.shape[1]
    pairs = float((np.diff(csr.indptr).astype(np.float64) ** 2).sum())  # upper bound on nnz(X^T X)
    return n_items <= max_items and pairs >= 0.05 * n_items * n_items


def cosine_item_similarity(csr: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
    """Cosine similarity between the binary item columns, zero diagonal, float32 (dense when that is cheaper)."""
    dense = gram_is_dense(csr)
    gram = item_gram(csr, dense)
    diag = gram.diagonal().astype(np.float64)
    inv = np.divide(1.0, np.sqrt(diag), out=np.zeros_like(diag), where=diag > 0).astype(np.float32)
    if dense:
        gram *= inv[:, None]
        gram *= inv[None, :]
        np.fill_diagonal(gram, 0.0)
        return gram
    scale = sp.diags(inv)
    sim = (scale @ gram @ scale).tocsr()
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    return sim.astype(np.float32)


def apply_similarity(rows: sp.csr_matrix, sim: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """``rows @ sim`` as dense float32, whichever form ``sim`` is held in."""
    out = rows.astype(np.float32) @ sim
    return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class EaseWeights:
    """A solved EASE model: scores for user rows, and single columns of ``B`` for explanations."""

    l2: float
    n_items: int
    head: np.ndarray  # the columns EASE covers (ascending)
    dense: np.ndarray | None  # B over head x head (primal solve)
    factors: np.ndarray | None  # W = X_h^T Q, head x rank (dual solve)
    inv_eig: np.ndarray | None  # 1 / (eigenvalues + λ)
    diag_p: np.ndarray | None  # diag(P) over head (dual solve)

    def _head_rows(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        return rows if len(self.head) == self.n_items else rows[:, self.head]

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        """``rows @ B`` as dense float32 (rows may carry weights); columns outside the head get the row minimum."""
        xh = self._head_rows(rows).astype(np.float32)
        if self.dense is not None:
            head_scores = np.asarray(xh @ self.dense, dtype=np.float32)
        else:
            xd = xh.toarray()
            xp = (xd - ((xh @ self.factors) * self.inv_eig) @ self.factors.T) / self.l2
            head_scores = (xd - xp / self.diag_p).astype(np.float32)
        if len(self.head) == self.n_items:
            return head_scores
        out = np.empty((rows.shape[0], self.n_items), dtype=np.float32)
        out[:] = head_scores.min(axis=1, initial=0.0, keepdims=True)
        out[:, self.head] = head_scores
        return out

    def column(self, item: int) -> np.ndarray:
        """``B[:, item]`` over all items: how much each history item adds to ``item``'s score."""
        out = np.zeros(self.n_items, dtype=np.float32)
        pos = np.searchsorted(self.head, item)
        if pos >= len(self.head) or self.head[pos] != item:
            return out
        if self.dense is not None:
            out[self.head] = self.dense[:, pos]
        else:
            p_col = -(self.factors @ (self.inv_eig * self.factors[pos])) / self.l2
            p_col[pos] += 1.0 / self.l2
            col = -p_col / self.diag_p[pos]
            col[pos] = 0.0
            out[self.head] = col
        return out


class EaseSolver:
    """``X^T X`` of one matrix, prepared once and solved for any λ.

    Dual (at most half as many users as head items): eigendecompose ``X X^T`` once; every λ
    is then cheap. Primal: keep the Gram matrix and invert ``G + λI`` per λ.
    """

    def __init__(self, csr: sp.csr_matrix, max_items: int = EASE_MAX_ITEMS) -> None:
        if max_items < 1:
            raise ParameterError("the EASE item cap must be at least 1", "use a positive max_items")
        counts = popularity(csr)
        present = np.flatnonzero(counts > 0)
        if len(present) > max_items:
            # Most interacted first; among equal counts the earlier column wins.
            order = np.lexsort((present, -counts[present]))
            present = np.sort(present[order[:max_items]])
        self.n_items = csr.shape[1]
        self.head = present
        xh = csr[:, present].astype(np.float64)
        xh.data[:] = 1.0
        xh = xh[np.diff(xh.indptr) > 0]
        # An eigendecomposition costs ~10 inversions of the same size: worth it only on a much smaller side.
        self.dual = 2 * xh.shape[0] <= len(present)
        if self.dual:
            eig, q = sla.eigh(item_gram(xh.T.tocsr(), dense=True).astype(np.float64), check_finite=False)
            self.eig = np.clip(eig, 0.0, None)
            self.factors = np.asarray(xh.T @ q)
            self.gram = None
        else:
            # float32 halves memory; float64 where it is cheap, for accuracy.
            dtype = np.float64 if len(present) <= 4000 else np.float32
            self.gram = item_gram(xh, dense=True).astype(dtype, copy=False)

    @staticmethod
    def prefers_dual(csr: sp.csr_matrix, max_items: int = EASE_MAX_ITEMS) -> bool:
        """Whether :class:`EaseSolver` would most likely solve through the users' side (cheap for many λ)."""
        n_head = min(int(np.count_nonzero(np.bincount(csr.indices, minlength=csr.shape[1]))), max_items)
        return 2 * int(np.count_nonzero(np.diff(csr.indptr))) <= n_head

    def weights(self, l2: float) -> EaseWeights:
        """The EASE model for regularisation ``l2``."""
        if not l2 > 0:
            raise ParameterError(f"EASE needs a positive λ, got {l2}", "pick λ from 50–2000")
        common = dict(l2=float(l2), n_items=self.n_items, head=self.head)
        if not self.dual:
            g = self.gram.copy()
            g[np.diag_indices_from(g)] += l2
            p = sla.inv(g, overwrite_a=True, check_finite=False)
            # B = -P / diag(P) off the diagonal, 0 on it; done in place to hold one n² array.
            p /= -np.diag(p).copy()[None, :]
            np.fill_diagonal(p, 0.0)
            return EaseWeights(**common, dense=p.astype(np.float32, copy=False), factors=None, inv_eig=None, diag_p=None)
        inv_eig = 1.0 / (self.eig + l2)
        diag_p = (1.0 - (self.factors**2) @ inv_eig) / l2
        return EaseWeights(
            **common,
            dense=None,
            factors=self.factors.astype(np.float32),
            inv_eig=inv_eig.astype(np.float32),
            diag_p=diag_p.astype(np.float32),
        )


def evaluate_scorer(
    score, csr: sp.csr_matrix, users: np.ndarray, targets: np.ndarray, available: np.ndarray | None, k: int = 10
) -> tuple[float, float, np.ndarray]:
    """HR@k, NDCG@k and ranks of ``targets`` for ``score(rows_slice_of_users) -> dense scores``, in user chunks."""
    ranks = np.zeros(len(users), dtype=np.int64)
    for part in chunk_rows(len(users), csr.shape[1], n_arrays=4):
        rows = csr[users[part]]
        scores = score(users[part], rows)
        ranks[part] = target_ranks(scores, rankable_mask(rows, available), targets[part])
    return hit_rate(ranks, k), ndcg(ranks, k), ranks


def tune_ease_l2(
    solver: EaseSolver,
    csr: sp.csr_matrix,
    users: np.ndarray,
    targets: np.ndarray,
    available: np.ndarray | None,
    grid: tuple[float, ...] = EASE_L2_GRID,
    k: int = 10,
) -> tuple[EaseWeights, dict[float, tuple[float, float]]]:
    """Pick λ from ``grid`` by NDCG@k (then HR@k, then the smaller λ) on a validation split.

    ``solver`` and ``csr`` are the validation-training matrix; ``users``/``targets``
    its held-out rows. Returns the best weights and every λ's (HR, NDCG).
    """
    if not grid:
        raise ParameterError("the EASE λ grid is empty", "give at least one λ")
    results: dict[float, tuple[float, float]] = {}
    best, best_key = None, None
    for l2 in sorted(grid):
        weights = solver.weights(l2)
        hr, nd, _ = evaluate_scorer(lambda _u, rows, w=weights: w.score(rows), csr, users, targets, available, k)
        results[float(l2)] = (hr, nd)
        if best_key is None or (nd, hr) > best_key:
            best, best_key = weights, (nd, hr)
    return best, results
