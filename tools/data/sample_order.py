"""The order-only sample (``segscope sample --order-only``): two planted segments that differ only in the order of their events.

The users of one planted segment (``ORDER_SEGMENT``) are drawn as usual, then split in two
halves at random, and each user's own events are put in another order over the user's own
timestamps (the k-th event of the new order gets the user's k-th earliest timestamp):

- ``browse_first``: every view first, then every add-to-cart, then the purchases, then the
  ratings and reviews (each stage item by item, in the order the items were first touched);
- ``item_by_item``: one item at a time: its views, its add-to-cart, its purchase, its rating,
  then the next item; the items bought first (they came for them), then the rest.

Bought first, because in the order the items were first touched a user who bought one item
touched last would browse first too (views, then the cart, then the purchase): the two
behaviours would coincide for every single-purchase user whose purchase came last.

Nothing else changes: the same items, the same number of events of each type, the same
amounts, ratings and review texts, the same timestamps (so the same recency, span and
sessions). Only what follows what, and so how long to the first purchase, differs: an
order-blind profile cannot tell the halves apart. The split draws from its own random
stream, so the other segments' users are those of the ordinary sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ORDER_SEGMENT = "fashion_forward"  # half browse first, half buy item by item
ORDER_VARIANTS = ("browse_first", "item_by_item")
_STREAM = 3  # its own: PCG64([seed, 3]); the bots use 1 and 2
_RATED = 3  # event type codes of tools/data/sample.EVENT_TYPES: 0 view, 1 cart, 2 purchase, 3 rating, 4 review


def order_variant_names(segment_names: tuple[str, ...]) -> tuple[str, ...]:
    """The planted segments of the order-only sample: ``ORDER_SEGMENT`` becomes its two variants."""
    out: list[str] = []
    for name in segment_names:
        out += [f"{name}_{v}" for v in ORDER_VARIANTS] if name == ORDER_SEGMENT else [name]
    return tuple(out)


def split_by_order(ev: dict[str, np.ndarray], seg: np.ndarray, segment_names: tuple[str, ...],
                   seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``ev`` with ``ORDER_SEGMENT``'s users' events reordered (module docstring), and every user's planted segment name."""
    s = segment_names.index(ORDER_SEGMENT)
    rng = np.random.Generator(np.random.PCG64([seed, _STREAM]))
    members = np.flatnonzero(seg == s)
    browse = np.zeros(len(seg), dtype=bool)
    browse[rng.permutation(members)[: len(members) // 2]] = True
    names = np.asarray(segment_names, dtype=object)[seg]
    names[members] = np.where(browse[members], f"{ORDER_SEGMENT}_{ORDER_VARIANTS[0]}", f"{ORDER_SEGMENT}_{ORDER_VARIANTS[1]}")

    rows = np.flatnonzero(seg[ev["user"]] == s)
    user, item, ts = ev["user"][rows], ev["item"][rows], ev["ts"][rows]
    stage = np.minimum(ev["type"][rows], _RATED)  # a rating and a review are one stage: after the purchase
    touched = pd.DataFrame({"u": user, "i": item, "t": ts, "s": stage}).groupby(["u", "i"])
    first_touch = touched["t"].transform("min").to_numpy()
    reached = touched["s"].transform("max").to_numpy()  # the item's furthest stage: bought (2 or 3) or not
    b = browse[user]
    # Within a user: browse_first by stage, then item; item_by_item bought items first, by item, then stage.
    outer = np.where(b, stage, (reached < 2).astype(np.int64))
    middle = np.where(b, first_touch, first_touch)
    inner = np.where(b, 0, stage)
    new_order = rows[np.lexsort((item, ts, inner, middle, outer, user))]
    times = rows[np.lexsort((ts, user))]  # the same users' rows, by time: their timestamps in order
    out = {key: value.copy() for key, value in ev.items()}
    out["ts"][new_order] = ev["ts"][times]
    o = np.lexsort((out["type"], out["item"], out["user"], out["ts"]))  # the sample's own order of rows
    return {key: value[o] for key, value in out.items()}, names
