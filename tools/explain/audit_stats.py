"""The statistics of the fairness audit: association, per-cell tests, effect sizes, permutation p-values.

- Association between segment membership and an attribute: Cramér's V with the
  bias correction of Bergsma (2013, J. Korean Stat. Soc. 42:323-328), which removes
  the upward bias the plain V has on small or sparse tables (the plain V of two
  independent variables is above 0; the corrected one is near 0).
- Its p-value by permutation: the attribute's values are shuffled across users
  (segment sizes and group sizes stay fixed), so no chi-squared approximation is
  needed for small cells. p = (1 + #{shuffled statistic >= observed}) / (1 + B).
- A segment's share of a group against the population: the exact hypergeometric
  test (a segment is a draw without replacement from the population), two-sided,
  Holm-adjusted over every segment × group cell of the attribute.
- Feature effect sizes: eta squared, the share of a feature's variance that lies
  between groups (0.01 small, 0.06 medium, 0.14 large, after Cohen 1988).

Pure numpy/scipy on integer codes: ``segments`` and ``groups`` are 0..n-1 per user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Association:
    """Cramér's V of a segments × groups table, and its permutation p-value."""

    cramers_v: float  # bias-corrected (Bergsma 2013)
    cramers_v_uncorrected: float
    chi2: float
    dof: int
    p_value: float
    permutations: int


def contingency(segments: np.ndarray, groups: np.ndarray, n_segments: int, n_groups: int) -> np.ndarray:
    """Counts of users per (segment, group): int64 ``n_segments × n_groups``."""
    flat = np.bincount(segments * n_groups + groups, minlength=n_segments * n_groups)
    return flat.reshape(n_segments, n_groups)


def _chi2(table: np.ndarray, expected: np.ndarray) -> float:
    ok = expected > 0
    return float((((table - expected) ** 2)[ok] / expected[ok]).sum())


def cramers_v(table: np.ndarray) -> tuple[float, float, float, int]:
    """(bias-corrected V, plain V, chi², degrees of freedom) of a contingency table; empty rows/columns are dropped."""
    table = np.asarray(table, dtype=np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, k = table.shape
    n = float(table.sum())
    if r < 2 or k < 2 or n < 2:
        return 0.0, 0.0, 0.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = _chi2(table, expected)
    phi2 = chi2 / n
    plain = float(np.sqrt(phi2 / min(r - 1, k - 1)))
    phi2_corrected = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corrected = r - (r - 1) ** 2 / (n - 1)
    k_corrected = k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corrected - 1, r_corrected - 1)
    corrected = float(np.sqrt(phi2_corrected / denominator)) if denominator > 0 else 0.0
    return corrected, plain, chi2, (r - 1) * (k - 1)


def association(segments: np.ndarray, groups: np.ndarray, n_segments: int, n_groups: int,
                permutations: int, rng: np.random.Generator) -> Association:
    """Cramér's V between segment and group, with a permutation p-value over ``permutations`` shuffles."""
    table = contingency(segments, groups, n_segments, n_groups)
    corrected, plain, chi2, dof = cramers_v(table)
    n = len(segments)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / max(n, 1)
    # With fixed margins V is a monotone function of chi², so chi² is the statistic shuffled.
    at_least = 0
    threshold = chi2 * (1 - 1e-9)  # equal statistics (ties) count as at least as extreme
    for _ in range(permutations):
        shuffled = contingency(segments, rng.permutation(groups), n_segments, n_groups)
        at_least += _chi2(shuffled, expected) >= threshold
    p = (1 + at_least) / (1 + permutations) if dof else 1.0
    return Association(corrected, plain, chi2, dof, float(p), permutations)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise), in the input's order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def cell_p_values(table: np.ndarray) -> np.ndarray:
    """Two-sided exact p-value of each cell's count under the hypergeometric law (not adjusted)."""
    from scipy.stats import hypergeom

    table = np.asarray(table, dtype=np.int64)
    n = int(table.sum())
    rows = np.broadcast_to(table.sum(axis=1)[:, None], table.shape)  # the segment's size: the draws
    cols = np.broadcast_to(table.sum(axis=0)[None, :], table.shape)  # the group's size in the population
    above = hypergeom.sf(table - 1, n, cols, rows)  # P(X >= x)
    below = hypergeom.cdf(table, n, cols, rows)  # P(X <= x)
    out = np.minimum(1.0, 2.0 * np.minimum(above, below))
    return np.where((rows == 0) | (cols == 0), 1.0, out)


def group_means(x: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-group column means ``n_groups × d``, per-group counts) of ``x`` (``n × d``)."""
    import scipy.sparse as sp

    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes)))
    sums = np.asarray(onehot @ x)
    return sums / np.maximum(counts, 1)[:, None], counts


def eta_squared(x: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per column of ``x``: between-group sum of squares ÷ total sum of squares (0 for a constant column)."""
    means, counts = group_means(x, codes, n_groups)
    overall = x.mean(axis=0)
    between = (counts[:, None] * (means - overall) ** 2).sum(axis=0)
    total = ((x - overall) ** 2).sum(axis=0)
    return np.where(total > 1e-12, between / np.maximum(total, 1e-12), 0.0)


def block_eta_squared(x: np.ndarray, codes: np.ndarray, n_groups: int) -> float:
    """Eta squared of a block of columns taken together (trace of between ÷ trace of total): the text profile."""
    means, counts = group_means(x, codes, n_groups)
    overall = x.mean(axis=0)
    between = float((counts[:, None] * (means - overall) ** 2).sum())
    total = float(((x - overall) ** 2).sum())
    return between / total if total > 1e-12 else 0.0


def group_difference_p(values: np.ndarray, codes: np.ndarray, n_groups: int, permutations: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (its mean minus the others' mean, permutation p-value of that difference, two-sided; not adjusted)."""
    values = np.asarray(values, dtype=np.float64)
    n, total = len(values), float(values.sum())

    def differences(labels: np.ndarray) -> np.ndarray:
        sums = np.bincount(labels, weights=values, minlength=n_groups)
        counts = np.bincount(labels, minlength=n_groups).astype(np.float64)
        rest = np.maximum(n - counts, 1)
        return sums / np.maximum(counts, 1) - (total - sums) / rest

    observed = differences(codes)
    at_least = np.zeros(n_groups)
    threshold = np.abs(observed) * (1 - 1e-9)
    for _ in range(permutations):
        at_least += np.abs(differences(rng.permutation(codes))) >= threshold
    return observed, (1 + at_least) / (1 + permutations)
