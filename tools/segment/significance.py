"""Is a segment's trait real? The tests, intervals and false-discovery control behind every cited trait.

For each (segment, feature) the members' values are compared with the other rows of a pool:
everyone else, or, for a sub-segment against its parent, the rest of the parent segment.

* **Welch's t-test** on the difference in means, where the t approximation can be trusted.
  Cochran's rule decides: the smaller group has at least ``COCHRAN_FACTOR`` x G1² values, G1 being
  the skewness of the pooled values (a share most people have at 0, or spend with a long tail,
  needs many values before a mean is near normal).
* Otherwise (heavy tails and a small group) the **Mann–Whitney U test** (normal approximation with
  the tie correction and a continuity correction), which assumes nothing about the tails. Its shift
  must point the same way as the means for the trait to count (``consistent``): a segment whose
  mean is lifted by a few extreme members while most of them sit below the rest is not "high-spend".
* Fewer than ``MIN_TEST_N`` values on either side: no test, and the trait is never cited.

The 95% interval is of the segment's mean: Student's t interval, or, for members too skewed for it
by the same rule and no more than ``BOOTSTRAP_MAX_N`` of them, a percentile bootstrap interval
(``BOOTSTRAP_DRAWS`` resamples, seeded by the values themselves, so a run repeats exactly and the same
members get the same interval whichever pool they are compared within).

The p-values of every test of a run (every segment, every feature, against everyone and against
the parent) are adjusted together by Benjamini–Hochberg (:func:`benjamini_hochberg`); a trait is
significant when its q-value is below ``ALPHA`` and its test is consistent. Only significant
traits are named, described, explained or shown as defining traits (:func:`is_cited`).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

ALPHA = 0.05  # false discovery rate over all the traits of a run
MIN_TEST_N = 5  # values needed on each side before a difference is tested at all
COCHRAN_FACTOR = 25.0  # Welch when the smaller group has at least this x skewness² values (Cochran's rule)
BOOTSTRAP_DRAWS = 999
BOOTSTRAP_MAX_N = 1000  # larger skewed groups get the t interval: resampling them costs much and adds little
SEED = 0

WELCH, MANN_WHITNEY, UNTESTED = "welch", "mann-whitney", "untested"


@dataclass(frozen=True, eq=False)
class GroupTests:
    """Per column of a pool: the members' count, mean and 95% interval, and the test of members vs the rest.

    ``p`` is NaN where nothing was tested; ``consistent`` is False where a rank test's shift points
    against the difference in means.
    """

    n: np.ndarray
    n_other: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p: np.ndarray
    method: tuple[str, ...]
    consistent: np.ndarray


def _skewness(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|G1| per column over the rows in ``mask`` (0 for a constant or empty column)."""
    n = mask.sum(axis=0)
    safe = np.maximum(n, 1)
    mean = np.where(mask, values, 0.0).sum(axis=0) / safe
    dev = np.where(mask, values - mean, 0.0)
    m2 = (dev**2).sum(axis=0) / safe
    m3 = (dev**3).sum(axis=0) / safe
    ok = m2 > 1e-300
    return np.abs(np.where(ok, m3 / np.where(ok, m2, 1.0) ** 1.5, 0.0))


