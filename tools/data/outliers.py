"""Users whose behaviour no person produces (bots, scrapers, broken trackers), flagged so they do not shape the segments.

Four rules, each with a reason code; a user is flagged when any rule holds:

- ``event_volume``: the user's event count is far in the tail. On log counts,
  ``limit = median + VOLUME_K · scale`` with ``scale = max(1.4826 · MAD,
  (q90 − median) / 1.2816, SCALE_FLOOR)``: the MAD is the usual robust standard
  deviation; the upper-quantile scale keeps it honest where most users have the
  same count (CDNOW: more than half bought once, so the MAD is 0); the floor
  stops data where nearly everyone has one count from flagging users with only
  a few more, and no one is flagged for volume with fewer than
  ``VOLUME_MIN_EVENTS`` events (DIGINETICA's purchase log: most sessions buy
  one line, so the statistics alone would call 15 lines in a session
  implausible). Needs at least ``VOLUME_MIN_USERS`` users.
- ``single_item``: at least ``ITEM_MIN_EVENTS`` events on one item, and at
  least ``ITEM_MIN_SHARE`` of all the user's events (a page reloaded by a
  price or stock watcher). Heavy users spread their events, even on a favourite.
- ``inhuman_timing``: at least ``TIMING_MIN_ACTIONS`` actions within one
  ``TIMING_WINDOW_S``-second window, in at least ``TIMING_MIN_SECONDS``
  distinct seconds of it: more than one action a second, kept up. The lines of
  one order are one action, and so are events on one item in the same second
  (a view and an add-to-cart on one page, tags added to a film at once). Many
  events stamped in one second or two and nothing around them are a form or an
  import (ml-latest-small: 392 ratings of one user in 5 seconds of 2016, 85 of
  another in 3 seconds of 1996), not someone clicking faster than a person can.
- ``duplicate_bursts``: at least ``DUP_MIN_EVENTS`` events, and at least
  ``DUP_MIN_SHARE`` of the user's events, that repeat the same item, event
  type, value and text within ``DUP_WINDOW_S`` seconds of the previous
  identical one (lines of one order never count: an order may list a product twice).

The two timing rules need timestamps to the second: on data stamped to the
minute or the day (Online Retail, CDNOW, DIGINETICA's dates) they are off, and
said so. A rule that would flag more than ``MAX_RULE_SHARE`` of the users is not
applied (it would be describing how this data looks, not outliers), and said so.
Text-only data (one message per entity) is never flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset

VOLUME_K = 5.0
SCALE_FLOOR = 0.3
VOLUME_MIN_USERS = 50
VOLUME_MIN_EVENTS = 100
ITEM_MIN_EVENTS = 20
ITEM_MIN_SHARE = 0.5
TIMING_WINDOW_S = 60.0
TIMING_MIN_ACTIONS = 60
TIMING_MIN_SECONDS = 20
DUP_WINDOW_S = 5.0
DUP_MIN_EVENTS = 10
DUP_MIN_SHARE = 0.1
MAX_RULE_SHARE = 0.05
SECOND_RESOLUTION_SHARE = 0.5  # timestamps to the second: at least half are not whole minutes
GROUP_EVENTS = 2_000_000  # past this many events, the per-user rules run a group of users at a time (memory)
N_EXAMPLES = 10

REASONS = ("event_volume", "single_item", "inhuman_timing", "duplicate_bursts")
REASON_LABELS = {
    "event_volume": "event count far in the tail",
    "single_item": "one item hammered",
    "inhuman_timing": "inhuman timing",
    "duplicate_bursts": "duplicate event bursts",
}


@dataclass(frozen=True)
class RuleResult:
    """One rule on one dataset: what it asks, whether it was applied, and how many users it flags."""

    code: str
    rule: str  # the threshold in words and in this data's figures
    applied: bool
    flagged: int  # users it flags (0 when not applied)
    note: str | None = None  # why it was not applied

    def as_dict(self) -> dict:
        return {"reason": self.code, "label": REASON_LABELS[self.code], "rule": self.rule, "applied": self.applied,
                "flagged": self.flagged, "note": self.note}  # fmt: skip


@dataclass(frozen=True)
class Outliers:
    """Per user (in order of first appearance in the events, as profiles are): the reasons they are flagged for.

    ``reasons`` holds "" for a user who is not flagged, else the codes of the rules that
    hold, joined by "+" in the order of ``REASONS``. ``figures`` holds what each rule
    measured, one row per user (events, top_item, top_item_events, top_item_share,
    densest_window, duplicates).
    """

    user_ids: np.ndarray
    reasons: np.ndarray
    figures: pd.DataFrame
    rules: tuple[RuleResult, ...] = field(default=())

    @property
    def flagged(self) -> np.ndarray:
        return self.reasons != ""

    @property
    def count(self) -> int:
        return int(self.flagged.sum())

    def aligned(self, user_ids: np.ndarray) -> np.ndarray:
        """The reasons of ``user_ids`` (in that order); "" for an id not seen."""
        rows = pd.Index(self.user_ids).get_indexer(pd.Index(user_ids))
        return np.where(rows >= 0, self.reasons[np.maximum(rows, 0)], "").astype(object)

    def detail(self, row: int) -> str:
        """What flagged the user in ``row``, in the data's figures."""
        f = self.figures.iloc[row]
        parts = []
        for code in str(self.reasons[row]).split("+"):
            if code == "event_volume":
                parts.append(f"{int(f['events']):,} events")
            elif code == "single_item":
                parts.append(f"{int(f['top_item_events']):,} of {int(f['events']):,} events on item {f['top_item']}")
            elif code == "inhuman_timing":
                parts.append(f"{int(f['densest_window']):,} actions within {TIMING_WINDOW_S:.0f} s")
            elif code == "duplicate_bursts":
                parts.append(f"{int(f['duplicates']):,} repeated events within {DUP_WINDOW_S:.0f} s")
        return "; ".join(parts)

    def as_dict(self, kept_in_fit: bool) -> dict:
        """The ``outliers`` block of segments.json."""
        flagged = self.flagged
        by_reason = {code: int(sum(code in str(r).split("+") for r in self.reasons[flagged])) for code in REASONS}
        rows = np.flatnonzero(flagged)
        # The most active first: the examples a reader checks by eye.
        order = rows[np.argsort(-self.figures["events"].to_numpy()[rows], kind="stable")][:N_EXAMPLES]
        return {
            "count": self.count,
            "share": round(self.count / max(len(self.user_ids), 1), 4),
            "kept_in_fit": kept_in_fit,
            "by_reason": {code: n for code, n in by_reason.items() if n},
            "rules": [r.as_dict() for r in self.rules],
            "examples": [{"user_id": str(self.user_ids[i]), "reasons": str(self.reasons[i]), "detail": self.detail(i)} for i in order],
        }


