"""What would move a user into another segment: the smallest feasible change the saved model agrees with.

``what_would_move(fitted, user, target)`` searches over unit steps of the user's own behaviour
(tools/segment/whatif_events.py: one more purchase in a category at their own average order
value, one more rating, a new visit that lowers recency), a beam search of ``BEAM`` candidate
histories a step deeper each round, up to ``max_changes`` steps. Every candidate is profiled
and placed by the run's real model; nothing is linearised. Candidates are ranked by how far
they still are from the target (the top-level margin to the target's centroid, plus the
margin of every sub-segment split on the way down), and among those that arrive, the one
with the smallest change size wins: the sum over behaviour features of |Δ| in the run's
standardised units (|Δ| ÷ the feature's spread, after the log the fit takes of counts,
days and money). Steps that turn out unnecessary are then dropped one at a time while the
model still places the user in the target, and the final history is profiled and placed again
on its own as the verification.

Steps on items are the target segment's most typical ones (``typical_items``: reached by a
larger share of its members than of everyone else), so a change of interests is phrased as
such and the items are named. When nothing within the bound arrives, the answer says why
(tools/segment/whatif_text.py ``reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError
from tools.data.items import split_categories
from tools.segment.assign import FittedRun
from tools.segment.whatif_events import Evaluator, Placed, Step, UserHistory, materialise, user_history

BEAM = 4
MAX_CHANGES = 10
MAX_CATEGORIES = 6
MAX_ITEMS = 6
MAX_BATCH_ROWS = 250_000  # events profiled in one batch: the beam narrows for users with long histories
TEXT_HEAVY = 0.5  # event types mostly carrying written text (reviews, tags) are not proposed: a text cannot be invented


@dataclass(frozen=True)
class Target:
    """A segment and how to arrive there: its top-level segment and the sub-segment splits on the way down."""

    segment_id: int
    top: int
    is_top: bool  # a top-level segment: arriving at its top level is enough
    path: tuple[tuple[int, int], ...]  # (index of the split in FittedSegments.splits, child side 0/1)


@dataclass(frozen=True)
class Candidate:
    steps: tuple[Step, ...]
    rows: tuple[dict, ...]  # the events the steps add (tools/core/dataset.py EVENT_COLUMNS)
    leaf: int
    top: int
    gap: float
    size: float
    raw: np.ndarray | None

    @property
    def added(self) -> pd.DataFrame:
        from tools.core.dataset import EVENT_COLUMNS

        return pd.DataFrame(list(self.rows), columns=list(EVENT_COLUMNS))


@dataclass(frozen=True)
class Search:
    """What the search found: the start, the best arrival (None when none), the nearest miss, and its cost."""

    user_id: str
    target: Target
    start: Candidate
    best: Candidate | None
    nearest: Candidate
    reached_top: Candidate | None  # the cheapest candidate in the target's top-level segment (for a sub-segment target)
    verified: bool
    evaluations: int
    max_changes: int
    history: UserHistory
    items: dict[str, str] = field(default_factory=dict)  # item id -> title, of the items named


def target_of(fitted: FittedRun, segment_id: int) -> Target:
    """The target's top-level segment and split path; ParameterError for an id the run does not have."""
    segs = fitted.segments
    ids = {int(s["id"]) for s in fitted.run.summary["segments"]}
    if segment_id not in ids:
        raise ParameterError(f"--to {segment_id}: the run has no segment {segment_id} (segments are {', '.join(map(str, sorted(ids)))})",
                             "give a segment id from `segscope describe` or segments.json")
    seg = fitted.run.segment(segment_id)
    if seg.get("parent") is None and not segs.root:
        return Target(segment_id, segment_id, True, ())
    internal = [i for i, s in segs.leaf_map.items() if s == segment_id]
    if not internal:  # a top-level segment of a root run, or a parent: arriving at its top level is enough
        return Target(segment_id, int(seg.get("parent") if seg.get("parent") is not None else segment_id), True, ())
    node, path = internal[0], []
    while True:
        parent = [(j, sp) for j, sp in enumerate(segs.splits) if node in sp.children]
        if not parent:
            break
        j, sp = parent[0]
        path.append((j, sp.children.index(node)))
        node = sp.leaf
    top = int(seg["parent"]) if seg.get("parent") is not None else segment_id
    return Target(segment_id, top, segs.root, tuple(reversed(path)))


