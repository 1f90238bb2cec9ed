"""Rank and count users by what they did: churn risk, lapsed, most valuable, most active, new.

Questions about behaviour ("which customers are about to churn?", "top 20 spenders in
segment 2", "how many users haven't been active in 90 days?") are answered from the
run's behaviour features in their own units, never by semantic search. Every ranked
user carries the values it was ranked and filtered by, so an answer can cite them.

Derived measures:
- ``churn_risk``: how overdue a user is against their own rhythm. Their usual gap is
  their span of activity divided by their visits less one (visits: a run's
  ``active_days``, ``orders`` or ``sessions`` feature when it has one, else its events);
  the risk is the days since their last activity divided by that gap (at least one
  day). Only users with at least 3 visits spread over more than one day have a rhythm
  to be overdue on (one burst of clicks is not a habit); the others are left out, and
  the answer says how many.
- ``first_seen_days``: days since the user's first event (recency + span), smallest = newest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tools.core.errors import ParameterError

DERIVED = ("churn_risk", "first_seen_days")
ALIASES = {
    "spend": "monetary", "spending": "monetary", "value": "monetary", "revenue": "monetary", "money": "monetary", "sales": "monetary",
    "activity": "frequency", "events": "frequency", "active": "frequency", "recency": "recency_days", "lapsed": "recency_days",
    "inactivity": "recency_days", "last_active": "recency_days", "tenure": "first_seen_days", "new": "first_seen_days", "newest": "first_seen_days",
    "churn": "churn_risk", "risk": "churn_risk", "rating": "rating_mean", "ratings": "rating_mean", "price": "avg_price",
    "orders": "purchases", "purchase_count": "purchases", "items": "distinct_items",
}
ASCENDING = frozenset({"first_seen_days"})  # the natural order of these is smallest first
OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "==": np.isclose, "!=": lambda a, b: ~np.isclose(a, b),
}
MIN_EVENTS_FOR_RHYTHM = 3
NEEDS = {"monetary": "spend (purchase events with values)", "purchases": "purchase events", "avg_price": "item prices",
         "rating_mean": "ratings", "recency_days": "timestamps", "span_days": "timestamps"}
LABELS = {"churn_risk": ("times overdue", "ratio"), "first_seen_days": ("days since first activity", "days"),
          "active_days": ("days active", "count"),
          "typical_gap_days": ("usual days between visits", "days")}
MetaFn = Callable[[str], tuple[str, str]]


@dataclass(frozen=True)
class Filter:
    feature: str
    op: str
    value: float

    def as_dict(self) -> dict:
        return {"feature": self.feature, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class RankedUser:
    user_id: str
    segment_id: int
    value: float  # of the measure ranked by
    values: dict[str, float] = field(default_factory=dict)  # every measure cited: the ranking's and the filters'


@dataclass(frozen=True)
class Ranking:
    by: str
    order: str
    label: str
    unit: str
    filters: tuple[Filter, ...]
    segment_id: int | None
    n_matching: int  # users that pass the filters (and have a value of ``by``)
    n_considered: int  # users in scope (the segment, or everyone)
    n_excluded: int  # in scope but without a value of ``by`` (e.g. too few events for a churn rhythm)
    users: tuple[RankedUser, ...]
    method: str  # one sentence: how they were ranked, in the analyst's words
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "by": self.by, "order": self.order, "label": self.label, "unit": self.unit,
            "filters": [f.as_dict() for f in self.filters], "segment_id": self.segment_id,
            "n_matching": self.n_matching, "n_considered": self.n_considered, "n_excluded": self.n_excluded,
            "method": self.method, "labels": {k: list(v) for k, v in self.labels.items()},
            "users": [{"user_id": u.user_id, "segment_id": u.segment_id, "value": u.value, "values": u.values} for u in self.users],
        }


def canonical_measure(name: str, available: Sequence[str]) -> str:
    """A feature name or derived measure from what a person or model calls it ("spend" -> "monetary")."""
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    key = ALIASES.get(key, key)
    if key in available or key in DERIVED:
        return key
    matches = [f for f in available if f.lower() == key or f.lower() == f"category_{key}"]
    if matches:
        return matches[0]
    if key in NEEDS:
        raise ParameterError(f"cannot rank users by {name!r}: this data has no {NEEDS[key]}", "rank by activity (frequency) or recency instead")
    raise ParameterError(
        f"cannot rank users by {name!r}: this run has no such measure",
        "use one of " + ", ".join(list(DERIVED) + [f for f in available if not f.startswith(("category_", "share_"))]),
    )


def default_order(by: str) -> str:
    return "asc" if by in ASCENDING else "desc"


def resolve_ranking(by: str | None, order: str | None, filters: Sequence[Filter]) -> tuple[str, str]:
    """(by, order) once defaults are applied: no measure ranks by the first filter's, in the filter's direction."""
    if by is None:
        if filters:
            f = filters[0]
            return f.feature, "asc" if f.op in ("<", "<=") else default_order(f.feature) if f.op in ("==", "!=") else "desc"
        return "frequency", "desc"
    return by, order or default_order(by)


VISIT_MEASURES = ("active_days", "orders", "sessions", "visits", "frequency")


def active_days(event_users: np.ndarray, event_times: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
    """Distinct calendar days (UTC) with at least one event, per user in ``user_ids`` order: the visits a rhythm is measured in."""
    import pandas as pd

    frame = pd.DataFrame({"u": pd.Index(user_ids.astype(str)).get_indexer(np.asarray(event_users).astype(str)),
                          "d": np.floor(np.asarray(event_times, dtype=np.float64) / 86400.0)})
    frame = frame[(frame["u"] >= 0) & np.isfinite(frame["d"])]
    counts = frame.drop_duplicates().groupby("u").size()
    out = np.zeros(len(user_ids), dtype=np.float64)
    out[counts.index.to_numpy()] = counts.to_numpy()
    return out


def visit_measure(names: Sequence[str]) -> str:
    """The count a user's rhythm is measured in: their distinct visits when the run has them, else their events."""
    return next((v for v in VISIT_MEASURES if v in names), "frequency")