def no_outliers(user_ids: np.ndarray, why: str) -> Outliers:
    """Nobody flagged (text-only data, or detection switched off): ``why`` is said for every rule."""
    n = len(user_ids)
    figures = _empty_figures(n)
    return Outliers(np.asarray(user_ids, dtype=object), np.full(n, "", dtype=object), figures,
                    tuple(RuleResult(code, "", False, 0, why) for code in REASONS))  # fmt: skip


def _empty_figures(n: int) -> pd.DataFrame:
    return pd.DataFrame({"events": np.zeros(n, dtype=np.int64), "top_item": np.full(n, "", dtype=object),
                         "top_item_events": np.zeros(n, dtype=np.int64), "top_item_share": np.zeros(n),
                         "densest_window": np.zeros(n, dtype=np.int64), "duplicates": np.zeros(n, dtype=np.int64)})  # fmt: skip


@dataclass(frozen=True)
class _Events:
    """The events as integer codes, factorised once (string columns are slow to factorise)."""

    user: np.ndarray
    item: np.ndarray  # -1 where missing
    etype: np.ndarray
    text: np.ndarray  # -1 where missing
    order: np.ndarray  # -1 where missing
    value: np.ndarray  # -inf where missing, so two missing values compare equal
    ts: np.ndarray  # NaN where missing
    item_ids: np.ndarray  # the item of each code

    @classmethod
    def of(cls, ev: pd.DataFrame, user: np.ndarray) -> _Events:
        def codes(column: str) -> tuple[np.ndarray, np.ndarray]:
            if column not in ev:
                return np.full(len(ev), -1, dtype=np.int64), np.zeros(0, dtype=object)
            found, uniques = pd.factorize(ev[column])
            return found.astype(np.int64), np.asarray(uniques, dtype=object)

        value = ev["value"].to_numpy(dtype=np.float64)
        item, item_ids = codes("item_id")
        return cls(user.astype(np.int64), item, codes("event_type")[0], codes("text")[0], codes("order_id")[0],
                   np.where(np.isfinite(value), value, -np.inf), ev["timestamp"].to_numpy(dtype=np.float64), item_ids)  # fmt: skip

    def take(self, rows: np.ndarray) -> _Events:
        """These events only, with the same codes."""
        return _Events(self.user[rows], self.item[rows], self.etype[rows], self.text[rows], self.order[rows],
                       self.value[rows], self.ts[rows], self.item_ids)