def typical_items(fitted: FittedRun, target: Target, n: int = 40) -> pd.DataFrame:
    """The target's items by typicality: share of its members who touched each, minus everyone else's share.

    Columns item_id, title, categories (list), lift_reach; the best first; empty without items.
    """
    run = fitted.run
    ev = run.data.events.dropna(subset=["item_id"])
    if ev.empty:
        return pd.DataFrame(columns=["item_id", "title", "categories", "reach"])
    labels = run.top_labels if (target.is_top and run.top_labels is not None) else run.labels
    members = set(np.asarray(run.user_ids)[(labels == target.segment_id) & run.fitted].tolist())
    pairs = ev[["user_id", "item_id"]].drop_duplicates()
    inside = pairs["user_id"].isin(members).to_numpy()
    n_in, n_out = max(len(members), 1), max(len(run.user_ids) - len(members), 1)
    reach = (pd.Series(inside.astype(float)).groupby(pairs["item_id"].to_numpy()).sum() / n_in
             - pd.Series((~inside).astype(float)).groupby(pairs["item_id"].to_numpy()).sum() / n_out)  # fmt: skip
    reach = reach[reach > 0].sort_values(ascending=False).head(n * 10)
    items = run.data.items
    out = pd.DataFrame({"item_id": reach.index.astype(str), "reach": reach.to_numpy()})
    if items is not None:
        meta = items.drop_duplicates("item_id").set_index("item_id")
        out["title"] = out["item_id"].map(meta["title"]).fillna(out["item_id"]).astype(str)
        out["categories"] = split_categories(out["item_id"].map(meta["category"])).to_numpy()
    else:
        out["title"], out["categories"] = out["item_id"], [[] for _ in range(len(out))]
    return out.reset_index(drop=True)


