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


def _abs_skewness(second: np.ndarray, third: np.ndarray) -> np.ndarray:
    """|G1| from the mean second and third central moments (0 for a constant or empty column)."""
    ok = second > 1e-300
    return np.abs(np.where(ok, third / np.where(ok, second, 1.0) ** 1.5, 0.0))


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Ranks from 1 with ties given their average rank (as scipy's ``rankdata``), and the tie term sum(t^3 - t)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(values) else np.zeros(0, dtype=np.int64)
    counts = np.diff(np.r_[starts, len(values)]).astype(np.float64)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(starts + (counts + 1) / 2, counts.astype(np.int64))
    return ranks, float((counts**3 - counts).sum())


class Pool:
    """The rows segments are compared within (everyone, or a parent's members).

    The pool's counts, mean and central moments are taken once; column ranks once, when a rank test
    needs them; a bootstrap interval once per set of values (a top-level segment without sub-segments
    is also a leaf: the same members, asked twice).
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.finite = np.isfinite(self.values)
        self.n = self.finite.sum(axis=0).astype(np.float64)
        safe = np.maximum(self.n, 1.0)
        self.mean = np.where(self.finite, self.values, 0.0).sum(axis=0) / safe
        # Every value less the pool's mean (0 where missing): group sums and their differences keep their digits.
        self.centred = np.where(self.finite, self.values - self.mean, 0.0)
        square = self.centred * self.centred
        self.sum_squares = square.sum(axis=0)
        self.skew = _abs_skewness(self.sum_squares / safe, (square * self.centred).sum(axis=0) / safe)
        self._ranks: np.ndarray | None = None
        self._ties: np.ndarray | None = None
        self._boot: dict[tuple[int, int, int], tuple[np.ndarray, float, float]] = {}

    def _rank_columns(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ranks is None:
            ranks = np.zeros(self.values.shape)  # 0 where a value is missing
            ties = np.zeros(self.values.shape[1])
            for j in range(self.values.shape[1]):
                rows = np.flatnonzero(self.finite[:, j])
                ranks[rows, j], ties[j] = _average_ranks(self.values[rows, j])
            self._ranks, self._ties = ranks, ties
        assert self._ties is not None
        return self._ranks, self._ties

    def compare(self, members: np.ndarray, intervals: bool = True) -> GroupTests:
        """Members (a boolean mask over the pool's rows) against the pool's other rows, column by column
        (``intervals=False``: NaN intervals, for a caller that has the members' intervals already)."""
        return self.compare_groups(np.where(np.asarray(members, dtype=bool), 0, -1), 1, intervals)[0]

    def compare_groups(self, codes: np.ndarray, k: int, intervals: bool = True) -> list[GroupTests]:
        """Each group ``c`` of ``codes`` (a row's group in 0..k-1, -1 for none) against the pool's other rows:
        what ``compare(codes == c)`` gives, for every group at once.

        Counts, means and spreads come from per-group sums (a group x row indicator matrix times the
        values: one pass over the pool for all groups, where a mask per group would be k passes). The
        others' sum of squares is the pool's less the group's, both about the pool's mean, so it does not
        lose digits to a large mean.
        """
        import scipy.sparse as sp
        from scipy import special

        finite, y = self.finite, self.centred
        codes = np.asarray(codes, dtype=np.int64)
        rows = np.flatnonzero(codes >= 0)
        member = sp.csr_matrix((np.ones(len(rows)), (codes[rows], rows)), shape=(k, len(y)))
        n1 = np.asarray(member @ finite.astype(np.float64))
        n2 = self.n - n1
        s1 = np.asarray(member @ y)
        with np.errstate(divide="ignore", invalid="ignore"):
            d1, d2 = s1 / n1, (y.sum(axis=0) - s1) / n2  # each side's mean less the pool's
            m1 = np.asarray(member @ np.where(finite, self.values, 0.0)) / n1  # the members' mean, from their own values
        centre = np.vstack([np.nan_to_num(m1), np.zeros((1, y.shape[1]))])[np.where(codes >= 0, codes, k)]
        dev = np.where(finite & (codes >= 0)[:, None], self.values - centre, 0.0)  # each member less their group's mean
        square = dev * dev
        ss1 = np.asarray(member @ square)
        with np.errstate(divide="ignore", invalid="ignore"):
            # the others: sum of (x - their mean)^2 = sum of (x - pool mean)^2 over the pool, less the members'
            # (their own sum of squares and n1 (m1 - pool mean)^2), less n2 d2^2
            ss2 = self.sum_squares - ss1 - n1 * np.nan_to_num(m1 - self.mean) ** 2 - n2 * np.nan_to_num(d2) ** 2
            ss2 = np.where(n2 > 1, np.maximum(ss2, 0.0), np.nan)
            v1, v2 = ss1 / (n1 - 1), ss2 / (n2 - 1)
            a, b = v1 / n1, v2 / n2
            se = np.sqrt(a + b)
            t = (d1 - d2) / se
            df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
            p_welch = 2 * special.stdtr(df, -np.abs(t))  # Student's t survival function at |t|, both tails
        # Both groups constant: the difference is exact (p 0) or absent (p 1).
        p_welch = np.where(se > 0, p_welch, np.where(np.abs(d1 - d2) > 1e-12, 0.0, 1.0))
        testable = (n1 >= MIN_TEST_N) & (n2 >= MIN_TEST_N)
        welch = np.minimum(n1, n2) >= COCHRAN_FACTOR * self.skew**2
        p = np.where(welch, p_welch, np.nan)
        consistent = np.ones(p.shape, dtype=bool)
        rank = testable & ~welch
        if rank.any():
            ranks, ties = self._rank_columns()
            cols = np.flatnonzero(rank.any(axis=0))
            r1 = np.asarray(member @ ranks[:, cols])  # ranks are 0 where a value is missing
            a1, a2 = n1[:, cols], n2[:, cols]
            u = r1 - a1 * (a1 + 1) / 2
            mid, total = a1 * a2 / 2, a1 + a2
            var = a1 * a2 / 12 * ((total + 1) - ties[cols] / (total * (total - 1)))
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.maximum(np.abs(u - mid) - 0.5, 0.0) / np.sqrt(var)
                p_rank = np.where(var > 0, np.minimum(2 * special.ndtr(-z), 1.0), 1.0)  # normal survival at z, both tails
            sub = rank[:, cols]
            p[:, cols] = np.where(sub, p_rank, p[:, cols])
            consistent[:, cols] = np.where(sub, np.sign(u - mid) == np.sign(d1[:, cols] - d2[:, cols]), True)
        p = np.where(testable, p, np.nan)
        if intervals:
            third = np.asarray(member @ (square * dev))
            low, high = self._intervals(codes, k, n1, m1, v1, _abs_skewness(ss1 / np.maximum(n1, 1), third / np.maximum(n1, 1)))
        else:
            low = high = np.full(p.shape, np.nan)
        out = []
        for c in range(k):
            method = tuple(UNTESTED if not testable[c, j] else (WELCH if welch[c, j] else MANN_WHITNEY) for j in range(y.shape[1]))
            out.append(GroupTests(n1[c].astype(int), n2[c].astype(int), m1[c], low[c], high[c], p[c], method, consistent[c]))
        return out

    def _intervals(self, codes: np.ndarray, k: int, n1: np.ndarray, m1: np.ndarray, v1: np.ndarray,
                   skew: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """95% interval of each group's mean per column: t interval, or percentile bootstrap for a small skewed group
        (``skew``: each group's |G1| per column)."""
        from scipy import special

        with np.errstate(divide="ignore", invalid="ignore"):
            half = special.stdtrit(n1 - 1, 0.975) * np.sqrt(v1 / n1)  # Student's t quantile
        low, high = m1 - half, m1 + half
        boot = (n1 >= 2) & (n1 <= BOOTSTRAP_MAX_N) & (n1 < COCHRAN_FACTOR * skew**2)
        if boot.any():
            order = np.argsort(codes, kind="stable")  # each group's rows, in pool order
            bounds = np.searchsorted(codes[order], np.arange(k + 1))
            for c, j in zip(*np.nonzero(boot)):
                at = order[bounds[c] : bounds[c + 1]]
                low[c, j], high[c, j] = self._bootstrap(j, self.values[at[self.finite[at, j]], j])
        bad = n1 < 2  # one value: no interval to speak of
        return np.where(bad, np.nan, low), np.where(bad, np.nan, high)

    def _bootstrap(self, column: int, vals: np.ndarray) -> tuple[float, float]:
        """The percentile bootstrap interval of the mean of ``vals``, seeded by the values themselves."""
        seed = zlib.crc32(vals.tobytes())
        known = self._boot.get((column, len(vals), seed))
        if known is not None and np.array_equal(known[0], vals):
            return known[1], known[2]
        rng = np.random.default_rng([SEED, seed])
        means = vals[rng.integers(0, len(vals), size=(BOOTSTRAP_DRAWS, len(vals)))].mean(axis=1)
        low, high = (float(q) for q in np.quantile(means, [0.025, 0.975]))
        self._boot[(column, len(vals), seed)] = (vals, low, high)
        return low, high


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