RuleFn = Callable[[_Events, pd.DataFrame], tuple]


def _per_user(rule: RuleFn, e: _Events, n: int, figures: pd.DataFrame, groups: int, writes: tuple[str, ...]) -> tuple:
    """``rule(e, figures)`` for a rule that looks at each user's own events alone, run on ``groups`` groups of users
    in turn (user code modulo ``groups``): the same figures and flags, with each step's temporaries on a share of
    the events. The figure columns the rule ``writes`` are filled in for each group's users."""
    if groups == 1:
        return rule(e, figures)
    flagged = np.zeros(n, dtype=bool)
    judged = None
    columns: dict[str, np.ndarray] = {}
    group_of = np.arange(n) % groups
    for g in range(groups):
        members = group_of == g
        part = _empty_figures(n)
        code, text, mask, note = rule(e.take(np.flatnonzero(members[e.user])), part)
        if mask is None:  # nothing in this group to judge (no items among its events): no flags, no figures
            continue
        judged = (code, text, note)
        flagged[members] = mask[members]
        for name in writes:
            column = columns.setdefault(name, figures[name].to_numpy(copy=True))
            column[members] = part[name].to_numpy()[members]
    for name, column in columns.items():
        figures[name] = column
    if judged is None:
        return code, text, None, note
    return judged[0], judged[1], flagged, judged[2]


