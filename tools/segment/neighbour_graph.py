"""A locally scaled neighbour graph over text vectors, and diffusion along it.

Sentence embeddings of short messages sit on a sphere where intents differ in
spread: "card not arrived" messages are tight, "fees" messages are broad. A
centroid method in the raw space splits the broad groups and merges the tight
ones. What a neighbour graph buys (the lesson of UMAP, re-derived here with
scikit-learn and scipy only):

* **Local scaling.** Each point's nearest neighbour gets weight 1 and its other
  neighbours decay with a bandwidth chosen *per point*, so that every point has
  the same effective number of neighbours (log2 m) whether its region is dense
  or sparse.
* **Shared neighbours.** An edge is trusted in proportion to how many
  neighbours its two ends share; edges that bridge two groups share few.
* **Fuzzy union.** The graph is made symmetric with a + aᵀ − a·aᵀ: an edge
  exists if either end chose it, and is strongest when both did.
* **Diffusion.** A few rounds of y ← (s·y + (1−s)·P y), renormalised, pull each
  point towards the mean of its graph neighbourhood, which tightens every group
  by the same local measure before a centroid method sees them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tools.core.linalg import normalize_rows


def local_weights(dist: np.ndarray, rounds: int = 48) -> np.ndarray:
    """Neighbour distances (rows ascending) → weights in (0, 1], the nearest at 1.

    Each row gets its own bandwidth b, found by bisection, such that
    Σ exp(−(d − d_nearest) / b) = log2(m) for m neighbours. With fewer than
    three neighbours there is nothing to calibrate: every weight is 1.
    """
    n, m = dist.shape
    if m < 3:
        return np.ones_like(dist)
    gap = np.maximum(dist - dist[:, :1], 0.0)
    target = np.log2(m)
    lo = np.zeros(n)
    hi = np.full(n, max(float(gap.max()), 1e-6) * 16.0 + 1e-6)
    for _ in range(rounds):
        mid = (lo + hi) / 2
        total = np.exp(-gap / np.maximum(mid, 1e-12)[:, None]).sum(axis=1)
        too_wide = total > target
        hi = np.where(too_wide, mid, hi)
        lo = np.where(too_wide, lo, mid)
    return np.exp(-gap / np.maximum((lo + hi) / 2, 1e-12)[:, None])


def shared_neighbour_share(idx: np.ndarray) -> np.ndarray:
    """For each edge i→idx[i, j], the share of {i} ∪ N(i) that is also in {j} ∪ N(j)."""
    n, m = idx.shape
    rows = np.repeat(np.arange(n), m + 1)
    cols = np.concatenate([np.arange(n)[:, None], idx], axis=1).ravel()
    member = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    shared = (member @ member.T).tocsr()  # shared[i, j] = |({i} ∪ N(i)) ∩ ({j} ∪ N(j))|
    values = np.asarray(shared[np.repeat(np.arange(n), m), idx.ravel()]).ravel()
    return (values / (m + 1)).reshape(n, m)


def diffusion_operator(idx: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
    """Row-stochastic P of the symmetric, locally scaled, shared-neighbour graph."""
    n, m = idx.shape
    strength = (local_weights(dist) * shared_neighbour_share(idx)).ravel()
    a = sp.csr_matrix((strength, (np.repeat(np.arange(n), m), idx.ravel())), shape=(n, n))
    at = a.T.tocsr()
    w = (a + at - a.multiply(at)).tocsr()
    degree = np.asarray(w.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0
    return (sp.diags(1.0 / degree) @ w).tocsr()


def diffuse(z: np.ndarray, p: sp.csr_matrix, self_weight: float, rounds: int) -> np.ndarray:
    """``rounds`` lazy steps along P, each renormalised onto the sphere."""
    y = z
    for _ in range(rounds):
        y = normalize_rows(self_weight * y + (1.0 - self_weight) * (p @ y))
    return y.astype(np.float32)


def extend(zq: np.ndarray, dist: np.ndarray, idx: np.ndarray, y_ref: np.ndarray, self_weight: float) -> np.ndarray:
    """Diffused vectors for points outside the graph: each leans on its reference neighbours' diffused vectors."""
    w = local_weights(dist)
    w = w / w.sum(axis=1, keepdims=True)
    pulled = np.einsum("nm,nmd->nd", w, y_ref[idx])
    return normalize_rows(self_weight * zq + (1.0 - self_weight) * pulled).astype(np.float32)