def _measure(name: str, names: list[str], raw: np.ndarray) -> np.ndarray:
    def col(feature: str) -> np.ndarray:
        if feature not in names:
            raise ParameterError(f"this data has no {NEEDS.get(feature, feature)}, which {name.replace('_', ' ')} needs", "rank by activity (frequency) instead")
        return raw[:, names.index(feature)].astype(np.float64)

    if name == "first_seen_days":
        return col("recency_days") + col("span_days")
    if name == "typical_gap_days":
        visits = col(visit_measure(names))
        span = col("span_days")
        return np.where((visits >= MIN_EVENTS_FOR_RHYTHM) & (span >= 1.0), span / np.maximum(visits - 1, 1), np.nan)
    if name == "churn_risk":
        gap = _measure("typical_gap_days", names, raw)
        return col("recency_days") / np.maximum(gap, 1.0)
    return col(name)


def rank_users(user_ids: np.ndarray, labels: np.ndarray, feature_names: Sequence[str], feature_raw: np.ndarray,
               by: str | None = None, order: str | None = None, filters: Sequence[Filter] = (), segment_id: int | None = None,
               n: int = 10, meta: MetaFn | None = None) -> Ranking:
    """Users in scope that pass ``filters``, ordered by ``by`` (see the module docstring for the derived measures)."""
    names = list(feature_names)
    filters = tuple(Filter(canonical_measure(f.feature, names), f.op, float(f.value)) for f in filters)
    for f in filters:
        if f.op not in OPS:
            raise ParameterError(f"unknown comparison {f.op!r}", "use one of " + " ".join(OPS))
    by = None if by is None else canonical_measure(by, names)
    by, order = resolve_ranking(by, order, filters)
    if order not in ("asc", "desc"):
        raise ParameterError(f"order must be 'asc' or 'desc', got {order!r}")
    if not 1 <= n <= 500:
        raise ParameterError(f"n must be between 1 and 500, got {n}")
    scope = np.ones(len(user_ids), dtype=bool) if segment_id is None else labels == segment_id
    values = _measure(by, names, feature_raw)
    cited = [by] + [f.feature for f in filters if f.feature != by]
    if by == "churn_risk":
        cited += ["recency_days", visit_measure(names), "typical_gap_days"]
    columns = {c: _measure(c, names, feature_raw) for c in dict.fromkeys(cited)}
    keep = scope & np.isfinite(values)
    for f in filters:
        col = columns[f.feature]
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(col) & OPS[f.op](col, f.value)
    rows = np.flatnonzero(keep)
    ordering = np.lexsort((np.asarray(user_ids[rows], dtype=str), values[rows] if order == "asc" else -values[rows]))
    top = rows[ordering][:n]
    users = tuple(
        RankedUser(str(user_ids[r]), int(labels[r]), round(float(values[r]), 4), {c: round(float(columns[c][r]), 4) for c in columns})
        for r in top
    )
    look = meta or (lambda f: (f.replace("_", " "), "count"))
    all_labels = {c: LABELS.get(c) or look(c) for c in columns}
    label, unit = all_labels[by]
    n_considered = int(scope.sum())
    excluded = int((scope & ~np.isfinite(values)).sum())
    return Ranking(by, order, label, unit, filters, segment_id, len(rows), n_considered, excluded, users,
                   _method(by, order, label), all_labels)


def _method(by: str, order: str, label: str) -> str:
    if by == "churn_risk":
        return ("Churn risk: how long since each user was last active, against how often they used to come: days since their "
                "last activity divided by their usual gap (their span of activity over their visits). Only users with at least "
                f"{MIN_EVENTS_FOR_RHYTHM} visits on more than one day have a usual gap. Most overdue first.")
    direction = "highest first" if order == "desc" else "lowest first"
    if by == "recency_days":
        direction = "longest inactive first" if order == "desc" else "most recently active first"
    if by == "first_seen_days":
        direction = "newest first" if order == "asc" else "longest-standing first"
    return f"Ranked by {label}, {direction}."
