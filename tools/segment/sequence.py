"""Behaviour in order: which kind of event follows which, how long to the first purchase, sessions.

Two users with the same events (the same items, the same number of views, carts and
purchases) can still behave differently: one browses everything and then buys in a
batch, the other looks at one thing, carts it, buys it and moves on. The counts and
shares of tools/segment/features.py cannot tell them apart; these features can:

- ``step_A->B``: the share of a user's steps (consecutive events, in time order) that
  go from event type A to event type B, for the population's common steps (each at
  least ``MIN_STEP_SHARE`` of everyone's steps, at most ``MAX_STEPS`` of them);
- ``position_A``: where in a user's history their events of type A fall, on average (0: the
  first event, 1: the last), for the population's common types: who buys at the end of
  their browsing and who buys first, whatever their number of events;
- ``hours_to_convert`` (``days_to_convert`` when timestamps are whole days): from the
  user's first event to their first purchase, when the log has purchases among other events;
- ``sessions``, ``session_events``, ``session_minutes``: visits split on an inactivity gap
  of ``SESSION_GAP_SECONDS``, their number, mean events and mean length, when the
  timestamps have a time of day (a log of dates has no sessions to split).

They are only computed where they mean something: a log with at least two common kinds
of activity besides rating that is not a pure transaction log (a ratings log, with tags or
not, or an invoice log without event types, gains none). Events at the same second keep the data's own order.

These columns are the *order block*: clustering sees them as a block of their own
(tools/segment/recipe.py), scaled to ``ORDER_WEIGHT`` of total variance beside the text
and behaviour blocks, so they add the order to the profile without diluting the rest
(the text and behaviour blocks are exactly the order-blind ones).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

STEP_PREFIX = "step_"
POSITION_PREFIX = "position_"
MAX_POSITION_TYPES = 8
STEP_ARROW = "->"
MAX_STEPS = 16
MIN_STEP_SHARE = 0.05
SESSION_GAP_SECONDS = 30 * 60
TIME_OF_DAY_SHARE = 0.5  # timestamps off midnight needed to call them times, not dates
SESSION_FEATURES = ("sessions", "session_events", "session_minutes")
CONVERT_FEATURES = ("hours_to_convert", "days_to_convert")
ORDER_FEATURES = (*CONVERT_FEATURES, *SESSION_FEATURES)
# The order block's total variance, beside text (α) and behaviour (1 − α). Measured (bench/sequence.py, MiniLM):
# 0.2 leaves the order-only sample's two variants in one segment; 0.25 separates them (ARI 0.95-0.98, seeds 7-9);
# 0.35 and more make the top level of a 300-user sample less reproducible (k 6 -> 2, tests/test_update.py).
ORDER_WEIGHT = 0.25
ORDER_LABELS: dict[str, tuple[str, str]] = {
    "hours_to_convert": ("hours from first visit to first purchase", "hours"),
    "days_to_convert": ("days from first visit to first purchase", "days"),
    "sessions": ("sessions (visits)", "count"),
    "session_events": ("events per session", "count"),
    "session_minutes": ("minutes per session", "minutes"),
}
PURCHASE = "purchase"
_DAY = 86400.0

Add = Callable[..., None]


def is_order_feature(name: str) -> bool:
    """Whether feature ``name`` belongs to the order block."""
    return name.startswith((STEP_PREFIX, POSITION_PREFIX)) or name in ORDER_FEATURES


def step_name(a: str, b: str) -> str:
    return f"{STEP_PREFIX}{a}{STEP_ARROW}{b}"


def order_label(name: str) -> tuple[str, str] | None:
    """(label, unit) of an order feature, None for any other name."""
    if name.startswith(STEP_PREFIX) and STEP_ARROW in name:
        a, b = name[len(STEP_PREFIX):].split(STEP_ARROW, 1)
        return f"share of steps from {a} to {b}", "share"
    if name.startswith(POSITION_PREFIX):
        return f"where {name[len(POSITION_PREFIX):]}s fall in the history (0 first, 1 last)", "ratio"
    return ORDER_LABELS.get(name)


def has_time_of_day(ts: np.ndarray) -> bool:
    """Most timestamps fall off midnight: they are times of day, not dates."""
    known = ts[np.isfinite(ts)]
    return bool(len(known)) and float(np.mean(np.mod(known, _DAY) != 0)) >= TIME_OF_DAY_SHARE


def _in_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Rows of timed events of known users, by user, then time, then the data's own order."""
    rows = np.flatnonzero((codes >= 0) & np.isfinite(ts))
    return rows[np.lexsort((rows, ts[rows], codes[rows]))]


