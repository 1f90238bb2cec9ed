"""A what-if search as an answer: the changes in the user's own units, the items named, or why nothing reaches the target.

Changes are said as what the user would do ("2 more purchases in Books", "starts buying
Garden & Outdoor items", "a new visit 30 days after their last"), then what that does to
their features, before → after in the feature's unit ("orders 1 → 3", "days since last
purchase 120 → 30"). When no feasible change within the bound reaches the target,
``reasons`` says why: features the target's members have far less of than the user
(events cannot be undone), or more days since the last activity than the user (past dates
are not rewritten), a tenure no change can alter, a sub-segment whose parent is reached but
whose split is not, or simply more changes than the bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tools.segment.assign import FittedRun
from tools.segment.whatif import Search

ONLY_UP = ("frequency", "distinct_items", "monetary", "purchases", "span_days")  # added events can only raise these
FIXED = ("tenure_days", "returns")  # no added purchase changes when the first one was, or the returns made
VERBS = {"purchase": ("purchase", "purchases", "buying"), "view": ("view", "views", "viewing"), "cart": ("cart add", "cart adds", "adding to cart"),
         "rating": ("rating", "ratings", "rating"), "click": ("click", "clicks", "clicking"), "wishlist": ("wishlist add", "wishlist adds", "wishlisting")}  # fmt: skip


@dataclass(frozen=True)
class WhatIf:
    """The answer to "what would move this user into that segment" (frozen, JSON-ready through ``as_dict``)."""

    user_id: str
    segment_id: int  # where the user is now (leaf)
    target_id: int
    target_name: str
    reached: bool
    already: bool
    verified: bool  # the proposal re-profiled alone and placed in the target by the saved model
    changes: tuple[str, ...]  # what the user would do
    effects: tuple[str, ...]  # what it does to their features, in their units
    items: tuple[tuple[str, str], ...]  # (item id, title) of the items the changes touch
    steps: int  # unit changes (events or orders added, visits)
    size: float  # sum of |Δ| over behaviour features in standardised units
    reason: str  # why nothing was proposed ("" when something was)
    reason_code: str  # already | needs_less_history | sub_segment | beyond_bound | no_behaviour | ""
    max_changes: int
    evaluations: int

    def lines(self, quote=lambda text: text) -> list[str]:
        head = f"User {self.user_id} (segment {self.segment_id}) → segment {self.target_id} “{quote(self.target_name)}”"
        if self.already:
            inside = f" (segment {self.segment_id} is one of its sub-segments)" if self.target_id != self.segment_id else ""
            return [f"{head}: already there{inside}; nothing needs to change."]
        if not self.reached:
            return [f"{head}: no feasible change within {self.max_changes} changes reaches it. {self.reason}"]
        out = [f"{head}: {self.steps} change{'s' if self.steps != 1 else ''}"
               f"{', verified: the saved model assigns the changed profile to the target' if self.verified else ''}."]
        out += [f"- {quote(c)}" for c in self.changes]
        if self.effects:
            out.append("  which changes: " + "; ".join(self.effects))
        if self.items:
            out.append("  items such a user would most likely touch: " + ", ".join(f"{i} “{quote(t)}”" for i, t in self.items[:5]))
        return out

    def as_dict(self) -> dict:
        return {"user_id": self.user_id, "segment_id": self.segment_id, "target_id": self.target_id, "target_name": self.target_name,
                "reached": self.reached, "already": self.already, "verified": self.verified, "changes": list(self.changes),
                "effects": list(self.effects), "items": [{"item_id": i, "title": t} for i, t in self.items], "steps": self.steps,
                "size": round(self.size, 4), "reason": self.reason, "reason_code": self.reason_code, "max_changes": self.max_changes,
                "evaluations": self.evaluations}  # fmt: skip


def _specs(fitted: FittedRun) -> dict[str, tuple[str, str]]:
    feats = fitted.fit_features
    return {} if feats is None else {s.name: (s.label, s.unit) for s in feats.specs}


def fmt_value(value: float, unit: str, currency: str | None) -> str:
    if not np.isfinite(value):
        return "none"
    value = 0.0 if abs(value) < 5e-3 else float(value)  # never "-0.00"
    if unit == "money":
        return f"{currency or ''}{value:,.2f}"
    if unit == "share":
        return f"{value:.0%}"
    if unit in ("rating", "ratio"):
        return f"{value:.2f}"
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 or abs(value) >= 100 else f"{value:,.1f}"


def _changes(search: Search, fitted: FittedRun) -> list[str]:
    """One line per category (or per kind of step): what the user would do, counted in their own units."""
    best = search.best
    assert best is not None
    h, out = search.history, []
    start_raw = dict(zip(fitted.run.feature_names, fitted.run.feature_raw[fitted.run.row_of(h.user_id)]))
    cur = fitted.run.summary["data"].get("currency") or ""
    recency = _specs(fitted).get("recency_days", ("days since last activity", "days"))[0]
    for s in best.steps:
        if s.kind == "visit":
            out.append(f"a new visit {h.recency_days - s.recency_days:,.0f} days after their last ({recency} "
                       f"{h.recency_days:,.0f} → {s.recency_days:,.0f})")
    by_place: dict[str, Counter] = {}
    for s in best.steps:
        if s.kind != "add":
            continue
        place = s.category or ("new" if s.item_id not in (None, h.own_item) else "usual")
        by_place.setdefault(place, Counter())[(s.event_type, s.size, s.value)] += 1
    for place, counts in by_place.items():
        parts, first = [], None
        for (etype, size, value), n in sorted(counts.items(), key=lambda kv: -kv[1]):
            one, many, ing = VERBS.get(etype, (etype, etype + "s", etype))
            if h.transaction_log:
                one, many, ing = "order", "orders", "buying"
            first = first or ing
            what = f"{n} more {one if n == 1 else many}"
            if value is not None and etype in ("rating", "review"):
                what += f" of {value:g}"
            if size != 1.0 and np.isfinite(h.order_value):
                what += f" worth about {cur}{h.order_value * size:,.2f} ({'half' if size == 0.5 else f'{size:g}×'} their usual {cur}{h.order_value:,.2f})"
            parts.append(what)
        said = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
        if place == "usual":
            out.append(f"{said}, like their usual ones")
        elif place == "new":
            out.append(f"starts {first} the segment's typical items (a new interest): {said}")
        else:
            share = start_raw.get(f"category_{place}", np.nan)
            new = not np.isfinite(share) or share == 0
            out.append(f"starts {first} {place} items: {said} in {place}" if new else f"{said} in {place}")
    return out


def _effects(search: Search, fitted: FittedRun) -> list[str]:
    best = search.best
    if best is None or best.raw is None or search.start.raw is None:
        return []
    specs, cur = _specs(fitted), fitted.run.summary["data"].get("currency")
    deltas = []
    for j, name in enumerate(fitted.run.feature_names):
        a, b = search.start.raw[j], best.raw[j]
        if (np.isfinite(a) or np.isfinite(b)) and not (np.isfinite(a) and np.isfinite(b) and abs(a - b) < 1e-9):
            scale = abs(b - a) / (np.nanstd(fitted.run.feature_raw[:, j]) or 1.0) if np.isfinite(a) and np.isfinite(b) else 1.0
            deltas.append((scale, name, a, b))
    out = []
    for _, name, a, b in sorted(deltas, reverse=True)[:6]:
        label, unit = specs.get(name, (name, "count"))
        out.append(f"{label} {fmt_value(a, unit, cur)} → {fmt_value(b, unit, cur)}")
    return out


def reasons(search: Search, fitted: FittedRun) -> tuple[str, str]:
    """(reason, code) when no proposal reached the target (module docstring)."""
    run = fitted.run
    if run.summary["data"]["kind"] != "behaviour" or not run.feature_names:
        return "This run has no behaviour features to change (text-only data): only what the entity wrote places it.", "no_behaviour"
    labels = run.top_labels if (search.target.is_top and run.top_labels is not None) else run.labels
    members = run.feature_raw[(labels == search.target.segment_id) & run.fitted]
    mine = run.feature_raw[run.row_of(search.user_id)]
    specs, cur = _specs(fitted), run.summary["data"].get("currency")
    blockers = []
    for j, name in enumerate(run.feature_names):
        col = members[:, j][np.isfinite(members[:, j])]
        if not len(col) or not np.isfinite(mine[j]):
            continue
        label, unit = specs.get(name, (name, "count"))
        lo, med, hi = np.quantile(col, [0.1, 0.5, 0.9])
        if name in ONLY_UP and mine[j] > hi:
            blockers.append(f"its members' median {label} is {fmt_value(med, unit, cur)} (90% at most {fmt_value(hi, unit, cur)}); "
                            f"{search.user_id} has {fmt_value(mine[j], unit, cur)}, and what was done cannot be undone")
        elif name == "recency_days" and mine[j] < lo:
            blockers.append(f"its members' median {label} is {fmt_value(med, unit, cur)}; {search.user_id}'s is {fmt_value(mine[j], unit, cur)}, "
                            "and past dates are not rewritten (recency only goes down)")
        elif name in FIXED and not lo <= mine[j] <= hi:
            blockers.append(f"its members' {label} lies between {fmt_value(lo, unit, cur)} and {fmt_value(hi, unit, cur)}; "
                            f"{search.user_id}'s is {fmt_value(mine[j], unit, cur)}, which no added activity changes")
    if blockers:
        return "It needs less history than the user has: " + "; ".join(blockers[:3]) + ".", "needs_less_history"
    if search.reached_top is not None:
        return (f"Segment {search.target.segment_id} is a sub-segment of segment {search.target.top}: {len(search.reached_top.steps)} "
                f"change(s) reach segment {search.target.top}, but none within {search.max_changes} crosses its split into "
                f"{search.target.segment_id}."), "sub_segment"
    if search.target.path and search.start.top != search.target.top and not search.target.is_top:
        why = (f"Segment {search.target.segment_id} is a sub-segment of segment {search.target.top}, another top-level segment than "
               f"the user's ({search.start.top}), and needs more than {search.max_changes} changes.")
        return why, "sub_segment"
    return (f"The nearest change found after {len(search.nearest.steps)} change(s) is still short of it; "
            f"it needs more than {search.max_changes} (try --max-changes)."), "beyond_bound"


def answer(search: Search, fitted: FittedRun) -> WhatIf:
    run = fitted.run
    name = str(run.segment(search.target.segment_id)["name"])
    already = search.best is not None and not search.best.steps
    reached = search.best is not None and search.verified
    reason, code = ("", "already") if already else (("", "") if reached else reasons(search, fitted))
    best = search.best if reached else None
    items: tuple[tuple[str, str], ...] = ()
    if best is not None and len(best.rows):
        ids = [str(r["item_id"]) for r in best.rows if isinstance(r["item_id"], str) and r["item_id"] != search.history.own_item]
        items = tuple((i, search.items.get(i, i)) for i in dict.fromkeys(ids))
    return WhatIf(search.user_id, int(search.start.leaf), search.target.segment_id, name, reached, already, search.verified,
                  tuple(_changes(search, fitted)) if best is not None and not already else (),
                  tuple(_effects(search, fitted)) if best is not None and not already else (), items,
                  0 if best is None else len(best.steps), 0.0 if best is None else best.size, reason, code,
                  search.max_changes, search.evaluations)  # fmt: skip


def what_would_move(fitted: FittedRun, user_id: str, target_id: int, max_changes: int = 10, evaluator=None) -> WhatIf:
    """The smallest feasible change that the run's saved model assigns to segment ``target_id`` (module docstrings)."""
    from tools.core.errors import ParameterError
    from tools.segment.whatif import WhatIfSearch, target_of

    if str(user_id) not in fitted.run.user_index:
        raise ParameterError(f"--user {user_id}: no such user in this run", "give a user id as written in the data, e.g. from assignments.csv")
    if not 1 <= int(max_changes) <= 50:
        raise ParameterError(f"--max-changes {max_changes}: must be between 1 and 50", "e.g. --max-changes 10")
    target = target_of(fitted, int(target_id))
    search = WhatIfSearch(fitted, str(user_id), target, int(max_changes), evaluator).run()
    return answer(search, fitted)
