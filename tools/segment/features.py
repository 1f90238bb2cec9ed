"""Behaviour features per user: how recently, how often, how much, what kind, how they rate.

Two matrices come out: ``raw`` keeps the values in their own units (days, orders,
counts, shares, money in the data's currency) for traits and lift; ``scaled`` is what
clustering sees (heavy tails logged, every column standardised, gaps filled with the
population median).

Orders: the lines of one order/invoice/basket id, or, without an order column, a
user's purchase lines with the same timestamp (CDNOW: one order per customer-day).
Returns (event type "return", negative spend) net out of spend and are never orders.
A pure transaction log (every line a purchase or return) counts ``frequency`` in
orders and measures recency from the last purchase; it, or any log with an order
column, also gets average order value, basket size, tenure (days from the first
purchase to the end of the data, the customer's age in the customer-base literature)
and the median days between orders. User attributes (country, plan) are never inputs.
Where the log has a funnel, the order of events comes last (tools/segment/sequence.py:
steps between event types, where each type falls, time to convert, sessions).

Later data (``segscope assign``, ``drift``) is measured with a fitted run's
:class:`FeatureLayout`: the same columns in the same order (the run's categories and
event types, its transaction-log reading) and the run's own scaling, so its users land
in the fitted run's space. A column the later data cannot fill is 0 where absence
means none (no purchases: no spend) and a gap (filled with the run's median) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.data.items import split_categories
from tools.segment.sequence import add_order_features, is_order_feature, order_label

MAX_EVENT_TYPES = 8
MAX_CATEGORIES = 25
RATING_TYPES = ("rating", "review")
PURCHASE_TYPES = ("purchase",)
RETURN_TYPE = "return"
DAY_SECONDS = 86400.0


# Every feature's label (what a marketer reads) and unit, defined here only: describe, the
# traits and the report read them from the specs built with them. A transaction log (every
# event a purchase or a return) counts orders, so a few features read differently there.
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "frequency": ("events", "count"),
    "distinct_items": ("distinct items", "count"),
    "recency_days": ("days since last activity", "days"),
    "span_days": ("days active (first to last)", "days"),
    "monetary": ("total spend", "money"),
    "purchases": ("purchases", "orders"),
    "returns": ("returns (orders with a return)", "orders"),
    "avg_order_value": ("average order value", "money"),
    "basket_size": ("units per order", "count"),
    "tenure_days": ("days since first purchase", "days"),
    "median_gap_days": ("median days between orders", "days"),
    "rating_mean": ("average rating", "rating"),
    "rating_spread": ("spread of ratings", "rating"),
    "avg_price": ("average price of items", "money"),
    "text_share": ("share of events with written text", "share"),
    "diversity": ("category diversity (entropy)", "ratio"),
}
VARIANT_LABELS: dict[tuple[str, str], tuple[str, str]] = {
    ("frequency", "orders"): ("orders", "orders"),
    ("recency_days", "purchase"): ("days since last purchase", "days"),
    ("monetary", "net"): ("net spend", "money"),
    ("basket_size", "lines"): ("lines per order", "count"),
}


def feature_label(name: str, variant: str = "") -> tuple[str, str]:
    """(label, unit) of feature ``name`` (in a ``variant`` reading), including the per-category and per-event-type shares."""
    if (name, variant) in VARIANT_LABELS:
        return VARIANT_LABELS[(name, variant)]
    ordered = order_label(name)  # the order block's (tools/segment/sequence.py)
    if ordered is not None:
        return ordered
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
    unit: str  # "days" | "hours" | "minutes" | "orders" | "count" | "money" | "share" | "rating" | "ratio"


@dataclass(frozen=True)
class BehaviourFeatures:
    user_ids: np.ndarray  # str, aligned with rows
    specs: tuple[FeatureSpec, ...]
    raw: np.ndarray  # float64 (n_users, n_features), NaN where undefined
    scaled: np.ndarray  # float32, standardised, no NaN
    currency: str | None = None  # the symbol of "money" features ("$"), None when the data does not say

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def _log_columns(specs: list[FeatureSpec]) -> list[int]:
    return [i for i, s in enumerate(specs) if s.unit in ("days", "hours", "minutes", "orders", "count", "money")]


@dataclass(frozen=True)
class FeatureScale:
    """How :func:`scale_features` standardised a run's columns, to apply as is to later users."""

    logged: np.ndarray  # bool per column: log1p first
    fill: np.ndarray  # the median that fills a gap (after the log)
    mean: np.ndarray
    std: np.ndarray

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` scaled exactly as the fitted users were (the same arithmetic, so the same users give the same bits)."""
        x = raw.astype(np.float64, copy=True)
        for j in np.flatnonzero(self.logged):
            x[:, j] = np.log1p(np.clip(x[:, j], 0, None))
        for j in range(x.shape[1]):
            col = x[:, j]
            col[~np.isfinite(col)] = self.fill[j]
            x[:, j] = (col - self.mean[j]) / self.std[j] if self.std[j] > 1e-12 else 0.0
        return x.astype(np.float32)


def fit_scale(raw: np.ndarray, specs: list[FeatureSpec] | tuple[FeatureSpec, ...], reference: np.ndarray | None = None) -> FeatureScale:
    """Log heavy tails, then each column's median (of its known values), mean and standard deviation,
    all of the ``reference`` rows (a mask; None: all rows): flagged outliers set none of them."""
    x = raw.astype(np.float64, copy=True)
    ref = np.ones(len(x), dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    logged = np.zeros(x.shape[1], dtype=bool)
    logged[_log_columns(list(specs))] = True
    fill, mean, std = np.zeros(x.shape[1]), np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        col = np.log1p(np.clip(x[:, j], 0, None)) if logged[j] else x[:, j]
        finite = np.isfinite(col)
        known = col[finite & ref]
        fill[j] = np.median(known) if len(known) else 0.0
        col = np.where(finite, col, fill[j])
        mean[j], std[j] = col[ref].mean(), col[ref].std()
    return FeatureScale(logged, fill, mean, std)


@dataclass(frozen=True)
class FeatureLayout:
    """A fitted run's features: which, in what order, read how, scaled how (module docstring)."""

    names: tuple[str, ...]
    transaction_log: bool
    scale: FeatureScale
    # When the fitted data ended (recency and tenure are measured to it); None: each later data's own end.
    # A run profiled in parts (tools/distributed) sets it, so every part measures to the population's end.
    end: float | None = None


# Features a user without the events behind them has at 0 (no purchases: no spend); every other missing one is a gap.
ORDER_FEATURES = ("avg_order_value", "basket_size", "tenure_days", "median_gap_days")
ZERO_WHEN_ABSENT = ("monetary", "purchases", "returns", "distinct_items", "text_share", "diversity")


def is_transaction_log(events: pd.DataFrame) -> bool:
    """Every event a purchase or a return, with at least one purchase: orders are the unit."""
    etype = events["event_type"].astype(str)
    purchases = etype.isin(PURCHASE_TYPES).to_numpy()
    return bool(purchases.any() and (purchases | (etype == RETURN_TYPE).to_numpy()).all())


def layout_of(features: BehaviourFeatures, events: pd.DataFrame, population: np.ndarray | None = None) -> FeatureLayout:
    """The layout of features computed (without a layout) from ``events``; ``population`` (a mask over
    ``features.user_ids``; None: all) names the users who decided it, as in :func:`compute_features`."""
    if population is not None:  # is_transaction_log reads the event types alone
        kept = events["user_id"].isin(pd.Index(features.user_ids[np.asarray(population, dtype=bool)])).to_numpy()
        events = events.loc[kept, ["event_type"]]
    return FeatureLayout(tuple(features.names), is_transaction_log(events), fit_scale(features.raw, features.specs, population))


def compute_features(
    data: Dataset, user_ids: np.ndarray, population: np.ndarray | None = None, layout: FeatureLayout | None = None,
    order: bool = True,
) -> BehaviourFeatures:
    """Behaviour features for ``user_ids`` (in that order) from ``data.events``.

    ``population`` (a boolean mask over ``user_ids``; None: everyone) names the users whose
    events decide what the data is (which event types are common, the leading categories,
    whether it is a transaction log, when it ends) and whose values set the scaling.
    Flagged outliers are left out of it, so everyone else's features are what they would
    be without them. With ``layout`` (a fitted run's), its columns and scaling instead.
    ``order`` False leaves out the order block (tools/segment/sequence.py): order-blind
    features; a layout has the order features it names.
    """
    ev = data.events
    uid_index = pd.Index(user_ids)
    codes = uid_index.get_indexer(ev["user_id"])
    n = len(user_ids)
    cols: dict[str, np.ndarray] = {}
    specs: list[FeatureSpec] = []

    def add(name: str, values: np.ndarray, variant: str = "") -> None:
        specs.append(FeatureSpec(name, *feature_label(name, variant)))
        cols[name] = np.asarray(values, dtype=np.float64)

    counts = np.bincount(codes, minlength=n).astype(np.float64)
    etype = ev["event_type"].astype(str)
    values = ev["value"].to_numpy(dtype=np.float64)
    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    # The population's events: what the data is like is decided by them.
    pop = np.ones(len(ev), dtype=bool) if population is None else np.asarray(population, dtype=bool)[codes] & (codes >= 0)
    purchases = etype.isin(PURCHASE_TYPES).to_numpy()
    returns = (etype == RETURN_TYPE).to_numpy()
    pure = is_transaction_log(ev[pop]) if layout is None else layout.transaction_log  # a transaction log: orders are the unit
    wanted = None if layout is None else set(layout.names)
    has_orders = "order_id" in ev and bool(ev["order_id"][pop].notna().any())
    if layout is not None and "order_id" in ev:  # the run's order features, whether or not these users have order ids
        has_orders = any(name in layout.names for name in ORDER_FEATURES)
    orders = _orders(ev, codes, purchases, ts) if purchases.any() else None
    if pure and orders is not None:
        add("frequency", orders.count(n), "orders")
    else:
        add("frequency", counts)
    if ev["item_id"].notna().any():
        distinct = ev.assign(_u=codes).dropna(subset=["item_id"]).drop_duplicates(["_u", "item_id"])
        add("distinct_items", np.bincount(distinct["_u"], minlength=n))

    end = layout.end if layout is not None and layout.end is not None else data_end(ts, pop)
    if np.isfinite(ts).any():
        reference = end
        if pure and orders is not None:
            add("recency_days", (reference - orders.last(n)) / DAY_SECONDS, "purchase")
        else:
            frame = pd.DataFrame({"u": codes, "t": ts}).dropna()
            last = frame.groupby("u")["t"].max().reindex(range(n)).to_numpy()
            first = frame.groupby("u")["t"].min().reindex(range(n)).to_numpy()
            add("recency_days", (reference - last) / DAY_SECONDS)
            add("span_days", (last - first) / DAY_SECONDS)

    if purchases.any() or returns.any():
        money = purchases | returns
        if np.isfinite(values[money]).any():
            spend = np.bincount(codes[money], weights=np.nan_to_num(values[money]), minlength=n)
            add("monetary", spend, "net" if returns.any() else "")
        if orders is not None and not pure:
            add("purchases", orders.count(n))
        if orders is not None and (pure or has_orders):
            _add_order_features(orders, n, end, add)
        if returns.any():
            returned = _orders(ev, codes, returns, ts)
            add("returns", returned.count(n))

    type_counts = etype[(etype != RETURN_TYPE).to_numpy() & pop].value_counts()  # returns have their own feature
    common = [t for t in type_counts.index[:MAX_EVENT_TYPES] if type_counts[t] >= 0.01 * pop.sum()]
    # Order means something with two common kinds of activity besides rating, timed, outside a pure transaction log:
    # a ratings log (with tags: ml-latest-small) or an invoice log has no funnel to read.
    ordered = order and len(set(common) - set(RATING_TYPES)) > 1 and not pure and bool(np.isfinite(ts[pop]).any())
    if wanted is not None:  # the run's event types, whichever are common here
        common = [n[len("share_"):] for n in layout.names if n.startswith("share_")]  # type: ignore[union-attr]
    if (len(common) > 1 or (wanted is not None and common)) and not pure:
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
    if (texts.any() and not texts.all()) if wanted is None else "text_share" in wanted:
        add("text_share", np.bincount(codes[texts], minlength=n) / np.maximum(counts, 1))

    if data.items is not None and data.items["category"].notna().any():
        top = None if layout is None else [x[len("category_"):] for x in layout.names if x.startswith("category_")]
        if top is None or top:
            _add_category_shares(ev, codes, n, data.items, add, pop, top)

    order_names = None if layout is None else tuple(x for x in layout.names if is_order_feature(x))
    if ordered if layout is None else order_names:
        add_order_features(ev, codes, n, pop, add, order_names)

    if layout is not None:
        return _laid_out(layout, specs, cols, np.asarray(user_ids), data.currency)
    raw = np.column_stack([cols[s.name] for s in specs]) if specs else np.zeros((n, 0))
    return BehaviourFeatures(np.asarray(user_ids), tuple(specs), raw, scale_features(raw, specs, population), data.currency)


def data_end(ts: np.ndarray, pop: np.ndarray) -> float:
    """When the data ends: the population's last event (everyone's when it has none; NaN without timestamps)."""
    known = ts[pop & np.isfinite(ts)]
    if len(known):
        return float(known.max())
    return float(np.nanmax(ts)) if np.isfinite(ts).any() else float("nan")


def _laid_out(layout: FeatureLayout, specs: list[FeatureSpec], cols: dict[str, np.ndarray], user_ids: np.ndarray,
              currency: str | None) -> BehaviourFeatures:
    """The layout's columns, in its order and scaling: what this data lacks is 0 or a gap (module docstring)."""
    by_name = {s.name: s for s in specs}
    n = len(user_ids)
    columns, out_specs = [], []
    for name in layout.names:
        if name in cols:
            columns.append(cols[name])
        else:
            zero = name in ZERO_WHEN_ABSENT or name.startswith(("share_", "category_"))
            columns.append(np.zeros(n) if zero else np.full(n, np.nan))
        out_specs.append(by_name.get(name) or FeatureSpec(name, *feature_label(name)))
    raw = np.column_stack(columns) if columns else np.zeros((n, 0))
    return BehaviourFeatures(user_ids, tuple(out_specs), raw, layout.scale.apply(raw), currency)


@dataclass(frozen=True)
class _Orders:
    """One row per (user, order): its user code, time (first line), units, spend and number of lines."""

    table: pd.DataFrame  # columns u, t, q, v, lines; sorted by u then t

    def count(self, n: int) -> np.ndarray:
        return np.bincount(self.table["u"].to_numpy(), minlength=n).astype(np.float64)

    def per_user(self, column: str, how: str, n: int) -> np.ndarray:
        return self.table.groupby("u")[column].agg(how).reindex(range(n)).to_numpy(dtype=np.float64)

    def last(self, n: int) -> np.ndarray:
        return self.per_user("t", "max", n)


def _orders(ev: pd.DataFrame, codes: np.ndarray, lines: np.ndarray, ts: np.ndarray) -> _Orders:
    """Group ``lines`` into orders: by order id, else by the user's timestamp, else one line one order."""
    rows = np.flatnonzero(lines)
    key = pd.Series(rows.astype(str), dtype=object)
    t = ts[rows]
    timed = np.isfinite(t)
    key[timed] = "@" + pd.Series(t[timed]).astype(str).to_numpy()
    if "order_id" in ev:
        oid = ev["order_id"].iloc[rows]
        has = oid.notna().to_numpy()
        key[has] = "#" + oid[has].astype(str).to_numpy()
    qty = ev["quantity"].to_numpy(dtype=np.float64)[rows] if "quantity" in ev else np.full(len(rows), np.nan)
    frame = pd.DataFrame({"u": codes[rows], "k": key.to_numpy(), "t": t, "q": np.abs(qty),
                          "v": ev["value"].to_numpy(dtype=np.float64)[rows]})  # fmt: skip
    grouped = frame.groupby(["u", "k"], sort=False)
    table = pd.DataFrame(
        {"t": grouped["t"].min(), "q": grouped["q"].sum(min_count=1), "v": grouped["v"].sum(min_count=1), "lines": grouped.size()}
    )
    return _Orders(table.reset_index().drop(columns="k").sort_values(["u", "t"], kind="stable"))


def _add_order_features(orders: _Orders, n: int, end: float, add) -> None:
    """Average order value, basket size, tenure and median days between orders."""
    table = orders.table
    if table["v"].notna().any():
        add("avg_order_value", orders.per_user("v", "mean", n))
    if table["q"].notna().any():
        add("basket_size", orders.per_user("q", "mean", n))
    else:
        add("basket_size", orders.per_user("lines", "mean", n), "lines")
    if np.isfinite(table["t"].to_numpy(dtype=np.float64)).any():
        first = orders.per_user("t", "min", n)
        add("tenure_days", (end - first) / DAY_SECONDS)
        gaps = table.assign(gap=table.groupby("u")["t"].diff() / DAY_SECONDS).dropna(subset=["gap"])
        median = gaps.groupby("u")["gap"].median().reindex(range(n)).to_numpy(dtype=np.float64)
        add("median_gap_days", median)


def _add_category_shares(ev: pd.DataFrame, codes: np.ndarray, n: int, items: pd.DataFrame, add, pop: np.ndarray,
                         top: list[str] | None = None) -> None:
    """Share of each user's activity in each of the most common categories (the population's, or ``top``: a fitted run's), and its entropy."""
    cats = split_categories(items["category"])
    exploded = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "cat": cats.to_numpy()}).explode("cat").dropna()
    if exploded.empty:
        return
    # An item in k categories counts 1/k towards each, so shares sum to 1 per user.
    exploded["w"] = 1.0 / exploded.groupby("item_id")["cat"].transform("size")
    joined = pd.DataFrame({"u": codes, "item_id": ev["item_id"].to_numpy(), "p": pop}).merge(exploded, on="item_id", how="inner")
    if joined.empty:
        return
    if top is None:
        totals = joined[joined["p"]].groupby("cat")["w"].sum().sort_values(ascending=False)
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


def scale_features(
    raw: np.ndarray, specs: list[FeatureSpec] | tuple[FeatureSpec, ...], reference: np.ndarray | None = None
) -> np.ndarray:
    """Log heavy tails, fill gaps with the median, standardise; constant columns become 0.

    The median, mean and standard deviation are those of the ``reference`` rows (all rows when None).
    """
    return fit_scale(raw, specs, reference).apply(raw)