class Pool:
    """The rows segments are compared within (everyone, or a parent's members); column ranks are made once, when needed."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.finite = np.isfinite(self.values)
        self.skew = _skewness(self.values, self.finite)
        self._ranks: np.ndarray | None = None
        self._ties: np.ndarray | None = None

    def _rank_columns(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ranks is None:
            from scipy.stats import rankdata

            self._ranks = np.nan_to_num(rankdata(np.where(self.finite, self.values, np.nan), axis=0, nan_policy="omit"))
            ties = np.zeros(self.values.shape[1])
            for j in range(self.values.shape[1]):
                _, counts = np.unique(self.values[self.finite[:, j], j], return_counts=True)
                ties[j] = float((counts.astype(np.float64) ** 3 - counts).sum())
            self._ties = ties
        assert self._ties is not None
        return self._ranks, self._ties

    def compare(self, members: np.ndarray, intervals: bool = True) -> GroupTests:
        """Members (a boolean mask over the pool's rows) against the pool's other rows, column by column
        (``intervals=False``: NaN intervals, for a caller that has the members' intervals already)."""
        from scipy import stats

        x, finite = self.values, self.finite
        members = np.asarray(members, dtype=bool)
        in_m, in_o = finite & members[:, None], finite & ~members[:, None]
        n1, n2 = in_m.sum(axis=0).astype(np.float64), in_o.sum(axis=0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            m1 = np.where(in_m, x, 0.0).sum(axis=0) / n1
            m2 = np.where(in_o, x, 0.0).sum(axis=0) / n2
            v1 = (np.where(in_m, x - m1, 0.0) ** 2).sum(axis=0) / (n1 - 1)
            v2 = (np.where(in_o, x - m2, 0.0) ** 2).sum(axis=0) / (n2 - 1)
            a, b = v1 / n1, v2 / n2
            se = np.sqrt(a + b)
            t = (m1 - m2) / se
            df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
            p_welch = 2 * stats.t.sf(np.abs(t), df)
        # Both groups constant: the difference is exact (p 0) or absent (p 1).
        p_welch = np.where(se > 0, p_welch, np.where(np.abs(m1 - m2) > 1e-12, 0.0, 1.0))
        testable = (n1 >= MIN_TEST_N) & (n2 >= MIN_TEST_N)
        welch = np.minimum(n1, n2) >= COCHRAN_FACTOR * self.skew**2
        p = np.where(welch, p_welch, np.nan)
        consistent = np.ones(x.shape[1], dtype=bool)
        rank_cols = np.flatnonzero(testable & ~welch)
        if len(rank_cols):
            ranks, ties = self._rank_columns()
            r1 = np.where(in_m[:, rank_cols], ranks[:, rank_cols], 0.0).sum(axis=0)
            a1, a2 = n1[rank_cols], n2[rank_cols]
            u = r1 - a1 * (a1 + 1) / 2
            mu, total = a1 * a2 / 2, a1 + a2
            var = a1 * a2 / 12 * ((total + 1) - ties[rank_cols] / (total * (total - 1)))
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.maximum(np.abs(u - mu) - 0.5, 0.0) / np.sqrt(var)
            p[rank_cols] = np.where(var > 0, np.minimum(2 * stats.norm.sf(z), 1.0), 1.0)
            diff = m1[rank_cols] - m2[rank_cols]
            consistent[rank_cols] = np.sign(u - mu) == np.sign(diff)
        p = np.where(testable, p, np.nan)
        method = tuple(UNTESTED if not testable[j] else (WELCH if welch[j] else MANN_WHITNEY) for j in range(x.shape[1]))
        low, high = self._intervals(in_m, n1, m1, v1) if intervals else (np.full_like(m1, np.nan), np.full_like(m1, np.nan))
        return GroupTests(n1.astype(int), n2.astype(int), m1, low, high, p, method, consistent)

    def _intervals(self, in_m: np.ndarray, n1: np.ndarray, m1: np.ndarray, v1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """95% interval of the members' mean per column: t interval, or percentile bootstrap for a small skewed group."""
        from scipy import stats

        with np.errstate(divide="ignore", invalid="ignore"):
            half = stats.t.ppf(0.975, n1 - 1) * np.sqrt(v1 / n1)
        low, high = m1 - half, m1 + half
        skew = _skewness(self.values, in_m)
        boot = (n1 >= 2) & (n1 <= BOOTSTRAP_MAX_N) & (n1 < COCHRAN_FACTOR * skew**2)
        for j in np.flatnonzero(boot):
            vals = self.values[in_m[:, j], j]
            rng = np.random.default_rng([SEED, zlib.crc32(vals.tobytes())])
            means = vals[rng.integers(0, len(vals), size=(BOOTSTRAP_DRAWS, len(vals)))].mean(axis=1)
            low[j], high[j] = np.quantile(means, [0.025, 0.975])
        bad = n1 < 2  # one value: no interval to speak of
        return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def benjamini_hochberg(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values): q_(i) = min over j >= i of m·p_(j)/j, at most 1.

    A hypothesis is rejected at false discovery rate ``alpha`` exactly when its q-value is <= alpha
    (the step-up procedure of Benjamini & Hochberg 1995); ``p`` in any order, q in the same order.
    """
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


T = TypeVar("T")


def fdr_adjust(groups: Sequence[Sequence[T]], alpha: float = ALPHA) -> list[tuple[T, ...]]:
    """Every tested trait of ``groups`` (dataclasses with ``p`` and ``consistent``) with its BH q-value and
    ``significant``, all groups adjusted as one family; untested ones (``p`` None) are never significant."""
    tested = [t for g in groups for t in g if getattr(t, "p", None) is not None]
    q = iter(benjamini_hochberg([float(t.p) for t in tested]).tolist())  # type: ignore[attr-defined]
    out = []
    for g in groups:
        done: list[T] = []
        for t in g:
            if getattr(t, "p", None) is None:
                done.append(dataclasses.replace(t, q=None, significant=False))  # type: ignore[type-var]
            else:
                qv = next(q)
                done.append(dataclasses.replace(t, q=qv, significant=bool(qv < alpha and t.consistent)))  # type: ignore[type-var,attr-defined]
        out.append(tuple(done))
    return out


def sig3(x: float | None) -> float | None:
    """A p- or q-value kept to 3 significant digits (tiny values stay tiny, never 0.0 by rounding)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.3g}")


def is_cited(trait: Mapping[str, Any] | Any) -> bool:
    """True when a trait may be named, described, explained or shown: it passed its test after
    Benjamini–Hochberg. A trait from a run made before traits were tested (no ``significant`` field)
    is taken as it was written."""
    value = trait.get("significant") if isinstance(trait, Mapping) else getattr(trait, "significant", None)
    return value is not False


def cited(traits: Sequence[Mapping[str, Any]] | None) -> list:
    """The traits of ``traits`` that may be cited (see :func:`is_cited`), in order."""
    return [t for t in traits or () if is_cited(t)]

