"""How useful a segmentation is: does membership predict what each user does next?

The protocol (BENCHMARKS.md §5) scores a segmentation by *segment means*: each
segment's mean target is learned on a random half of the users and predicts the
other half (a segment unseen in the learning half gets that half's global mean);
both halves are scored each way and the median over ``halvings`` random
halvings is reported. A segment of three users cannot overfit: its mean is
learned from other people than the ones it is scored on.

Two targets per user: whether they are active again in the holdout period (0/1,
scored by ROC AUC) and log(1 + what they spend there) (scored by R²).
The benchmark (bench/usefulness.py) and the choice of k and depth
(tools/segment/hierarchy.py) use the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Usefulness:
    """Median held-out AUC (purchase) and R² (log spend) of one segmentation, with their spread."""

    auc: float
    r2: float
    auc_iqr: float  # interquartile range over the 2 × halvings scores
    r2_iqr: float
    n_scores: int

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def segment_means(labels_fit: np.ndarray, target_fit: np.ndarray, labels_score: np.ndarray) -> np.ndarray:
    """Predict ``labels_score`` rows by the mean target of their segment in the fit rows (unknown: global mean)."""
    labels_fit = np.asarray(labels_fit)
    target_fit = np.asarray(target_fit, dtype=np.float64)
    ids, codes = np.unique(labels_fit, return_inverse=True)
    means = np.bincount(codes, weights=target_fit, minlength=len(ids)) / np.bincount(codes, minlength=len(ids))
    pos = np.searchsorted(ids, labels_score)
    pos = np.clip(pos, 0, len(ids) - 1)
    known = ids[pos] == labels_score
    return np.where(known, means[pos], target_fit.mean())


def auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC with ties counted half (Mann–Whitney); NaN when only one class is present."""
    from scipy.stats import rankdata

    truth = np.asarray(truth).astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def r2(truth: np.ndarray, pred: np.ndarray) -> float:
    """1 − SSE / SST around the scored rows' own mean; NaN when they are all equal."""
    truth = np.asarray(truth, dtype=np.float64)
    sst = float(((truth - truth.mean()) ** 2).sum())
    if sst <= 1e-12:
        return float("nan")
    return 1.0 - float(((truth - np.asarray(pred, dtype=np.float64)) ** 2).sum()) / sst


def halvings(n: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` random boolean masks, each marking half of ``n`` rows (the other half is ~mask)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        mask = np.zeros(n, dtype=bool)
        mask[rng.permutation(n)[: n // 2]] = True
        out.append(mask)
    return out


def usefulness_scores(
    labels: np.ndarray, bought: np.ndarray, log_spend: np.ndarray, n_halvings: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every held-out AUC and R² (2 × ``n_halvings`` each, NaN where undefined), in a fixed order for a seed.

    The same seed gives the same halvings whatever the labels, so two
    segmentations' scores can be compared halving by halving.
    """
    labels = np.asarray(labels)
    bought = np.asarray(bought, dtype=np.float64)
    log_spend = np.asarray(log_spend, dtype=np.float64)
    aucs: list[float] = []
    r2s: list[float] = []
    for mask in halvings(len(labels), n_halvings, seed):
        for fit, score in ((mask, ~mask), (~mask, mask)):
            aucs.append(auc(bought[score], segment_means(labels[fit], bought[fit], labels[score])))
            r2s.append(r2(log_spend[score], segment_means(labels[fit], log_spend[fit], labels[score])))
    return np.asarray(aucs), np.asarray(r2s)


def explained_share(labels: np.ndarray, x: np.ndarray, n_halvings: int = 5, seed: int = 0) -> float:
    """Held-out share of the variance of the columns of ``x`` that segment means explain (median over halvings)."""
    labels = np.asarray(labels)
    x = np.asarray(x, dtype=np.float64)
    out = []
    for mask in halvings(len(labels), n_halvings, seed):
        for fit, score in ((mask, ~mask), (~mask, mask)):
            pred = np.column_stack([segment_means(labels[fit], x[fit, j], labels[score]) for j in range(x.shape[1])])
            sst = ((x[score] - x[score].mean(axis=0)) ** 2).sum()
            out.append(1.0 - ((x[score] - pred) ** 2).sum() / sst if sst > 1e-12 else np.nan)
    return float(np.nanmedian(out)) if np.isfinite(out).any() else float("nan")


def usefulness(labels: np.ndarray, bought: np.ndarray, log_spend: np.ndarray, n_halvings: int = 10, seed: int = 0) -> Usefulness:
    """Held-out AUC of ``bought`` and R² of ``log_spend`` predicted by segment means (module docstring)."""
    a, r = usefulness_scores(labels, bought, log_spend, n_halvings, seed)
    a, r = a[np.isfinite(a)], r[np.isfinite(r)]

    def med_iqr(v: np.ndarray) -> tuple[float, float]:
        if not len(v):
            return float("nan"), float("nan")
        q1, q2, q3 = np.percentile(v, [25, 50, 75])
        return float(q2), float(q3 - q1)

    (am, ai), (rm, ri) = med_iqr(a), med_iqr(r)
    return Usefulness(am, rm, ai, ri, len(a))