class WhatIfSearch:
    """One user, one target: the steps on offer, their evaluation by the real model, the beam search."""

    def __init__(self, fitted: FittedRun, user_id: str, target: Target, max_changes: int = MAX_CHANGES,
                 evaluator: Evaluator | None = None) -> None:
        self.fitted, self.target, self.max_changes = fitted, target, max_changes
        self.evaluator = evaluator or Evaluator(fitted)
        self.history = user_history(fitted, user_id)
        self.typical = typical_items(fitted, target)
        items = fitted.run.data.items
        self.price = {} if items is None else items.dropna(subset=["price"]).drop_duplicates("item_id").set_index("item_id")["price"].astype(float).to_dict()
        self.touched = set(self.history.events["item_id"].dropna().astype(str))
        names = list(fitted.recipe.features.names) if fitted.recipe.features is not None else []
        self.names = names
        self._base_scaled: np.ndarray | None = None
        self._pools: dict[str, list[str]] = {}
        self.steps = self._steps()

    # -- what may be done ------------------------------------------------------------------------
    def _members_raw(self) -> pd.DataFrame:
        run = self.fitted.run
        labels = run.top_labels if (self.target.is_top and run.top_labels is not None) else run.labels
        rows = (labels == self.target.segment_id) & run.fitted
        return pd.DataFrame(run.feature_raw[rows], columns=list(run.feature_names))

    def _steps(self) -> list[Step]:
        h, ev = self.history, self.fitted.run.data.events
        if self.fitted.run.summary["data"]["kind"] != "behaviour":
            return []
        members = self._members_raw()
        if h.transaction_log:
            types = ["purchase"]
        else:
            present = ev["event_type"].astype(str)
            texty = ev["text"].notna().groupby(present.to_numpy()).mean()
            types = [t for t in present.value_counts().index[:6] if t != "return" and texty.get(t, 0.0) <= TEXT_HEAVY]
        mine = pd.Series(self.fitted.run.feature_raw[self.fitted.run.row_of(h.user_id)], index=list(self.fitted.run.feature_names))
        cats = [n[len("category_"):] for n in self.names if n.startswith("category_")]
        wanted = sorted(cats, key=lambda c: -(members[f"category_{c}"].mean() - np.nan_to_num(mine.get(f"category_{c}", 0.0))))
        wanted = [c for c in wanted if members[f"category_{c}"].mean() > np.nan_to_num(mine.get(f"category_{c}", 0.0))][:MAX_CATEGORIES]
        ratings = self._rating_values(ev)
        steps: list[Step] = []
        for t in types:
            values = ratings if t in ("rating", "review") else [None]
            if cats:
                targets = [(c, None) for c in wanted]
            else:
                targets = [(None, i) for i in self.typical["item_id"].head(MAX_ITEMS)]
            if t == "purchase" or not targets:
                targets.append((None, h.own_item))  # more of what they already do
            for cat, item in targets:
                for v in values:
                    steps.append(Step("add", t, cat, item, 1.0, v))
        if "avg_order_value" in self.names and np.isfinite(h.order_value):
            steps += [Step("add", "purchase", None, h.own_item, m) for m in (0.5, 2.0)]
        if "recency_days" in self.names and np.isfinite(h.recency_days) and h.recency_days >= 1:
            r = h.recency_days
            options = {round(float(q)) for q in np.nanquantile(members["recency_days"], [0.1, 0.25, 0.5, 0.75])}
            options |= {round(r - d) for d in (7, 30, 90)}
            steps += [Step("visit", h.main_type, recency_days=float(o)) for o in sorted(options) if 0 <= o < r - 0.5]
        return steps

    def _rating_values(self, ev: pd.DataFrame) -> list[float | None]:
        rated = ev[ev["event_type"].astype(str).isin(["rating", "review"])]["value"].dropna()
        if rated.empty:
            return [None]
        return sorted({float(rated.quantile(0.1)), float(rated.quantile(0.9))})

    def _category_items(self, category: str) -> list[str]:
        if category not in self._pools:
            ids = [i for i, cs in zip(self.typical["item_id"], self.typical["categories"]) if category in cs]
            if not ids and self.fitted.run.data.items is not None:  # the category has no typical item: any of its items
                items = self.fitted.run.data.items
                ids = items["item_id"][[category in cs for cs in split_categories(items["category"])]].astype(str).tolist()
            self._pools[category] = ids
        return self._pools[category]

    def pick_item(self, step: Step, used: set[str]) -> str | None:
        if step.item_id is not None or step.category is None:
            return step.item_id
        ids = self._category_items(step.category)
        for pass_ in (0, 1):  # new items first, then ones they already touched
            for i in ids:
                if i not in used and (pass_ or i not in self.touched):
                    return i
        return ids[0] if ids else None

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, plans: list[tuple[Step, ...]]) -> list[Candidate]:
        added = [materialise(self.history, p, self.pick_item, self.price) for p in plans]
        ok = [i for i, a in enumerate(added) if a is not None]
        if not ok:
            return []
        placed = self.evaluator.place(self.history.events, [added[i] for i in ok])
        gaps = self._gaps(placed)
        base = self._base_scaled
        out = []
        for j, i in enumerate(ok):
            scaled = None if placed.features is None else placed.features.scaled[j]
            size = 0.0 if scaled is None or base is None else float(np.abs(scaled.astype(np.float64) - base).sum())
            raw = None if placed.features is None else placed.features.raw[j]
            out.append(Candidate(plans[i], tuple(added[i]), int(placed.placement.leaf[j]), int(placed.placement.top[j]), float(gaps[j]), size, raw))
        return out

    def arrived(self, c: Candidate) -> bool:
        return c.leaf == self.target.segment_id or (self.target.is_top and c.top == self.target.segment_id)

    def _gaps(self, placed: Placed) -> np.ndarray:
        """How far each candidate still is: top-level margin plus every split margin on the path (0 = there)."""
        segs, p = self.fitted.segments, placed.placement
        d = p.distances
        gap = np.zeros(len(d))
        if not segs.root:
            other = d.copy()
            other[:, self.target.top] = np.inf
            gap += np.clip(d[:, self.target.top] - other.min(axis=1), 0, None)
        if self.target.path:
            space = segs._split_space(p.space, placed.features)
            for j, side in self.target.path:
                c = segs.splits[j].centres.astype(np.float64)
                dist = np.sqrt(((space[:, None, :].astype(np.float64) - c[None]) ** 2).sum(axis=2))
                gap += np.clip(dist[:, side] - dist[:, 1 - side], 0, None)
        return gap

    # -- the search ------------------------------------------------------------------------------------
    def run(self) -> Search:
        base = self.evaluator.place(self.history.events, [[]]).features
        self._base_scaled = None if base is None else base.scaled[0].astype(np.float64)
        start = self.evaluate([()])[0]
        if self.arrived(start):
            return self._result(start, start, start, None, True)
        beam, best, nearest, reached_top = [start], None, start, None
        width = max(1, min(BEAM, MAX_BATCH_ROWS // max(1, (len(self.history.events) + 2) * max(len(self.steps), 1))))
        for _depth in range(self.max_changes):
            seen, plans = set(), []
            for c in beam:
                for s in self.steps:
                    plan = (*c.steps, s)
                    key = tuple(sorted(x.key for x in plan))
                    if key not in seen:
                        seen.add(key)
                        plans.append(plan)
            children = self.evaluate(plans)
            if not children:
                break
            arrivals = [c for c in children if self.arrived(c)]
            if self.target.path and not self.target.is_top:
                tops = [c for c in children if c.top == self.target.top]
                if tops and reached_top is None:
                    reached_top = min(tops, key=lambda c: c.size)
            if arrivals:
                best = self._prune(min(arrivals, key=lambda c: (c.size, c.gap)))
                break
            children.sort(key=lambda c: (c.gap, c.size))
            nearest = children[0] if children[0].gap < nearest.gap else nearest
            beam = children[:width]
        verified = best is not None and self._verify(best)
        return self._result(start, best if verified else None, nearest, reached_top, verified)

    def _prune(self, best: Candidate) -> Candidate:
        """Drop steps one at a time while the model still places the changed user in the target."""
        improved = True
        while improved and len(best.steps) > 1:
            improved = False
            plans = [best.steps[:i] + best.steps[i + 1:] for i in range(len(best.steps))]
            fewer = [c for c in self.evaluate(plans) if self.arrived(c)]
            if fewer:
                best, improved = min(fewer, key=lambda c: (c.size, c.gap)), True
        return best

    def _verify(self, best: Candidate) -> bool:
        """The proposal's history profiled on its own (no batch-mates) and placed by the run's model."""
        again = self.evaluate([best.steps])
        return bool(again) and self.arrived(again[0]) and again[0].rows == best.rows

    def _result(self, start, best, nearest, reached_top, verified) -> Search:
        named = set()
        for c in (best, nearest):
            if c is not None and len(c.added):
                named |= set(c.added["item_id"].dropna().astype(str))
        titles = {}
        items = self.fitted.run.data.items
        if items is not None and named:
            meta = items.drop_duplicates("item_id").set_index("item_id")["title"]
            titles = {i: str(meta.get(i, i)) for i in named}
        return Search(self.history.user_id, self.target, start, best, nearest, reached_top, verified,
                      self.evaluator.calls, self.max_changes, self.history, titles)  # fmt: skip