def detect_outliers(data: Dataset) -> Outliers:
    """Flag the users of ``data`` whose behaviour no person produces (module docstring: the rules and thresholds)."""
    ev = data.events
    codes, uniques = pd.factorize(ev["user_id"])
    user_ids = np.asarray(uniques, dtype=object)
    if data.kind != "behaviour":
        return no_outliers(user_ids, "text-only data: one message per entity, nothing to judge")
    n = len(user_ids)
    figures = _empty_figures(n)
    counts = np.bincount(codes, minlength=n)
    figures["events"] = counts
    e = _Events.of(ev, codes)
    timed = np.isfinite(e.ts)
    to_second = bool(timed.any()) and float(np.mean(np.mod(e.ts[timed], 60.0) != 0)) >= SECOND_RESOLUTION_SHARE
    coarse = "timestamps are not to the second (whole minutes or days): timing cannot be judged"
    groups = max(1, -(-len(ev) // GROUP_EVENTS))  # the per-user rules, a group of users at a time past that
    results: list[tuple[str, str, np.ndarray | None, str | None]] = [_volume(counts)]
    if not (e.item >= 0).any():
        results.append(_single_item(e, counts, figures))  # "the data has no items", for every group alike
    else:
        results.append(_per_user(lambda part, fig: _single_item(part, counts, fig), e, n, figures, groups,
                                 ("top_item", "top_item_events", "top_item_share")))
    if to_second:
        results.append(_per_user(lambda part, fig: _timing(part, n, fig), e, n, figures, groups, ("densest_window",)))
        results.append(_per_user(lambda part, fig: _duplicates(part, counts, fig), e, n, figures, groups, ("duplicates",)))
    else:
        results += [("inhuman_timing", _timing_rule(), None, coarse), ("duplicate_bursts", _dup_rule(), None, coarse)]

    reasons = np.full(n, "", dtype=object)
    rules = []
    for code, rule, mask, note in results:
        if mask is not None and mask.sum() > MAX_RULE_SHARE * n:
            note = (f"would flag {int(mask.sum()):,} of {n:,} users ({mask.mean():.1%}), more than {MAX_RULE_SHARE:.0%}: "
                    "that is how this data looks, not outliers")
            mask = None
        if mask is None:
            rules.append(RuleResult(code, rule, False, 0, note))
            continue
        rules.append(RuleResult(code, rule, True, int(mask.sum()), None))
        reasons[mask] = np.where(reasons[mask] == "", code, reasons[mask] + "+" + code)
    return Outliers(user_ids, reasons, figures, tuple(rules))


def volume_limit(counts: np.ndarray) -> float:
    """The event count above which a user is in the far tail (module docstring, ``event_volume``)."""
    logc = np.log(np.maximum(counts, 1).astype(np.float64))
    med = float(np.median(logc))
    mad = float(np.median(np.abs(logc - med)))
    scale = max(1.4826 * mad, (float(np.quantile(logc, 0.9)) - med) / 1.2816, SCALE_FLOOR)
    return max(float(np.exp(med + VOLUME_K * scale)), float(VOLUME_MIN_EVENTS))


def _volume(counts: np.ndarray) -> tuple[str, str, np.ndarray | None, str | None]:
    if len(counts) < VOLUME_MIN_USERS:
        return "event_volume", "", None, f"fewer than {VOLUME_MIN_USERS} users: too few to say what the tail is"
    limit = volume_limit(counts)
    rule = (f"more than {limit:,.0f} events: median {np.median(counts):,.0f}, log count beyond median + "
            f"{VOLUME_K:g} robust standard deviations, and at least {VOLUME_MIN_EVENTS}")
    return "event_volume", rule, counts > limit, None


def _single_item(e: _Events, counts: np.ndarray, figures: pd.DataFrame) -> tuple:
    rule = f"at least {ITEM_MIN_EVENTS} events on one item and at least {ITEM_MIN_SHARE:.0%} of the user's events"
    has = e.item >= 0
    if not has.any():
        return "single_item", rule, None, "the data has no items"
    n_items = int(e.item.max()) + 1
    pairs, pair_counts = np.unique(e.user[has] * n_items + e.item[has], return_counts=True)
    users = pairs // n_items
    # Each user's largest count is the last of its pairs once they are sorted by user, then count.
    order = np.lexsort((pair_counts, users))
    last = np.r_[users[order][1:] != users[order][:-1], True]
    best_users, best = users[order][last], order[last]
    top_events = np.zeros(len(counts), dtype=np.int64)
    top_events[best_users] = pair_counts[best]
    top_item = np.full(len(counts), "", dtype=object)
    top_item[best_users] = e.item_ids[pairs[best] % n_items]
    share = top_events / np.maximum(counts, 1)
    figures["top_item"], figures["top_item_events"], figures["top_item_share"] = top_item, top_events, share
    return "single_item", rule, (top_events >= ITEM_MIN_EVENTS) & (share >= ITEM_MIN_SHARE), None


def _timing_rule() -> str:
    return (f"at least {TIMING_MIN_ACTIONS} actions within {TIMING_WINDOW_S:.0f} seconds, in at least {TIMING_MIN_SECONDS} "
            "distinct seconds of them (an order's lines count once)")


def _dup_rule() -> str:
    return (f"at least {DUP_MIN_EVENTS} events, and {DUP_MIN_SHARE:.0%} of the user's, repeating the same item, type, "
            f"value and text within {DUP_WINDOW_S:.0f} seconds")


def _group(*keys: np.ndarray) -> np.ndarray:
    """One int64 id per distinct combination of ``keys`` (codes from -1 up, or floats); hashing only when the ids would overflow."""
    ids = np.zeros(len(keys[0]), dtype=np.int64)
    width = 1
    for key in keys:
        codes = key + 1 if key.dtype.kind in "iu" else pd.factorize(key)[0].astype(np.int64)
        span = int(codes.max(initial=0)) + 1
        if width * span >= 2**62:  # compact the ids so far first
            ids = pd.factorize(ids)[0].astype(np.int64)
            width = int(ids.max(initial=0)) + 1
        ids, width = ids * span + codes, width * span
    return ids


def _actions(e: _Events, rows: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, time) of each group of ``rows``: one action, at its earliest event."""
    g = pd.factorize(group[rows])[0]
    first = np.full(int(g.max(initial=-1)) + 1, np.inf)
    np.minimum.at(first, g, e.ts[rows])
    user = np.zeros(len(first), dtype=np.int64)
    user[g] = e.user[rows]
    return user, first


def _timing(e: _Events, n: int, figures: pd.DataFrame) -> tuple:
    timed = np.isfinite(e.ts)
    # One action per order, and per item and second: a page's events, or an order's lines, are one act.
    in_order = np.flatnonzero(timed & (e.order >= 0))
    loose = np.flatnonzero(timed & (e.order < 0))
    second = np.floor(np.where(timed, e.ts, 0.0)).astype(np.int64)
    u1, t1 = _actions(e, in_order, _group(e.user, e.order))
    u2, t2 = _actions(e, loose, _group(e.user, second, e.item))
    u, t = np.r_[u1, u2], np.r_[t1, t2]
    order = np.lexsort((t, u))
    u, t = u[order], t[order]
    densest = np.zeros(n, dtype=np.int64)
    flagged = np.zeros(n, dtype=bool)
    if len(t):
        # One sorted key over all users: each user's times sit in their own stretch, a window wide apart.
        span = float(t.max() - t.min()) + 4 * TIMING_WINDOW_S
        key = u * span + (t - t.min())
        start = np.arange(len(key))
        within = np.searchsorted(key, key + TIMING_WINDOW_S - 1e-3, side="right") - start
        # Distinct seconds in the window from action i: i's own, plus each later second's first action.
        sec = np.floor(t)
        first = np.r_[True, (u[1:] != u[:-1]) | (sec[1:] != sec[:-1])].astype(np.int64)
        cum = np.r_[0, np.cumsum(first)]
        seconds = 1 + cum[start + within] - cum[start + 1]
        np.maximum.at(densest, u, within)
        np.logical_or.at(flagged, u, (within >= TIMING_MIN_ACTIONS) & (seconds >= TIMING_MIN_SECONDS))
    figures["densest_window"] = densest
    return "inhuman_timing", _timing_rule(), flagged, None


def _duplicates(e: _Events, counts: np.ndarray, figures: pd.DataFrame) -> tuple:
    rows = np.flatnonzero(np.isfinite(e.ts))
    group = _group(e.user, e.item, e.etype, e.value, e.text)  # identical events
    order = rows[np.lexsort((e.ts[rows], group[rows]))]
    g = group[order]
    same = np.r_[False, g[1:] == g[:-1]] if len(g) else np.zeros(0, dtype=bool)
    t, o = e.ts[order], e.order[order]
    close = np.r_[False, np.diff(t) <= DUP_WINDOW_S]
    one_order = np.r_[False, (o[1:] == o[:-1]) & (o[1:] >= 0)]
    dup = same & close & ~one_order
    duplicates = np.bincount(e.user[order][dup], minlength=len(counts))
    figures["duplicates"] = duplicates
    flagged = (duplicates >= DUP_MIN_EVENTS) & (duplicates >= DUP_MIN_SHARE * counts)
    return "duplicate_bursts", _dup_rule(), flagged, None


def outliers_line(block: dict | None, noun: str = "users") -> str | None:
    """One sentence on a run's outliers from its ``data.outliers`` block; None when nothing was judged (text-only data)."""
    if not block or not any(r.get("applied") for r in block.get("rules", [])):
        return None
    count = int(block.get("count", 0))
    if not count:
        return f"No {noun} flagged as outliers."
    reasons = ", ".join(f"{n:,} {REASON_LABELS.get(code, code)}" for code, n in (block.get("by_reason") or {}).items())
    fate = ("kept in the fit (--keep-outliers)" if block.get("kept_in_fit")
            else "left out of the fit and assigned to the nearest segment afterwards")
    return f"{count:,} {noun} ({float(block.get('share', 0)):.1%}) flagged as outliers ({reasons}): {fate}."
