"""Changed users as events, profiled and placed by a fitted run's own model: the ground truth of ``segscope whatif``.

A counterfactual is never a nudge of a feature vector. It is a set of events added to the
user's own history (``Step``s), and the changed user is profiled exactly as ``segscope
assign`` profiles anyone (tools/segment/profiles.py ``build_profiles`` with the run's
:class:`~tools.segment.recipe.ProfileRecipe`: feature layout and scaling, the text block
from the items touched with ``_event_weights``, block scales, the collaborative basis) and
placed by the run's :class:`~tools.segment.fitted.FittedSegments`. So every derived
feature moves coherently by construction: one more purchase raises orders, spend (at the
user's own average order value), the category's share (the others' shares fall, the sum
stays 1), diversity, the median gap between orders; a new visit lowers recency.

What may be added (feasibility): events are only added, never removed or moved, so counts
never fall and past dates are not rewritten. Added events fall inside the user's own
active period (the midpoint of the widest gap between their activity dates), so first-seen,
tenure and recency stay; a ``visit`` step is the one way to lower recency: one event after
the last, which also adds an event. A user with a single activity date has no gap to add
in: their added purchases come after a visit.

The data's end ("now") is the run's: an anchor row at the run's last timestamp rides along
with every batch, so recency is measured to where the fit measured it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tools.core.dataset import EVENT_COLUMNS
from tools.embed.cache import EmbeddingCache
from tools.segment.assign import FittedRun
from tools.segment.features import BehaviourFeatures
from tools.segment.fitted import Placement
from tools.segment.profiles import build_profiles

DAY = 86400.0
ANCHOR = "\x00whatif-end"


@dataclass(frozen=True)
class Step:
    """One unit change: one event (an order, for a transaction log) of ``event_type``.

    ``kind``: "add" (inside the user's active period; on the next typical item of ``category`` or ``item_id``)
    or "visit" (a new last activity, ``recency_days`` before the data's end, on the user's own usual item).
    ``size``: a purchase's value and units as a multiple of the user's own average order; ``value``: a rating.
    """

    kind: str
    event_type: str
    category: str | None = None
    item_id: str | None = None
    size: float = 1.0
    value: float | None = None
    recency_days: float | None = None

    @property
    def key(self) -> tuple:
        return (self.kind, self.event_type, self.category or "", self.item_id or "", self.size, self.value or -1.0,
                self.recency_days or -1.0)  # fmt: skip


class _LazyEmbedder:
    """The run's embedder, built only if a text is missing from the cache (normally never: every text was embedded by the fit)."""

    def __init__(self, fitted: FittedRun) -> None:
        self._fitted, self._real = fitted, None
        self.name = fitted.embedder_name
        self.cache_name = fitted.vectors_name
        self.dim = int(fitted.run.item_vectors.shape[1]) if fitted.run.item_vectors.size else 1

    def encode(self, texts, progress=None):
        if self._real is None:
            self._real = self._fitted.make_embedder()
        return self._real.encode(texts, progress=progress)


class _ReadOnlyCache(EmbeddingCache):
    """The workspace's embedding cache, read without its lock and never written (a what-if changes nothing)."""

    def save(self) -> None:
        return None


@dataclass(frozen=True)
class UserHistory:
    """One user's events and the figures their added events are made of."""

    user_id: str
    events: pd.DataFrame
    end: float  # the run's last timestamp
    main_type: str  # the user's most frequent event type (what a visit is)
    own_item: str | None  # the item they touch most (what a visit touches)
    order_value: float  # their average order value (nan without spend)
    order_units: float  # their average units per order (nan without quantities)
    purchase_value: float  # their average purchase line value (nan without)
    transaction_log: bool

    @property
    def dates(self) -> np.ndarray:
        ts = self.events["timestamp"].to_numpy(dtype=np.float64)
        return np.unique(ts[np.isfinite(ts)])

    @property
    def recency_days(self) -> float:
        dates = self.dates
        return float((self.end - dates.max()) / DAY) if len(dates) else float("nan")


def user_history(fitted: FittedRun, user_id: str) -> UserHistory:
    events = fitted.run.data.events
    mine = events[events["user_id"].astype(str) == str(user_id)].reset_index(drop=True)
    ts = events["timestamp"].to_numpy(dtype=np.float64)
    ts = ts[fitted.run.fitted[pd.Index(fitted.run.user_ids).get_indexer(events["user_id"])]]
    ts = ts[np.isfinite(ts)]
    end = float(ts.max()) if len(ts) else float("nan")  # a log without dates has no end (not an All-NaN warning)
    types = mine["event_type"].astype(str)
    items = mine["item_id"].dropna().astype(str)
    buys = mine[types.isin(["purchase"]).to_numpy()]
    layout = fitted.recipe.features
    transaction_log = bool(layout is not None and layout.transaction_log)
    order_value = order_units = purchase_value = float("nan")
    if len(buys):
        key = buys["order_id"].astype(object).where(buys["order_id"].notna(), buys["timestamp"].astype(str))
        per_order = buys.assign(_k=key.to_numpy()).groupby("_k")
        order_value = float(per_order["value"].sum(min_count=1).mean())
        order_units = float(per_order["quantity"].apply(lambda q: np.abs(q).sum(min_count=1)).mean())
        purchase_value = float(np.nanmean(buys["value"].to_numpy(dtype=np.float64))) if buys["value"].notna().any() else float("nan")
    return UserHistory(str(user_id), mine, end, str(types.mode().iloc[0]) if len(types) else "purchase",
                       str(items.mode().iloc[0]) if len(items) else None, order_value, order_units, purchase_value, transaction_log)  # fmt: skip


def materialise(history: UserHistory, steps: tuple[Step, ...], pick_item, price: dict[str, float]) -> list[dict] | None:
    """The events ``steps`` add to ``history`` (None when they cannot be added: no room in a one-date history).

    ``pick_item(step, used)`` names the item an "add" step touches (the next typical one not used yet).
    """
    rows: list[dict] = []
    dates = list(history.dates)
    visits = [s for s in steps if s.kind == "visit"]
    if len(visits) > 1:
        return None
    used: set[str] = set()
    for step in [*visits, *[s for s in steps if s.kind == "add"]]:
        if step.kind == "visit":
            t = round(history.end - float(step.recency_days or 0.0) * DAY)
            if dates and t <= max(dates):
                return None  # a visit is after the last activity: recency only goes down
            item = history.own_item
        else:
            if len(dates) < 2:
                if step.event_type == "purchase":
                    return None  # no gap to put an order in without a new visit
                t = dates[-1] if dates else history.end
            else:
                gaps = np.diff(dates)
                i = int(np.argmax(gaps))
                t = round(dates[i] + gaps[i] / 2.0)
                if t <= dates[i] or t >= dates[i + 1]:
                    return None
            item = pick_item(step, used)
            if item is not None:
                used.add(item)
        if t not in dates:
            dates = sorted([*dates, t])
        rows += _event_rows(history, step, item, float(t), price)
    return rows


def _event_rows(history: UserHistory, step: Step, item: str | None, t: float, price: dict[str, float]) -> list[dict]:
    base = {c: np.nan for c in EVENT_COLUMNS}
    base.update(user_id=history.user_id, item_id=item if item is not None else np.nan, timestamp=t, text=np.nan, order_id=np.nan)
    etype = history.main_type if step.kind == "visit" else step.event_type
    if history.transaction_log:
        etype = "purchase"
    base["event_type"] = etype
    if etype == "purchase":
        if history.transaction_log or not np.isfinite(price.get(item or "", np.nan)):
            value = history.order_value if history.transaction_log else history.purchase_value
        else:
            value = price[item]  # type: ignore[index]
        base["value"] = float(value) * step.size if np.isfinite(value) else np.nan
        if np.isfinite(history.order_units):
            base["quantity"] = max(1.0, round(history.order_units * step.size))
    elif step.value is not None:
        base["value"] = float(step.value)
    elif etype in ("rating", "review") and history.events["value"].notna().any():
        base["value"] = float(history.events["value"].median())
    return [base]


@dataclass(frozen=True)
class Placed:
    """Changed users (one row per candidate) as the run's model sees them."""

    placement: Placement
    features: BehaviourFeatures | None
    text: np.ndarray


class Evaluator:
    """Profiles candidate histories in a batch through the run's recipe and places them with its model."""

    def __init__(self, fitted: FittedRun) -> None:
        from tools.core.workspace import Workspace

        self.fitted = fitted
        self.data = fitted.run.data
        self.embedder = _LazyEmbedder(fitted)
        self.cache = _ReadOnlyCache(Workspace(fitted.run.workspace).cache_dir, fitted.vectors_name)
        events = self.data.events
        ts = events["timestamp"].to_numpy(dtype=np.float64)
        fitted_rows = fitted.run.fitted[pd.Index(fitted.run.user_ids).get_indexer(events["user_id"])]
        ts = np.where(fitted_rows & np.isfinite(ts), ts, -np.inf)  # the fit's end: its own users' last event
        self._anchor = events.iloc[[int(np.argmax(ts))]].assign(user_id=ANCHOR)
        self.calls = 0

    def place(self, base: pd.DataFrame, added: list[list[dict]]) -> Placed:
        """``base`` (the user's events) plus each list of added event rows, profiled as one user each, in order."""
        self.calls += 1
        n = len(added)
        copies = base.iloc[np.tile(np.arange(len(base)), n)].assign(user_id=np.repeat([f"\x00c{i}" for i in range(n)], len(base)))
        extra = [dict(r, user_id=f"\x00c{i}") for i, rows in enumerate(added) for r in rows]
        frames = [copies, pd.DataFrame(extra, columns=list(EVENT_COLUMNS))] if extra else [copies]
        events = pd.concat([*frames, self._anchor], ignore_index=True)
        for column in ("user_id", "item_id", "event_type", "text", "order_id"):
            events[column] = events[column].astype(self.data.events[column].dtype)
        data = replace(self.data, events=events, users=None, source=f"{self.data.source} (what if)")
        profiles = build_profiles(data, self.embedder, self.cache, recipe=self.fitted.recipe)
        order = pd.Index(profiles.user_ids.astype(str)).get_indexer([f"\x00c{i}" for i in range(n)])
        mine = profiles.rows(order)
        placement = self.fitted.segments.place(mine.fused, mine.features)
        return Placed(placement, mine.features, mine.text)
