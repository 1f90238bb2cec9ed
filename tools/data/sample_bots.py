"""Bots for the sample shop (``segscope sample --bots SHARE``): users no person could be, of four kinds.

Each kind is what one rule of tools/data/outliers.py is there to catch, drawn
so that it is not a caricature: volumes a few times the tail, not millions.

- ``crawler``: views of items all over the catalogue, 12–40 times a typical
  user's events, a few seconds to a minute apart, in sessions over weeks.
- ``hammer``: 30–120 events, 60–95% of them views (and some add-to-carts) of
  one item, minutes apart over days (a price or stock watcher).
- ``rapid``: one to three sessions of 60–120 views and add-to-carts of
  random items, several a second.
- ``duplicator``: a plausible shopper (15–35 events over weeks, with purchases)
  who also fires 4–7 bursts of the same add-to-cart or purchase 3–6 times
  within a second or two (a double-submitting client).

The bots draw from their own random stream, so the sample's other users are
exactly those of the same seed without bots.
"""

from __future__ import annotations

import numpy as np

from tools.core.errors import ParameterError

BOT_KINDS = ("crawler", "hammer", "rapid", "duplicator")
BOT_SEGMENT = "bot"  # their segment in truth.csv
MAX_BOT_SHARE = 0.5
_DAY = 86_400
VIEW, CART, PURCHASE = 0, 1, 2  # codes of tools/data/sample.EVENT_TYPES


def bot_count(bots: float, n_users: int, min_people: int) -> int:
    """How many of ``n_users`` are bots for a share ``bots``; ParameterError when that is not a share or leaves too few people."""
    if isinstance(bots, bool) or not isinstance(bots, (int, float, np.floating)) or not 0.0 <= float(bots) <= MAX_BOT_SHARE:
        raise ParameterError(f"bots must be a share between 0 and {MAX_BOT_SHARE}, got {bots!r}.", "Use e.g. --bots 0.03.")
    n_bots = int(round(float(bots) * n_users))
    if n_users - n_bots < min_people:
        raise ParameterError(f"{n_bots} bots leave fewer than {min_people} other users.", "Ask for more users or fewer bots.")
    return n_bots


def add_bots(
    ev: dict[str, np.ndarray], seed: int, n_people: int, n_bots: int, item_price: np.ndarray, ref: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The sample's events with ``n_bots`` bots' added (user codes from ``n_people``), in the sample's order; and their kinds."""
    if not n_bots:
        return ev, np.zeros(0, dtype=object)
    # Their own stream: the people are the same with or without bots.
    rng = np.random.Generator(np.random.PCG64([seed, 1]))
    typical = float(np.median(np.bincount(ev["user"], minlength=n_people)))
    bot_ev, kinds = plant_bots(rng, n_bots, n_people, item_price, ref, typical)
    bot_ev["text"] = np.full(len(bot_ev["user"]), "", dtype=object)
    merged = {key: np.concatenate([ev[key], bot_ev[key]]) for key in ev}
    o = np.lexsort((merged["type"], merged["item"], merged["user"], merged["ts"]))
    return {key: v[o] for key, v in merged.items()}, kinds


def plant_bots(
    rng: np.random.Generator, n_bots: int, first_user: int, item_price: np.ndarray, ref: int, typical_events: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Events of ``n_bots`` bots (user codes from ``first_user``) and each bot's kind (round robin over BOT_KINDS).

    Events come as the sample's arrays: user, item, type (codes of EVENT_TYPES), ts (before ``ref``), value.
    """
    kinds = np.asarray([BOT_KINDS[i % len(BOT_KINDS)] for i in range(n_bots)], dtype=object)
    kinds = kinds[rng.permutation(n_bots)]
    n_items = len(item_price)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # item, type, ts, user
    for b, kind in enumerate(kinds):
        end = ref - 1 - int(rng.integers(0, 200 * _DAY))  # the bot's last event
        if kind == "crawler":
            n = max(int(typical_events * rng.uniform(12, 40)), 60)
            items = rng.integers(0, n_items, n)
            types = np.full(n, VIEW)
            # A few seconds to a minute between views, and a pause of hours now and then (a new session).
            gaps = np.where(rng.random(n) < 0.03, rng.exponential(8 * 3600, n), rng.uniform(3, 60, n))
        elif kind == "hammer":
            n = int(rng.integers(30, 121))
            target = int(rng.integers(0, n_items))
            items = np.where(rng.random(n) < rng.uniform(0.6, 0.95), target, rng.integers(0, n_items, n))
            types = np.where(rng.random(n) < 0.1, CART, VIEW)
            gaps = rng.exponential(20 * 60, n) + 30
        elif kind == "rapid":
            sessions = int(rng.integers(1, 4))
            sizes = rng.integers(60, 121, sessions)
            n = int(sizes.sum())
            items = rng.integers(0, n_items, n)
            types = np.where(rng.random(n) < 0.15, CART, VIEW)
            gaps = rng.uniform(0.1, 0.6, n)
            starts = np.cumsum(sizes)[:-1]
            gaps[starts] = rng.uniform(2 * 3600, 5 * _DAY, len(starts))  # between sessions
        else:  # duplicator
            items, types, gaps = _duplicator(rng, n_items)
            n = len(items)
        # gaps[i] is the time before event i; the last event is at ``end``.
        ts = np.floor(end - np.cumsum(gaps[::-1])[::-1] + gaps).astype(np.int64)
        parts.append((items.astype(np.int64), types.astype(np.int8), ts, np.full(n, first_user + b, dtype=np.int64)))
    item = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    etype = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int8)
    ts = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    user = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.int64)
    value = np.where(etype == PURCHASE, item_price[item] if len(item) else 0.0, np.nan)
    return {"user": user, "item": item, "type": etype, "ts": ts, "value": value}, kinds


def _duplicator(rng: np.random.Generator, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shopper's events, in time order, with bursts of one repeated add-to-cart or purchase."""
    n = int(rng.integers(15, 36))
    items = list(rng.integers(0, n_items, n))
    types = list(np.where(rng.random(n) < 0.25, CART, VIEW))
    types[-1] = PURCHASE
    gaps = list(rng.exponential(2 * 3600, n) + 60)
    for _ in range(int(rng.integers(4, 8))):
        at = int(rng.integers(0, len(items)))
        repeats = int(rng.integers(3, 7))
        kind = CART if rng.random() < 0.5 else PURCHASE
        item = items[at]
        types[at] = kind
        # The burst follows event ``at``: the same item and type, 0-2 seconds apart.
        items[at + 1 : at + 1] = [item] * repeats
        types[at + 1 : at + 1] = [kind] * repeats
        gaps[at + 1 : at + 1] = list(rng.uniform(0.0, 2.0, repeats))
    return np.asarray(items), np.asarray(types), np.asarray(gaps)
