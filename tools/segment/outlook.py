"""What each user is likely to do next, learned from the data's own past (a time split).

The last stretch of the data (``horizon``: a quarter of its time span, at most
90 days) plays the future: behaviour features computed on the events before the
cut are regressed (ridge) on two targets over the stretch after it, the same
two the usefulness benchmark scores (BENCHMARKS.md §5):

- ``active``: the user buys again (any event, when the data has no purchases);
- ``value``: log(1 + what they spend: purchase values, else the event count).

The fitted model turns anyone's behaviour features into an *outlook*: two
standardised scores, "how likely to come back" and "how much". Sub-segments are
cut along it (tools/segment/hierarchy.py), so sibling segments differ in what
their members are about to do, and the held-out usefulness of each candidate
depth is measured on the same split.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.segment.features import BehaviourFeatures

DAY = 86_400.0
MAX_HORIZON_DAYS = 90.0
HORIZON_SHARE = 0.25
MIN_SPAN_DAYS = 28.0
MIN_CLASS = 30  # fewer active (or inactive) users than this after the cut: no usable target
PURCHASE_TYPES = ("purchase",)
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)
SPLINE_KNOTS = 4
BASES = ("linear", "spline")


@dataclass(frozen=True)
class TimeSplit:
    """The data cut in two by time: ``past`` holds the events before ``cut``; targets per past user."""

    cut: float  # seconds since the epoch
    horizon_days: float
    past: Dataset
    user_ids: np.ndarray  # users with at least one event before the cut
    active: np.ndarray  # 0/1: bought (or was active) after the cut
    value: np.ndarray  # log(1 + spend or events after the cut)
    target: str  # "purchases" or "activity": what active and value count

    def as_dict(self) -> dict:
        return {
            "cut": pd.Timestamp(self.cut, unit="s").isoformat(),
            "horizon_days": round(self.horizon_days, 1),
            "users": len(self.user_ids),
            "active_share": round(float(self.active.mean()), 4),
            "target": self.target,
        }


def time_split(data: Dataset, user_ids: np.ndarray | None = None) -> TimeSplit | None:
    """Cut ``data`` (its users ``user_ids`` only, when given) at its last ``horizon``; None when that gives no usable target.

    No timestamps, a span under four weeks, or fewer than ``MIN_CLASS`` users on
    either side of the target (everyone or no one comes back) all mean the data
    cannot say what predicts the next period, and the caller does without.
    """
    ev = data.events
    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    finite = np.isfinite(ts)
    if data.kind != "behaviour" or finite.sum() < 2:
        return None
    t_min, t_max = float(ts[finite].min()), float(ts[finite].max())
    span_days = (t_max - t_min) / DAY
    if span_days < MIN_SPAN_DAYS:
        return None
    horizon = min(MAX_HORIZON_DAYS, HORIZON_SHARE * span_days)
    cut = t_max - horizon * DAY
    if user_ids is not None:
        keep = ev["user_id"].isin(pd.Index(user_ids)).to_numpy()
        ev, ts, finite = ev[keep], ts[keep], finite[keep]
    before = finite & (ts < cut)
    after = finite & (ts >= cut)
    past_events = ev[before].reset_index(drop=True)
    users = np.asarray(pd.unique(past_events["user_id"]), dtype=object)
    if len(users) < 2 * MIN_CLASS:
        return None
    future = ev[after]
    etype = future["event_type"].astype(str)
    has_purchases = bool(ev["event_type"].astype(str).isin(PURCHASE_TYPES).any())
    if has_purchases:
        future = future[etype.isin(PURCHASE_TYPES).to_numpy()]
    index = pd.Index(users)
    active = index.isin(pd.unique(future["user_id"])).astype(np.float64)
    values = future["value"].to_numpy(dtype=np.float64)
    if has_purchases and np.isfinite(values).any():
        amount = pd.Series(np.nan_to_num(values), index=future.index).groupby(future["user_id"]).sum()
    else:
        amount = future.groupby("user_id").size().astype(np.float64)
    value = np.log1p(np.clip(amount.reindex(users).fillna(0.0).to_numpy(dtype=np.float64), 0, None))
    if min(active.sum(), len(active) - active.sum()) < MIN_CLASS:
        return None
    past = replace(data, events=past_events, fingerprint=f"{data.fingerprint}:before:{int(cut)}", warnings=())
    return TimeSplit(cut, horizon, past, users, active, value, "purchases" if has_purchases else "activity")


@dataclass(frozen=True)
class Outlook:
    """Ridge from standardised behaviour features (or a cubic spline of each) to the two targets.

    ``basis`` "linear" uses the features as they are; "spline" expands each into
    a cubic B-spline basis (4 knots), so a feature may act unevenly (the first
    weeks of silence matter more than the next), still additively. Which one a
    run uses is chosen by cross-fitted accuracy (:func:`choose_outlook`).
    """

    feature_names: tuple[str, ...]
    coef: np.ndarray  # (2, n_columns of the design): active, value
    intercept: np.ndarray  # (2,)
    basis: str = "linear"
    transformer: Any = None  # the fitted SplineTransformer for basis "spline"
    fit: dict = field(default_factory=dict)  # cross-fitted AUC / R² of each basis tried

    def _design(self, features: BehaviourFeatures) -> np.ndarray:
        index = {name: j for j, name in enumerate(features.names)}
        x = np.zeros((len(features.user_ids), len(self.feature_names)))
        for j, name in enumerate(self.feature_names):
            col = index.get(name)
            if col is not None:  # a feature this data lacks counts as average (0 once standardised)
                x[:, j] = features.scaled[:, col]
        return x if self.transformer is None else self.transformer.transform(x)

    def predict(self, features: BehaviourFeatures) -> np.ndarray:
        """(n, 2) predicted active and value, features matched by name."""
        return self._design(features) @ self.coef.T + self.intercept

    def scores(self, features: BehaviourFeatures) -> np.ndarray:
        """The outlook space: both predictions standardised over these users (float32, (n, 2))."""
        return standardise(self.predict(features))

    def as_dict(self) -> dict:
        return {"features": list(self.feature_names), "basis": self.basis, "cross_fitted": self.fit}


def standardise(pred: np.ndarray) -> np.ndarray:
    std = pred.std(axis=0)
    return ((pred - pred.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)


def fit_outlook(features: BehaviourFeatures, active: np.ndarray, value: np.ndarray, basis: str = "linear") -> Outlook:
    """Ridge (penalty chosen by leave-one-out CV) from the features, or their spline basis, to both targets."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import SplineTransformer

    x = features.scaled.astype(np.float64)
    transformer = None
    if basis == "spline":
        transformer = SplineTransformer(n_knots=SPLINE_KNOTS, degree=3, extrapolation="linear").fit(x)
        x = transformer.transform(x)
    coef = np.zeros((2, x.shape[1]))
    intercept = np.zeros(2)
    for row, target in enumerate((active, value)):
        model = RidgeCV(alphas=RIDGE_ALPHAS).fit(x, target)
        coef[row], intercept[row] = model.coef_, model.intercept_
    return Outlook(tuple(features.names), coef, intercept, basis, transformer)