def add_order_features(events: pd.DataFrame, codes: np.ndarray, n: int, pop: np.ndarray, add: Add,
                       names: tuple[str, ...] | None = None) -> None:
    """The order block (module docstring) for ``n`` users (``codes``: each event's row), through ``add``.

    ``pop`` (a mask over events) decides which steps are common and whether the timestamps
    have a time of day; ``names`` (a fitted run's order features) decides instead.
    """
    ts = events["timestamp"].to_numpy(dtype=np.float64)
    etype = events["event_type"].astype(str).to_numpy(dtype=object)
    rows = _in_order(codes, ts)
    user, when = codes[rows], ts[rows]
    kinds, kind = np.unique(etype[rows], return_inverse=True)
    same = user[1:] == user[:-1]  # consecutive events of one user: a step
    step_user = user[1:][same]
    step = kind[:-1][same] * len(kinds) + kind[1:][same]
    steps_per_user = np.bincount(step_user, minlength=n).astype(np.float64)
    size = np.bincount(user, minlength=n)
    start = np.cumsum(size) - size  # rows are by user: each user's first row
    with np.errstate(invalid="ignore", divide="ignore"):
        position = (np.arange(len(user)) - start[user]) / (size[user] - 1.0)  # 0 first .. 1 last; NaN for one event
    if names is None:
        names = _choose(events, pop, kinds, step[pop[rows][1:][same]])
    for name in names:
        if name.startswith(STEP_PREFIX):
            a, b = name[len(STEP_PREFIX):].split(STEP_ARROW, 1)
            ia, ib = np.searchsorted(kinds, a), np.searchsorted(kinds, b)
            known = ia < len(kinds) and ib < len(kinds) and kinds[ia] == a and kinds[ib] == b
            hits = step_user[step == ia * len(kinds) + ib] if known else np.zeros(0, np.int64)
            share = np.bincount(hits, minlength=n) / np.maximum(steps_per_user, 1)
            add(name, np.where(steps_per_user > 0, share, np.nan))  # one event, no steps: a gap
        elif name.startswith(POSITION_PREFIX):
            mine = (etype[rows] == name[len(POSITION_PREFIX):]) & np.isfinite(position)
            total = np.bincount(user[mine], weights=position[mine], minlength=n)
            hits = np.bincount(user[mine], minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                add(name, np.where(hits > 0, total / hits, np.nan))
        elif name in CONVERT_FEATURES:
            add(name, _to_convert(user, when, etype[rows] == PURCHASE, n) / (3600.0 if name == "hours_to_convert" else _DAY))
    if any(name in SESSION_FEATURES for name in names):
        sessions, events_per, minutes = _sessions(user, when, n)
        for name, values in zip(SESSION_FEATURES, (sessions, events_per, minutes)):
            if name in names:
                add(name, values)


def _choose(events: pd.DataFrame, pop: np.ndarray, kinds: np.ndarray, steps: np.ndarray) -> tuple[str, ...]:
    """The order features the population's events (``pop``; ``steps``: its users' steps) make meaningful."""
    counts = np.bincount(steps, minlength=len(kinds) ** 2)
    total = counts.sum()
    chosen = [int(s) for s in np.argsort(-counts, kind="stable")[:MAX_STEPS] if total and counts[s] >= MIN_STEP_SHARE * total]
    names = [step_name(kinds[s // len(kinds)], kinds[s % len(kinds)]) for s in sorted(chosen)]
    etype = events["event_type"].astype(str)[pop]
    counts_by_type = etype.value_counts()
    names += [f"{POSITION_PREFIX}{t}" for t in counts_by_type.index[:MAX_POSITION_TYPES] if counts_by_type[t] >= MIN_STEP_SHARE * len(etype)]
    ts = events["timestamp"].to_numpy(dtype=np.float64)[pop]
    timed = has_time_of_day(ts)
    if (etype == PURCHASE).any() and (etype != PURCHASE).any():
        names.append("hours_to_convert" if timed else "days_to_convert")
    if timed:
        names += SESSION_FEATURES
    return tuple(names)


def _to_convert(user: np.ndarray, when: np.ndarray, bought: np.ndarray, n: int) -> np.ndarray:
    """Seconds from each user's first event to their first purchase (NaN for users who never bought)."""
    first = pd.Series(when).groupby(user).min().reindex(range(n)).to_numpy(dtype=np.float64)
    first_buy = pd.Series(when[bought]).groupby(user[bought]).min().reindex(range(n)).to_numpy(dtype=np.float64)
    return first_buy - first


def _sessions(user: np.ndarray, when: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user: sessions (split on the inactivity gap), mean events per session, mean minutes per session."""
    if not len(user):
        empty = np.full(n, np.nan)
        return np.zeros(n), empty, empty
    starts = np.ones(len(user), dtype=bool)
    starts[1:] = (user[1:] != user[:-1]) | (np.diff(when) > SESSION_GAP_SECONDS)
    session = np.cumsum(starts) - 1
    s_user = user[starts]
    s_len = pd.Series(when).groupby(session).agg(["min", "max"]).to_numpy(dtype=np.float64)
    count = np.bincount(s_user, minlength=n).astype(np.float64)
    size = np.bincount(user, minlength=n).astype(np.float64)
    minutes = np.bincount(s_user, weights=(s_len[:, 1] - s_len[:, 0]) / 60.0, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, np.where(count > 0, size / count, np.nan), np.where(count > 0, minutes / count, np.nan)


def order_mask(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Which of the feature columns ``names`` are the order block."""
    return np.asarray([is_order_feature(name) for name in names], dtype=bool)
