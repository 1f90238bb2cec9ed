"""Segment-aware hybrid recommender: EASE, ItemKNN, segment popularity, trending and content, blended per user.

Every component is z-scored per user over the items that user may still be
recommended, then blended with weights chosen on a validation split carved from
the training data the same way the benchmark carves its test split (each user's
latest interaction). Nothing about the test split is ever looked at.

What fit tunes, in order, all on that validation split:
1. EASE's λ on plain EASE (the benchmark's own protocol);
2. how fast a user's older interactions fade (recency half-life), on EASE;
3. the blend weights, by coordinate ascent over a small grid, starting from the
   best single component — so the blend never validates worse than any one
   component alone.
The chosen settings are then refitted on all the training data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from tools.core.errors import DataError, ParameterError
from tools.data.interactions import InteractionMatrix, holdout_last
from tools.recommend.baselines import (
    EASE_L2_GRID,
    EASE_MAX_ITEMS,
    EASE_TUNE_ITEMS,
    EaseSolver,
    evaluate_scorer,
    tune_ease_l2,
)
from tools.recommend.ranking import chunk_rows, hit_rate, ndcg, target_ranks, top_k
from tools.recommend.signals import Signals, build_signals, recency_weighted

HALF_LIFE_GRID: tuple[float | None, ...] = (None, 1.0, 2.0, 4.0, 8.0, 16.0)
WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 1.0)


class Recommendation(NamedTuple):
    """One recommended item; ``components`` holds each signal's contribution (weight x per-user z-score), summing to ``score``."""

    item_id: str
    score: float
    components: dict[str, float]


@dataclass(frozen=True, eq=False)
class TopK:
    """Batched recommendations: row ``r`` is for ``user_ids[r]``; missing slots are ``None`` / -inf."""

    user_ids: np.ndarray
    item_ids: np.ndarray  # users x k, object
    scores: np.ndarray  # users x k, float32


@dataclass(frozen=True)
class TuningReport:
    """What the validation split said: every λ, half-life and single component tried, and the blend chosen."""

    n_users: int
    k: int
    l2: dict[float, tuple[float, float]]  # λ -> (HR, NDCG) of plain EASE
    half_life: dict[str, tuple[float, float]]  # half-life -> (HR, NDCG) of recency-weighted EASE
    single: dict[str, tuple[float, float]]  # component alone -> (HR, NDCG)
    blend: tuple[float, float]  # the chosen blend's (HR, NDCG)
    weights: dict[str, float] = field(default_factory=dict)


