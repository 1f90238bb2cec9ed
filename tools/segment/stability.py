"""How reproducible a k-segment partition is: prediction strength and ARI between halves.

Prediction strength (Tibshirani & Walther, 2005): cluster two random halves of
the users separately; for every segment found in the second half, the share of
its pairs of members that the first half's segments also put together; the
partition's strength is the weakest segment's share. A k whose segments are
really in the data scores near 1; a k that cuts a continuum where it likes
scores low, because the two halves cut it in different places. The ARI between
the two halves' labels of the second half is reported beside it.

Each half is clustered the way the model clusters (Ward on the smoothed
profiles, then KMeans from the Ward centroids), so what is measured is the
reproducibility of what a run would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stability:
    k: int
    prediction_strength: float  # mean over repeats
    prediction_strength_se: float  # its standard error
    ari: float  # mean ARI between the halves' labels


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Row index of the nearest centre for every row of ``x``."""
    return np.argmin((centres**2).sum(axis=1)[None, :] - 2.0 * x @ centres.T, axis=1)


def lloyd(x: np.ndarray, centres: np.ndarray, max_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """KMeans iterations from ``centres`` until no point moves; an emptied centre stays where it was.

    Plain numpy: these fits are small and many, and scikit-learn's per-call
    thread start-up costs more than the arithmetic here.
    """
    centres = np.asarray(centres, dtype=np.float64).copy()
    labels = nearest(x, centres)
    for _ in range(max_iter):
        for c in range(len(centres)):
            members = labels == c
            if members.any():
                centres[c] = x[members].mean(axis=0)
        moved = nearest(x, centres)
        if np.array_equal(moved, labels):
            break
        labels = moved
    return labels, centres


def _cluster(x: np.ndarray, tree: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.cluster.hierarchy import fcluster

    cut = fcluster(tree, k, criterion="maxclust") - 1
    centres = np.vstack([x[cut == c].mean(axis=0) for c in np.unique(cut)])
    return lloyd(x, centres)


def prediction_strength(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The weakest segment's share of member pairs that ``predicted`` also puts together (segments of 1 skipped)."""
    shares = []
    for c in np.unique(labels):
        members = predicted[labels == c]
        m = len(members)
        if m < 2:
            continue
        counts = np.bincount(members).astype(np.float64)
        shares.append(float((counts * (counts - 1)).sum() / (m * (m - 1))))
    return min(shares) if shares else float("nan")


MAX_DIMS = 50


def _reduce(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` on its first MAX_DIMS principal axes (from a sample): Ward and KMeans see nearly the same distances, faster."""
    if x.shape[1] <= MAX_DIMS:
        return x.astype(np.float64)
    sample = x[rng.choice(len(x), size=min(len(x), 5000), replace=False)].astype(np.float64)
    mean = sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    return (x.astype(np.float64) - mean) @ vt[:MAX_DIMS].T


def partition_stability(x: np.ndarray, ks: list[int], seed: int, repeats: int = 8, half: int = 1500) -> list[Stability]:
    """Prediction strength and half-vs-half ARI of each k in ``ks`` over ``repeats`` random halvings of ``x``."""
    from scipy.cluster.hierarchy import linkage
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    n = len(x)
    size = min(half, n // 2)
    x = _reduce(x[rng.permutation(n)[: min(n, 20 * half)]], rng) if n > 20 * half else _reduce(x, rng)
    n = len(x)
    ps: dict[int, list[float]] = {k: [] for k in ks}
    aris: dict[int, list[float]] = {k: [] for k in ks}
    for rep in range(repeats):
        order = rng.permutation(n)
        a, b = x[order[:size]], x[order[size : 2 * size]]
        tree_a, tree_b = linkage(a, method="ward"), linkage(b, method="ward")
        for k in ks:
            if k >= size:
                continue
            _, centres_a = _cluster(a, tree_a, k)
            labels_b, _ = _cluster(b, tree_b, k)
            predicted = nearest(b, centres_a)
            ps[k].append(prediction_strength(labels_b, predicted))
            aris[k].append(float(adjusted_rand_score(labels_b, predicted)))
    out = []
    for k in ks:
        values = np.asarray([v for v in ps[k] if np.isfinite(v)])
        if not len(values):
            continue
        se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
        out.append(Stability(k, float(values.mean()), se, float(np.mean(aris[k]))))
    return out


TOLERANCE = 0.05
# Tibshirani & Walther (2005): a k whose prediction strength is under 0.8-0.9 is not really in the
# data; when no k >= 2 reaches 0.8 the users form no reproducible groups (k = 1, in their terms).
REPRODUCIBLE = 0.8


def tolerance(best: Stability) -> float:
    """How far below the strongest k's prediction strength still counts as "as reproducible": 0.05, or two standard errors if more."""
    return max(TOLERANCE, 2 * best.prediction_strength_se)


def most_stable_k(stabilities: list[Stability]) -> Stability:
    """The largest k whose prediction strength is within :func:`tolerance` of the strongest k's.

    The strongest partition is the one the data reproduces best; a larger k that
    is about as reproducible says more, so it wins. Planted groups reproduce at
    0.95 to 1 whether two of them are merged or not (the weakest segment of a
    small sample scores lowest), while cutting a group where the data has no gap
    drops the strength by 0.08 or more.
    """
    best = max(stabilities, key=lambda s: (s.prediction_strength, -s.k))
    floor = best.prediction_strength - tolerance(best)
    return max((s for s in stabilities if s.prediction_strength >= floor), key=lambda s: s.k)


def reproducible(stabilities: list[Stability]) -> bool:
    """Whether any k reaches prediction strength :data:`REPRODUCIBLE` (else the profiles hold no groups a new sample would find again)."""
    return any(s.prediction_strength >= REPRODUCIBLE for s in stabilities)