def _rows(features: BehaviourFeatures, rows: np.ndarray) -> BehaviourFeatures:
    return replace(features, user_ids=features.user_ids[rows], raw=features.raw[rows], scaled=features.scaled[rows])


def cross_fitted(features: BehaviourFeatures, active: np.ndarray, value: np.ndarray, basis: str, seed: int) -> np.ndarray:
    """(n, 2) predictions where each user's come from a model fitted on the other half (no one predicts their own future)."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(active), dtype=bool)
    half[rng.permutation(len(active))[: len(active) // 2]] = True
    pred = np.zeros((len(active), 2))
    for fit_rows in (half, ~half):
        outlook = fit_outlook(_rows(features, fit_rows), active[fit_rows], value[fit_rows], basis)
        pred[~fit_rows] = outlook.predict(_rows(features, ~fit_rows))
    return pred


def choose_outlook(features: BehaviourFeatures, active: np.ndarray, value: np.ndarray, seed: int) -> tuple[Outlook, np.ndarray]:
    """The basis whose cross-fitted predictions are better (AUC of ``active`` + R² of ``value``), fitted on everyone.

    Returns the outlook and its cross-fitted, standardised scores for these users.
    """
    from tools.segment.usefulness import auc, r2

    tried: dict[str, tuple[float, np.ndarray]] = {}
    fit: dict[str, dict] = {}
    for basis in BASES:
        pred = cross_fitted(features, active, value, basis, seed)
        a, r = auc(active, pred[:, 0]), r2(value, pred[:, 1])
        tried[basis] = (a + r, pred)
        fit[basis] = {"auc": round(a, 4), "r2": round(r, 4)}
    best = max(BASES, key=lambda b: (tried[b][0], -BASES.index(b)))
    return replace(fit_outlook(features, active, value, best), fit=fit), standardise(tried[best][1])