def align_rows(values: Any, ids: np.ndarray, source_ids: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``values`` in the order of ``ids``.

    ``values`` may be a pandas object indexed by id, a mapping id -> row, or an
    array aligned with ``source_ids`` (or with ``ids`` itself when that is None).
    Ids with no row come back as NaN.
    """
    if isinstance(values, Mapping):
        lookup = {str(key): val for key, val in values.items()}
        vector_like = any(np.ndim(v) > 0 for v in lookup.values())
        values = pd.DataFrame.from_dict(lookup, orient="index") if vector_like else pd.Series(lookup, dtype=object)
    if isinstance(values, (pd.Series, pd.DataFrame)):
        return values.set_axis(values.index.astype(str)).reindex(list(ids)).to_numpy()
    array = np.asarray(values)
    if source_ids is None:
        if len(array) != len(ids):
            raise DataError(f"got {len(array)} rows for {len(ids)} ids", "pass one row per user/item, or a frame indexed by id")
        return array
    pos = pd.Index(np.asarray(source_ids, dtype=object).astype(str)).get_indexer(list(ids))
    out = np.full((len(ids),) + array.shape[1:], np.nan, dtype=float if array.dtype.kind in "fiub" else object)
    out[pos >= 0] = array[pos[pos >= 0]]
    return out


def _segment_codes(labels: np.ndarray | None) -> np.ndarray | None:
    if labels is None:
        return None
    known = pd.notna(pd.Series(labels, dtype=object))
    codes = np.full(len(labels), -1, dtype=np.int64)
    codes[known.to_numpy()] = pd.factorize(pd.Series(labels, dtype=object)[known].astype(str), sort=True)[0]
    return codes


class HybridRecommender:
    """Explainable hybrid recommender (scikit-learn style: parameters in ``__init__``, work in ``fit``).

    ``fit`` takes an :class:`InteractionMatrix` or an events frame, plus optional
    ``user_vectors`` / ``item_vectors`` (rows per user / item, L2-normalised, or
    frames indexed by id) and ``segment_labels`` (one label per user). Arrays are
    aligned with the matrix's ``user_ids`` / ``item_ids``. Vectors must be built
    from training data only, or the evaluation leaks.
    """

    def __init__(
        self,
        *,
        k: int = 10,
        l2: float | None = None,
        l2_grid: tuple[float, ...] = EASE_L2_GRID,
        half_life_grid: tuple[float | None, ...] = HALF_LIFE_GRID,
        floor: float = 0.1,
        weight_grid: tuple[float, ...] = WEIGHT_GRID,
        ease_max_items: int = EASE_MAX_ITEMS,
        ease_tune_items: int = EASE_TUNE_ITEMS,
        n_time_bins: int = 50,
        trend_bandwidth: float = 1.0,
        max_tuning_users: int = 5000,
        random_state: int = 0,
    ) -> None:
        self.k = k
        self.l2 = l2
        self.l2_grid = l2_grid
        self.half_life_grid = half_life_grid
        self.floor = floor
        self.weight_grid = weight_grid
        self.ease_max_items = ease_max_items
        self.ease_tune_items = ease_tune_items
        self.n_time_bins = n_time_bins
        self.trend_bandwidth = trend_bandwidth
        self.max_tuning_users = max_tuning_users
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: InteractionMatrix | pd.DataFrame,
        *,
        user_vectors: Any = None,
        item_vectors: Any = None,
        segment_labels: Any = None,
    ) -> HybridRecommender:
        """Tune on a validation split of ``data``, then fit every component on all of it."""
        if not 0.0 <= self.floor <= 1.0:
            raise ParameterError(f"floor must be within 0–1, got {self.floor}", "0.1 works well")
        matrix = data if isinstance(data, InteractionMatrix) else InteractionMatrix.from_events(data)
        if matrix.csr.nnz == 0:
            raise DataError("there are no interactions to learn from", "check the events have user and item ids")
        uv = None if user_vectors is None else align_rows(user_vectors, matrix.user_ids).astype(np.float32)
        iv = None if item_vectors is None else align_rows(item_vectors, matrix.item_ids).astype(np.float32)
        if uv is not None and iv is not None and uv.shape[1] != iv.shape[1]:
            raise DataError(
                f"user vectors have {uv.shape[1]} dimensions and item vectors {iv.shape[1]}",
                "embed users and items with the same model",
            )
        codes = _segment_codes(None if segment_labels is None else align_rows(segment_labels, matrix.user_ids))
        extras = dict(segment_codes=codes, item_vectors=iv, user_vectors=uv)

        val_matrix, val_users, val_targets = holdout_last(matrix, self.random_state)
        if len(val_users) == 0:
            raise DataError("no user has two or more interactions to validate on", "recommendations need repeat users")
        keep = self._tuning_sample(len(val_users), matrix.shape[1], n_arrays=7)
        val_users, val_targets = val_users[keep], val_targets[keep]
        available = np.bincount(val_matrix.csr.indices, minlength=matrix.shape[1]) > 0

        tune_items = self.ease_max_items
        if not EaseSolver.prefers_dual(val_matrix.csr, tune_items) and self.l2 is None:
            tune_items = min(tune_items, self.ease_tune_items)
        val_solver = EaseSolver(val_matrix.csr, tune_items)
        grid = (self.l2,) if self.l2 is not None else self.l2_grid
        val_ease, l2_results = tune_ease_l2(val_solver, val_matrix.csr, val_users, val_targets, available, grid, self.k)
        del val_solver
        half_life, hl_results = self._tune_half_life(val_matrix, val_ease, val_users, val_targets, available)
        val_signals = self._signals(val_matrix, val_ease, half_life, extras)
        weights, single, blend = self._tune_weights(val_signals, val_users, val_targets)
        l2 = val_ease.l2
        del val_signals, val_ease

        self.l2_ = l2
        self.half_life_ = half_life
        self.weights_ = weights
        self.tuning_ = TuningReport(len(val_users), self.k, l2_results, hl_results, single, blend, weights)
        self.ease_ = EaseSolver(matrix.csr, self.ease_max_items).weights(l2)
        self.signals_ = self._signals(matrix, self.ease_, half_life, extras)
        self.matrix_ = matrix
        return self

    def _tuning_sample(self, n_val: int, n_items: int, n_arrays: int) -> np.ndarray:
        # Components for every tuning user are held at once: cap them to ~1 GB as well as by count.
        cap = min(self.max_tuning_users, max(200, (2**30) // (4 * n_items * (n_arrays + 2))))
        if n_val <= cap:
            return np.arange(n_val)
        return np.sort(np.random.default_rng(self.random_state).choice(n_val, size=cap, replace=False))

    def _signals(self, matrix: InteractionMatrix, ease, half_life, extras) -> Signals:
        return build_signals(
            matrix, ease, half_life=half_life, floor=self.floor, n_time_bins=self.n_time_bins,
            trend_bandwidth=self.trend_bandwidth, **extras,
        )

    def _tune_half_life(self, matrix, ease, users, targets, available):
        results: dict[str, tuple[float, float]] = {}
        best, best_key = None, None
        for half_life in self.half_life_grid:
            rows = recency_weighted(matrix, half_life, self.floor)
            hr, nd, _ = evaluate_scorer(lambda u, _r: ease.score(rows[u]), matrix.csr, users, targets, available, self.k)
            results[str(half_life)] = (hr, nd)
            if best_key is None or (nd, hr) > best_key:
                best, best_key = half_life, (nd, hr)
        return best, results

    def _tune_weights(self, signals: Signals, users: np.ndarray, targets: np.ndarray):
        names = signals.active
        parts = [signals.components(users[s]) for s in chunk_rows(len(users), signals.matrix.shape[1], 2 * len(names) + 4)]
        comps = {n: np.concatenate([p[0][n] for p in parts]) for n in names}
        rankable = np.concatenate([p[1] for p in parts])
        del parts

        def score(weights: dict[str, float]) -> tuple[float, float]:
            ranks = np.zeros(len(users), dtype=np.int64)
            for s in chunk_rows(len(users), rankable.shape[1], 3):
                blend = sum(w * comps[n][s] for n, w in weights.items() if w)
                ranks[s] = target_ranks(blend, rankable[s], targets[s])
            return ndcg(ranks, self.k), hit_rate(ranks, self.k)

        single = {n: score({n: 1.0})[::-1] for n in names}
        start = max(names, key=lambda n: (single[n][1], single[n][0], -names.index(n)))
        weights = {n: 1.0 if n == start else 0.0 for n in names}
        best = score(weights)
        for _ in range(3):  # coordinate ascent; stops early once a full pass changes nothing
            changed = False
            for name in names:
                for value in self.weight_grid:
                    trial = {**weights, name: value}
                    if value == weights[name] or not any(trial.values()):
                        continue
                    key = score(trial)
                    if key > best:
                        weights, best, changed = trial, key, True
            if not changed:
                break
        return weights, single, best[::-1]

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "signals_"):
            raise ParameterError("the recommender is not fitted yet", "call fit(...) first")

    def _blend(self, users: np.ndarray):
        comps, rankable = self.signals_.components(users, tuple(n for n, w in self.weights_.items() if w))
        blend = sum(self.weights_[n] * z for n, z in comps.items())
        return blend, comps, rankable

    def blended_scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense blended scores (``len(rows) x items``) for user row numbers; seen items score 0, so mask them."""
        self._check_fitted()
        return self._blend(np.asarray(rows, dtype=np.int64))[0]

    def top_k(self, users: Sequence[str | int] | None = None, k: int | None = None) -> TopK:
        """Top-``k`` unseen items for ``users`` (ids or row numbers; None = everyone), in chunks of users."""
        self._check_fitted()
        k = self.k if k is None else int(k)
        idx = np.arange(self.matrix_.shape[0]) if users is None else self.matrix_.user_index(users)
        cols, scores = self.top_columns(idx, k)
        return self.as_top_k(idx, cols, scores)

    def top_columns(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` unseen item columns (-1: no item left) and their scores for user row numbers, in chunks of
        users; the same figures for a row whichever rows it is scored with (a cluster scores a slice each)."""
        self._check_fitted()
        if k < 1:
            raise ParameterError(f"k must be at least 1, got {k}", "ask for 10 recommendations")
        rows = np.asarray(rows, dtype=np.int64)
        width = min(k, self.matrix_.shape[1])  # a catalogue smaller than k gives every item it has
        cols = np.full((len(rows), width), -1, dtype=np.int64)
        scores = np.full((len(rows), width), -np.inf, dtype=np.float32)
        n_arrays = 2 * sum(1 for w in self.weights_.values() if w) + 4
        for part in chunk_rows(len(rows), self.matrix_.shape[1], n_arrays):
            blend, _, rankable = self._blend(rows[part])
            cols[part], scores[part] = top_k(blend, rankable, k)
        return cols, scores

    def as_top_k(self, rows: np.ndarray, cols: np.ndarray, scores: np.ndarray) -> TopK:
        """:meth:`top_columns`' figures for user ``rows`` as ids."""
        item_ids = np.where(cols >= 0, self.matrix_.item_ids[np.maximum(cols, 0)], None)
        return TopK(user_ids=self.matrix_.user_ids[rows], item_ids=item_ids, scores=scores)

    def recommend(self, user: str | int, k: int | None = None) -> list[Recommendation]:
        """Top-``k`` unseen items for one user (id or row number), each with its per-component contributions."""
        self._check_fitted()
        k = self.k if k is None else int(k)
        idx = self.matrix_.user_index(user)
        blend, comps, rankable = self._blend(idx)
        cols, vals = top_k(blend, rankable, k)
        out = []
        for col, val in zip(cols[0], vals[0]):
            if col < 0:
                break
            parts = {n: round(float(self.weights_[n] * z[0, col]), 6) for n, z in comps.items()}
            out.append(Recommendation(str(self.matrix_.item_ids[col]), float(val), parts))
        return out

    def because(self, user: str | int, item_id: str, n: int = 3) -> list[tuple[str, float]]:
        """The user's history items that raise ``item_id``'s EASE score most: (item id, contribution), largest first."""
        self._check_fitted()
        row = self.signals_.rows[self.matrix_.user_index(user)[0]]
        col = pd.Index(self.matrix_.item_ids).get_indexer([str(item_id)])[0]
        if col < 0:
            raise DataError(f"unknown item {item_id!r}", "use an item id that appears in the data")
        contrib = row.data * self.ease_.column(col)[row.indices]
        order = np.lexsort((row.indices, -contrib))
        return [(str(self.matrix_.item_ids[row.indices[i]]), float(contrib[i])) for i in order[:n] if contrib[i] > 0]
