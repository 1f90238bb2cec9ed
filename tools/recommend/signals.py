"""The per-user scores the hybrid recommender blends, each z-scored per user over the items it may recommend.

Components (names are what explanations show):
* ``ease`` — EASE item-item scores from the user's history, recent items weighted up;
* ``similar_items`` — cosine ItemKNN scores from the same weighted history;
* ``segment_popularity`` — how many members of the user's segment took each item
  (everyone's when there are no segments);
* ``trending`` — how popular each item was around the user's latest activity,
  from a time-kernel over quantile time bins (training data only);
* ``content`` — cosine between the user's profile vector (given, or the
  weighted mean of their history's item vectors) and each item's vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tools.core.linalg import normalize_rows
from tools.data.interactions import InteractionMatrix, recency_positions
from tools.recommend.baselines import (
    EaseWeights,
    apply_similarity,
    cosine_item_similarity,
    popularity,
)
from tools.recommend.ranking import rankable_mask, zscore_rows

COMPONENTS = ("ease", "similar_items", "segment_popularity", "trending", "content")


def recency_weighted(matrix: InteractionMatrix, half_life: float | None, floor: float) -> sp.csr_matrix:
    """The user rows with each pair weighted ``floor + (1 - floor) * 0.5 ** (position / half_life)``.

    ``position`` is 0 for the user's latest timestamp, 1 for the one before, ...;
    ``half_life=None`` keeps every weight at 1 (plain binary rows).
    """
    csr = matrix.csr.astype(np.float32, copy=True)
    if half_life is not None:
        pos = recency_positions(matrix)
        csr.data = (floor + (1.0 - floor) * np.power(0.5, pos / half_life)).astype(np.float32)
    return csr


def time_bins(times: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges of up to ``n_bins`` quantile bins of the known times (empty when no time is known)."""
    known = times[np.isfinite(times)]
    if len(known) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(known, np.linspace(0.0, 1.0, n_bins + 1)))


def _bin_of(edges: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, times, side="right") - 1, 0, max(len(edges) - 2, 0))


@dataclass(frozen=True, eq=False)
class Signals:
    """Everything needed to score the components for any user of one training matrix."""

    matrix: InteractionMatrix
    rows: sp.csr_matrix  # recency-weighted user rows
    available: np.ndarray  # items with at least one training interaction
    ease: EaseWeights
    item_sim: np.ndarray | sp.csr_matrix
    segment_pop: np.ndarray  # (n_segments + 1) x items, log1p counts; last row = everyone
    user_segment: np.ndarray  # row in segment_pop per user
    trend: np.ndarray | None  # bins x items, log1p kernel-smoothed counts
    user_bin: np.ndarray | None
    item_vectors: np.ndarray | None  # items x d, L2-normalised, zero rows when unknown
    user_vectors: np.ndarray | None  # users x d, L2-normalised, or None to use history profiles

    @property
    def active(self) -> tuple[str, ...]:
        """Components this data can feed."""
        out = ["ease", "similar_items", "segment_popularity"]
        if self.trend is not None:
            out.append("trending")
        if self.item_vectors is not None:
            out.append("content")
        return tuple(out)

    def raw(self, name: str, users: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
        """One component's raw scores (dense float32 ``len(users) x items``)."""
        if name == "ease":
            return self.ease.score(rows)
        if name == "similar_items":
            return apply_similarity(rows, self.item_sim)
        if name == "segment_popularity":
            return self.segment_pop[self.user_segment[users]]
        if name == "trending":
            return self.trend[self.user_bin[users]]
        if name == "content":
            return (self._profiles(users, rows) @ self.item_vectors.T).astype(np.float32)
        raise KeyError(name)

    def _profiles(self, users: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
        if self.user_vectors is not None:
            return self.user_vectors[users]
        prof = np.asarray(rows @ self.item_vectors, dtype=np.float32)
        return _l2_normalise(prof)

    def components(self, users: np.ndarray, names: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Z-scored components for ``users`` and the rankable mask (unseen and available items)."""
        rows = self.rows[users]
        rankable = rankable_mask(rows, self.available)
        out = {name: zscore_rows(self.raw(name, users, rows), rankable) for name in (names or self.active)}
        return out, rankable


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Unit rows in float32; gaps count as 0 and an all-zero row stays zero."""
    return normalize_rows(np.nan_to_num(np.asarray(x, dtype=np.float32)))


def build_signals(
    matrix: InteractionMatrix,
    ease: EaseWeights,
    *,
    half_life: float | None,
    floor: float,
    segment_codes: np.ndarray | None,
    item_vectors: np.ndarray | None,
    user_vectors: np.ndarray | None,
    n_time_bins: int,
    trend_bandwidth: float,
) -> Signals:
    """Fit every component on ``matrix`` (segment codes: int per user, -1 when unknown)."""
    csr = matrix.csr
    counts = popularity(csr)
    n_users, n_items = csr.shape
    codes = np.full(n_users, -1) if segment_codes is None else np.asarray(segment_codes, dtype=np.int64)
    n_seg = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    member = sp.csr_matrix(
        (np.ones(int((codes >= 0).sum())), (np.flatnonzero(codes >= 0), codes[codes >= 0])), shape=(n_users, n_seg)
    )
    seg_counts = np.vstack([np.asarray((member.T @ csr).todense()), counts[None, :]])
    user_segment = np.where(codes >= 0, codes, n_seg)

    trend = user_bin = None
    edges = time_bins(matrix.times, n_time_bins)
    if len(edges) >= 2:
        n_bins = len(edges) - 1
        known = np.isfinite(matrix.times)
        bins = _bin_of(edges, matrix.times[known])
        per_bin = sp.csr_matrix(
            (np.ones(len(bins)), (bins, csr.indices[known])), shape=(n_bins, n_items)
        ).toarray()
        idx = np.arange(n_bins)
        kernel = np.exp(-np.abs(idx[:, None] - idx[None, :]) / trend_bandwidth)
        trend = np.log1p(kernel @ per_bin).astype(np.float32)
        user_rows = np.repeat(np.arange(n_users), np.diff(csr.indptr))
        latest = np.full(n_users, -np.inf)
        np.maximum.at(latest, user_rows, np.nan_to_num(matrix.times, nan=-np.inf))
        # No known time: the user is scored as of the latest bin ("popular lately").
        user_bin = np.where(np.isfinite(latest), _bin_of(edges, latest), n_bins - 1)

    return Signals(
        matrix=matrix,
        rows=recency_weighted(matrix, half_life, floor),
        available=counts > 0,
        ease=ease,
        item_sim=cosine_item_similarity(csr),
        segment_pop=np.log1p(seg_counts).astype(np.float32),
        user_segment=user_segment,
        trend=trend,
        user_bin=user_bin,
        item_vectors=None if item_vectors is None else _l2_normalise(item_vectors),
        user_vectors=None if user_vectors is None else _l2_normalise(user_vectors),
    )
