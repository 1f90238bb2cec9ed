"""Behaviour features per user: how recently, how often, how much, what kind, how they rate.

Two matrices come out: ``raw`` keeps the values in their own units (days, counts,
shares, money) for traits and lift; ``scaled`` is what clustering sees (heavy
tails logged, every column standardised, gaps filled with the population median).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.data.items import split_categories

MAX_EVENT_TYPES = 8
MAX_CATEGORIES = 25
RATING_TYPES = ("rating", "review")
PURCHASE_TYPES = ("purchase",)


# Every feature's label (what a marketer reads) and unit, defined here only: describe,
# the traits and the report read them from here or from the specs built with them.
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "frequency": ("events", "count"),
    "distinct_items": ("distinct items", "count"),
    "recency_days": ("days since last activity", "days"),
    "span_days": ("days active (first to last)", "days"),
    "monetary": ("total spend", "money"),
    "purchases": ("purchases", "count"),
    "rating_mean": ("average rating", "rating"),
    "rating_spread": ("spread of ratings", "rating"),
    "avg_price": ("average price of items", "money"),
    "text_share": ("share of events with written text", "share"),
    "diversity": ("category diversity (entropy)", "ratio"),
}


def feature_label(name: str) -> tuple[str, str]:
    """(label, unit) of feature ``name``, including the per-category and per-event-type shares."""
    if name.startswith("category_"):
        return f"share of activity in {name[len('category_'):]}", "share"
    if name.startswith("share_"):
        return f"share of events that are {name[len('share_'):]}s", "share"
    return FEATURE_LABELS.get(name, (name.replace("_", " "), "count"))


@dataclass(frozen=True)
class FeatureSpec:
    """One behaviour feature: its column name, a label a marketer reads, and its unit."""

    name: str
    label: str
    unit: str  # "days" | "count" | "money" | "share" | "rating" | "ratio"


@dataclass(frozen=True)
class BehaviourFeatures:
    user_ids: np.ndarray  # str, aligned with rows
    specs: tuple[FeatureSpec, ...]
    raw: np.ndarray  # float64 (n_users, n_features), NaN where undefined
    scaled: np.ndarray  # float32, standardised, no NaN

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def _log_columns(specs: list[FeatureSpec]) -> list[int]:
    return [i for i, s in enumerate(specs) if s.unit in ("days", "count", "money")]


def compute_features(data: Dataset, user_ids: np.ndarray) -> BehaviourFeatures:
    """Behaviour features for ``user_ids`` (in that order) from ``data.events``."""
    ev = data.events
    uid_index = pd.Index(user_ids)
    codes = uid_index.get_indexer(ev["user_id"])
    n = len(user_ids)
    cols: dict[str, np.ndarray] = {}
    specs: list[FeatureSpec] = []

    def add(name: str, values: np.ndarray) -> None:
        specs.append(FeatureSpec(name, *feature_label(name)))
        cols[name] = np.asarray(values, dtype=np.float64)

    counts = np.bincount(codes, minlength=n).astype(np.float64)
    add("frequency", counts)
    distinct = ev.assign(_u=codes).drop_duplicates(["_u", "item_id"])
    add("distinct_items", np.bincount(distinct["_u"], minlength=n))

    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    if np.isfinite(ts).any():
        frame = pd.DataFrame({"u": codes, "t": ts}).dropna()
        last = frame.groupby("u")["t"].max().reindex(range(n)).to_numpy()
        first = frame.groupby("u")["t"].min().reindex(range(n)).to_numpy()
        reference = np.nanmax(ts)
        add("recency_days", (reference - last) / 86400.0)
        add("span_days", (last - first) / 86400.0)

    etype = ev["event_type"].astype(str)
    values = ev["value"].to_numpy(dtype=np.float64)
    purchases = etype.isin(PURCHASE_TYPES).to_numpy()
    if purchases.any():
        spend = np.bincount(codes[purchases], weights=np.nan_to_num(values[purchases]), minlength=n)
        add("monetary", spend)
        add("purchases", np.bincount(codes[purchases], minlength=n))

    type_counts = etype.value_counts()
    common = [t for t in type_counts.index[:MAX_EVENT_TYPES] if type_counts[t] >= 0.01 * len(ev)]
    if len(common) > 1:
        for t in common:
            mask = (etype == t).to_numpy()
            add(f"share_{t}", np.bincount(codes[mask], minlength=n) / np.maximum(counts, 1))

    rated = etype.isin(RATING_TYPES).to_numpy() & np.isfinite(values)
    if rated.any():
        frame = pd.DataFrame({"u": codes[rated], "v": values[rated]})
        grouped = frame.groupby("u")["v"]
        add("rating_mean", grouped.mean().reindex(range(n)).to_numpy())
        add("rating_spread", grouped.std(ddof=0).reindex(range(n)).to_numpy())

    if data.items is not None and data.items["price"].notna().any():
        price = data.items.set_index("item_id")["price"]
        item_price = ev["item_id"].map(price).to_numpy(dtype=np.float64)
        ok = np.isfinite(item_price)
        frame = pd.DataFrame({"u": codes[ok], "p": item_price[ok]})
        add("avg_price", frame.groupby("u")["p"].mean().reindex(range(n)).to_numpy())

    texts = ev["text"].notna().to_numpy() & (ev["text"].astype(str).str.len() > 0).to_numpy()
    if texts.any() and not texts.all():
        add("text_share", np.bincount(codes[texts], minlength=n) / np.maximum(counts, 1))

    if data.items is not None and data.items["category"].notna().any():
        _add_category_shares(ev, codes, n, data.items, add)

    raw = np.column_stack([cols[s.name] for s in specs]) if specs else np.zeros((n, 0))
    return BehaviourFeatures(np.asarray(user_ids), tuple(specs), raw, scale_features(raw, specs))


def _add_category_shares(ev: pd.DataFrame, codes: np.ndarray, n: int, items: pd.DataFrame, add) -> None:
    cats = split_categories(items["category"])
    exploded = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "cat": cats.to_numpy()}).explode("cat").dropna()
    if exploded.empty:
        return
    # An item in k categories counts 1/k towards each, so shares sum to 1 per user.
    exploded["w"] = 1.0 / exploded.groupby("item_id")["cat"].transform("size")
    joined = pd.DataFrame({"u": codes, "item_id": ev["item_id"].to_numpy()}).merge(exploded, on="item_id", how="inner")
    if joined.empty:
        return
    totals = joined.groupby("cat")["w"].sum().sort_values(ascending=False)
    top = list(totals.index[:MAX_CATEGORIES])
    table = joined[joined["cat"].isin(top)].pivot_table(index="u", columns="cat", values="w", aggfunc="sum", fill_value=0.0)
    per_user = joined.groupby("u")["w"].sum()
    table = table.reindex(index=range(n), columns=top, fill_value=0.0)
    denom = per_user.reindex(range(n)).fillna(0).to_numpy()
    shares = table.to_numpy() / np.maximum(denom, 1e-12)[:, None]
    for j, cat in enumerate(top):
        add(f"category_{cat}", shares[:, j])
    present = shares > 0
    probs = np.where(present, shares, 1.0)
    entropy = -(shares * np.log(probs)).sum(axis=1)
    add("diversity", entropy / np.log(max(len(top), 2)))


def scale_features(raw: np.ndarray, specs: list[FeatureSpec] | tuple[FeatureSpec, ...]) -> np.ndarray:
    """Log heavy tails, fill gaps with the median, standardise; constant columns become 0."""
    x = raw.astype(np.float64, copy=True)
    for j in _log_columns(list(specs)):
        x[:, j] = np.log1p(np.clip(x[:, j], 0, None))
    for j in range(x.shape[1]):
        col = x[:, j]
        finite = np.isfinite(col)
        fill = np.median(col[finite]) if finite.any() else 0.0
        col[~finite] = fill
        std = col.std()
        x[:, j] = (col - col.mean()) / std if std > 1e-12 else 0.0
    return x.astype(np.float32)
