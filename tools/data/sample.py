"""Generate a realistic e-commerce sample dataset with planted user segments.

The data is synthetic but shaped like a shop's export: a catalogue whose titles
and descriptions carry each category's vocabulary, a view -> cart -> purchase
funnel, ratings and reviews only for purchased items, and a year of timestamps
before a reference date derived from the seed (never from the clock), so the
same seed always gives byte-identical files. ``truth.csv`` records the planted
segment of every user so clustering quality can be measured.

Everything is vectorised with numpy: 100,000 users and ~1M events take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError
from tools.core.workspace import atomic_folder
from tools.data.sample_bots import BOT_SEGMENT, add_bots, bot_count
from tools.data.sample_order import order_variant_names, split_by_order
from tools.data.sample_vocab import (
    ASPECTS,
    CATEGORIES,
    CATEGORY_NAMES,
    CLOSERS,
    OPENERS,
)

FILES = ("items.csv", "events.csv", "users.csv", "truth.csv")
EVENT_TYPES = ("view", "cart", "purchase", "rating", "review")
MIN_USERS = 10
MIN_ITEMS = 50
_DAY = 86_400
_REFERENCE_BASE = 1_735_689_600  # 2025-01-01T00:00:00Z; the seed shifts it by whole days.


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote: where, how much, and the planted segment names."""

    out_dir: Path
    n_users: int
    n_items: int
    n_events: int
    segments: tuple[str, ...]
    files: tuple[str, ...]
    n_bots: int = 0  # of n_users; truth.csv calls their segment "bot"


@dataclass(frozen=True)
class _Segment:
    """How one planted segment shops; every field differs between at least two segments."""

    name: str
    share: float
    core: dict[str, float]  # categories holding ~80% of the segment's attention, relative weights
    touches: tuple[int, float]  # (minimum, mean) items looked at per user; negative binomial tail
    extra_views: float  # mean repeat views per item looked at (comparison shopping)
    p_cart: float
    p_buy: float  # given cart
    p_rate: float  # given purchase
    p_review: float  # given rated: a written review instead of a bare rating
    p_discount: float  # chance an item looked at is on sale
    price_pref: tuple[float, float]  # Beta(a, b) over the within-category price rank
    recency: tuple[float, float]  # last-active days ago: exponential scale, or uniform (lo, hi) if lo > 0
    rating: tuple[float, float]  # mean and spread of the 1-5 ratings
    flavour: tuple[str, ...]  # segment-specific review sentences
    n_flavour: int  # how many of them a review carries (book lovers write long reviews)


_SEGMENTS = (
    _Segment("bargain_hunters", 0.30, {"Household Essentials": 1, "Beauty & Personal Care": 1},
             (3, 4.1), 0.8, 0.25, 0.50, 0.25, 0.10, 0.80, (1.0, 5.0), (0.0, 14.0), (3.2, 1.2),
             ("Bought it on sale, so the price was right.", "Waited for a discount before ordering.",
              "Cheaper than in the shops.", "For this price I can't complain much."), 1),
    _Segment("fashion_forward", 0.22, {"Clothing": 1, "Shoes & Accessories": 1},
             (3, 4.4), 0.2, 0.50, 0.75, 0.15, 0.15, 0.25, (1.4, 3.0), (0.0, 6.0), (3.9, 0.9),
             ("Got compliments the first time I wore it.", "Goes with everything in my wardrobe.",
              "Sizing runs a little small.", "Already styled it three different ways."), 1),
    _Segment("home_and_garden", 0.18, {"Home & Kitchen": 1, "Garden & Outdoor": 1},
             (3, 4.0), 0.3, 0.40, 0.65, 0.45, 0.20, 0.20, (3.0, 2.0), (0.0, 35.0), (4.3, 0.5),
             ("It fits nicely in our kitchen.", "Makes the house feel cozier.",
              "Used it every weekend in the garden.", "The whole family uses it."), 1),
    _Segment("tech_enthusiasts", 0.14, {"Electronics": 1, "Computers & Accessories": 1},
             (3, 4.0), 0.5, 0.45, 0.70, 0.50, 0.35, 0.10, (5.0, 1.6), (0.0, 18.0), (4.0, 0.6),
             ("Compared the specs with three other models before buying.",
              "A firmware update fixed a small glitch.", "Setup with my other devices took minutes.",
              "Benchmarks match what the reviews promised."), 1),
    _Segment("book_lovers", 0.10, {"Books": 1},
             (3, 3.6), 0.1, 0.55, 0.85, 0.85, 0.85, 0.20, (2.0, 2.0), (0.0, 25.0), (4.4, 0.6),
             ("I read it slowly over a couple of weeks, savouring every chapter.",
              "The themes stayed with me long after I turned the last page.",
              "I've been recommending it to everyone in my book club.",
              "Some passages I reread two or three times just for the language.",
              "It reminded me why I fell in love with reading in the first place.",
              "The pacing in the middle dragged a little, but the ending made up for it.",
              "I made notes in the margins, which I rarely do.",
              "Already looking for more titles by the same author."), 3),
    _Segment("lapsed_one_time_buyers", 0.06, {"Toys & Games": 1},
             (1, 1.3), 0.2, 0.80, 0.85, 0.45, 0.50, 0.25, (2.0, 2.0), (230.0, 330.0), (2.7, 1.1),
             ("It was a gift and it arrived late.", "Bought it once for a birthday.",
              "Probably won't order again anytime soon.", "Delivery took much longer than promised."), 1),
)
SEGMENT_NAMES = tuple(s.name for s in _SEGMENTS)

_COUNTRIES = (("US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "IT", "SE"),
              (0.34, 0.14, 0.12, 0.09, 0.08, 0.06, 0.05, 0.05, 0.04, 0.03))
_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
_AGE_BASE = np.array([0.18, 0.30, 0.24, 0.16, 0.12])
_AGE_TILT = {"fashion_forward": 0, "tech_enthusiasts": 1, "home_and_garden": 2, "book_lovers": 4}
# plant_gender: one segment is mostly women, every other segment is near even. The gender is
# drawn from its own random stream, so the other files are byte-identical with or without it.
GENDER_SKEW = ("fashion_forward", 0.85)  # (planted segment, its share of "F")
GENDER_ELSEWHERE = 0.45  # share of "F" in every other segment
_GENDER_STREAM = 0x67656E646572  # "gender"


def generate_sample(
    out_dir: str | Path,
    n_users: int = 3000,
    seed: int = 0,
    n_items: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    bots: float = 0.0,
    plant_gender: bool = False,
    order_only: bool = False,
) -> SampleSummary:
    """Write a synthetic e-commerce dataset with planted segments into ``out_dir``.

    Files: ``items.csv`` (item_id,title,category,description,price), ``events.csv``
    (user_id,item_id,event_type,timestamp,value,text; timestamp in unix seconds,
    value = amount paid for purchases and 1-5 for rating/review events),
    ``users.csv`` (user_id,country,signup_date,age_band; with ``plant_gender`` also
    gender, F or M: ``GENDER_SKEW`` says which planted segment is mostly F, the others
    are near even) and ``truth.csv`` (user_id,segment). The same ``seed`` gives
    byte-identical files. Files are
    written to a temporary directory beside ``out_dir`` and moved into place, so a
    reader never sees half a dataset. ``n_items`` defaults to one per five users
    (at least 100). ``progress(done, total)`` is called after each stage.

    ``bots`` is the share of the ``n_users`` that are bots (tools/data/sample_bots.py):
    ``round(bots · n_users)`` of them, with the ids after the others', ``bot`` as their
    segment in truth.csv and their kind in its ``bot_type`` column. The other users are
    exactly those of ``n_users − n_bots`` users without bots (same seed and ``n_items``).

    ``order_only`` splits one planted segment in two that differ only in the order of
    their events (tools/data/sample_order.py): same items, counts, types and timestamps.
    """
    n_users, seed, n_items = _validate(n_users, seed, n_items)
    n_bots = bot_count(bots, n_users, MIN_USERS)
    n_people = n_users - n_bots
    total = 5
    report = progress or (lambda done, total: None)
    rng = np.random.Generator(np.random.PCG64(seed))
    ref = _REFERENCE_BASE + (seed % 365) * _DAY

    items, item_cat, item_price, item_sale = _catalogue(rng, n_items)
    report(1, total)
    seg = _assign_segments(rng, n_people)
    report(2, total)
    ev = _events(rng, seg, item_cat, item_price, item_sale, ref)
    report(3, total)
    ev["text"] = _review_texts(rng, ev, seg, item_cat)
    segments, planted = SEGMENT_NAMES, np.asarray(SEGMENT_NAMES, dtype=object)[seg]
    if order_only:
        ev, planted = split_by_order(ev, seg, SEGMENT_NAMES, seed)
        segments = order_variant_names(SEGMENT_NAMES)
    report(4, total)

    user_ids = _ids("u", n_users)
    ev, kinds = add_bots(ev, seed, n_people, n_bots, item_price, ref)
    first_ts = np.full(n_users, ref, dtype=np.int64)
    np.minimum.at(first_ts, ev["user"], ev["ts"])
    events = pd.DataFrame({
        "user_id": pd.Categorical.from_codes(ev["user"], categories=user_ids),
        "item_id": pd.Categorical.from_codes(ev["item"], categories=items["item_id"].to_numpy()),
        "event_type": pd.Categorical.from_codes(ev["type"], categories=list(EVENT_TYPES)),
        "timestamp": ev["ts"],
        "value": ev["value"],
        "text": ev["text"],
    })
    people = _users(rng, user_ids[:n_people], seg, first_ts[:n_people], _genders(seed, seg) if plant_gender else None)
    truth = pd.DataFrame({"user_id": user_ids[:n_people], "segment": planted})
    if n_bots:
        # Bots sign up like anyone (segment 0 has no age tilt, nor a gender skew; their genders have a stream of their own).
        no_segment = np.zeros(n_bots, np.int64)
        bot_users = _users(np.random.Generator(np.random.PCG64([seed, 2])), user_ids[n_people:], no_segment,
                           first_ts[n_people:], _genders(seed, no_segment, stream=2) if plant_gender else None)  # fmt: skip
        people = pd.concat([people, bot_users], ignore_index=True)
        bot_truth = pd.DataFrame({"user_id": user_ids[n_people:], "segment": BOT_SEGMENT, "bot_type": kinds})
        truth = pd.concat([truth.assign(bot_type=""), bot_truth], ignore_index=True)
    tables = {"items.csv": items, "events.csv": events, "users.csv": people, "truth.csv": truth}
    out = _write_atomically(out_dir, tables)
    report(5, total)
    return SampleSummary(out, n_users, n_items, len(events), segments, FILES, n_bots)


def _validate(n_users: int, seed: int, n_items: int | None) -> tuple[int, int, int]:
    def is_int(x: object) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    if not is_int(n_users) or n_users < MIN_USERS:
        raise ParameterError(f"n_users must be an integer of at least {MIN_USERS}, got {n_users!r}.",
                             f"Ask for {MIN_USERS} users or more, e.g. the default 3000.")
    if not is_int(seed) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}.", "Use e.g. seed=0.")
    if n_items is None:
        n_items = max(100, round(n_users / 5))
    if not is_int(n_items) or n_items < MIN_ITEMS:
        raise ParameterError(f"n_items must be an integer of at least {MIN_ITEMS}, got {n_items!r}.",
                             "Leave n_items unset to get one item per five users.")
    return int(n_users), int(seed), int(n_items)


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(5, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def _split(text: str) -> np.ndarray:
    return np.asarray(text.split("|") if "|" in text else text.split(), dtype=object)


def _catalogue(rng: np.random.Generator, n_items: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    n_cat = len(CATEGORY_NAMES)
    # Round-robin then shuffle: every category gets its fair share, ids reveal nothing.
    cat = rng.permutation(np.arange(n_items) % n_cat)
    title = np.empty(n_items, dtype=object)
    desc = np.empty(n_items, dtype=object)
    price = np.empty(n_items)
    for c, (brands, adjs, products, feats, benefits, _, (median, sigma)) in enumerate(CATEGORIES.values()):
        idx = np.flatnonzero(cat == c)
        k = len(idx)
        nouns, leads = (np.asarray(p, dtype=object) for p in zip(*(x.split("=") for x in products.split("|"))))
        prod = rng.integers(0, len(nouns), k)
        b, a, f, g = (_split(s) for s in (brands, adjs, feats, benefits))
        title[idx] = b[rng.integers(0, len(b), k)] + " " + a[rng.integers(0, len(a), k)] + " " + nouns[prod]
        desc[idx] = leads[prod] + " " + f[rng.integers(0, len(f), k)] + ". " + g[rng.integers(0, len(g), k)]
        price[idx] = median * np.exp(sigma * rng.standard_normal(k))
    # Every fourth item of a category (by position) is on sale, so each category has both kinds.
    rank = np.empty(n_items, dtype=np.int64)
    order = np.argsort(cat, kind="stable")
    rank[order] = np.arange(n_items) - np.searchsorted(cat[order], cat[order])
    sale = rank % 4 == 0
    pct = rng.choice(np.array([15, 20, 25, 30, 40]), n_items)
    price = np.where(sale, price * (1 - pct / 100), price)
    price = np.maximum(np.round(price, 2), 0.99)
    desc[sale] = desc[sale] + " On sale: " + pct[sale].astype(str).astype(object) + "% off for a limited time."
    items = pd.DataFrame({"item_id": _ids("i", n_items), "title": title,
                          "category": np.asarray(CATEGORY_NAMES, dtype=object)[cat],
                          "description": desc, "price": price})
    return items, cat, price, sale


def _assign_segments(rng: np.random.Generator, n_users: int) -> np.ndarray:
    shares = np.array([s.share for s in _SEGMENTS])
    exact = shares / shares.sum() * n_users
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n_users - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(_SEGMENTS)), counts))


def _events(rng: np.random.Generator, seg: np.ndarray, item_cat: np.ndarray, item_price: np.ndarray,
            item_sale: np.ndarray, ref: int) -> dict[str, np.ndarray]:
    n, n_cat = len(seg), len(CATEGORY_NAMES)
    par = {f: np.array([getattr(s, f) for s in _SEGMENTS]) for f in
           ("extra_views", "p_cart", "p_buy", "p_rate", "p_review", "p_discount")}
    alpha = np.array([[s.core.get(c, 0.0) / sum(s.core.values()) for c in CATEGORY_NAMES] for s in _SEGMENTS])[seg]
    core = alpha > 0

    # Per-user category preferences: ~80% on the segment's core categories, rest spread thinly.
    core_mass = rng.beta(24.0, 6.0, n)[:, None]
    # Dirichlet around the core weights: users differ a little in how they split their core.
    g_core = rng.gamma(np.where(core, 40.0 * alpha, 1.0)) * core
    g_core /= g_core.sum(1, keepdims=True)
    g_rest = rng.gamma(0.7, size=(n, n_cat)) * ~core
    weights = core_mass * g_core + (1 - core_mass) * g_rest / g_rest.sum(1, keepdims=True)

    # Items looked at per user: a minimum plus a negative binomial tail of heavy users.
    lo, mean = (np.array([s.touches[i] for s in _SEGMENTS])[seg] for i in (0, 1))
    r = 3.0
    touches = lo.astype(np.int64) + rng.negative_binomial(r, r / (r + mean - lo))
    tu = np.repeat(np.arange(n), touches)
    ts_seg = seg[tu]
    t = len(tu)

    # Everyone in the export is a customer: one touch per user is a purchase in a core category,
    # so a user's segment shows even when the rest of their touches are sparse.
    first = np.cumsum(touches) - touches
    cat = _draw(rng, weights, tu)
    cat[first] = _draw(rng, g_core, np.arange(n))

    # Item: pick sale / full price, then a price rank from the segment's Beta preference.
    order = np.lexsort((item_price, item_sale, item_cat))
    group = item_cat[order] * 2 + item_sale[order]
    start = np.searchsorted(group, np.arange(2 * n_cat))
    count = np.searchsorted(group, np.arange(2 * n_cat), side="right") - start
    g = cat * 2 + (rng.random(t) < par["p_discount"][ts_seg])
    pa, pb = (np.array([s.price_pref[i] for s in _SEGMENTS])[ts_seg] for i in (0, 1))
    pos = np.minimum((rng.beta(pa, pb) * count[g]).astype(np.int64), count[g] - 1)
    item = order[start[g] + pos]

    # When: each user is last active `last` days ago and active over a span before that.
    rec = np.array([s.recency for s in _SEGMENTS])[seg]
    lapsed = rec[:, 0] > 0
    last = np.where(lapsed, rng.uniform(rec[:, 0], np.maximum(rec[:, 1], rec[:, 0])),
                    np.minimum(rng.exponential(np.maximum(rec[:, 1], 1e-9)), 150.0))
    span = np.where(lapsed, 21.0, 90 + np.maximum(274 - last, 0)) * rng.random(n)
    day = last[tu] + rng.random(t) * span[tu]
    day[first + touches - 1] = last  # the latest touch sets the user's recency
    t0 = ref - 1 - (day * _DAY).astype(np.int64)

    # Funnel per touch: repeat views, then cart, purchase, rating or review.
    nv = 1 + rng.poisson(par["extra_views"][ts_seg])
    gap = rng.integers(600, 2 * _DAY, t)
    cart = rng.random(t) < par["p_cart"][ts_seg]
    buy = cart & (rng.random(t) < par["p_buy"][ts_seg])
    cart[first] = buy[first] = True
    rated = buy & (rng.random(t) < par["p_rate"][ts_seg])
    review = rated & (rng.random(t) < par["p_review"][ts_seg])
    t_cart = t0 + (nv - 1) * gap + rng.integers(60, 3600, t)
    t_buy = t_cart + rng.integers(60, _DAY // 2, t)
    t_rate = t_buy + rng.integers(2 * _DAY, 21 * _DAY, t)
    rmean = np.array([s.rating[0] for s in _SEGMENTS])[seg] + 0.3 * rng.standard_normal(n)
    rsd = np.array([s.rating[1] for s in _SEGMENTS])[ts_seg]
    stars = np.clip(np.rint(rmean[tu] + rsd * rng.standard_normal(t)), 1, 5)

    v_touch = np.repeat(np.arange(t), nv)
    v_rank = np.arange(len(v_touch)) - np.repeat(np.cumsum(nv) - nv, nv)
    parts = [(v_touch, 0, t0[v_touch] + v_rank * gap[v_touch], np.nan)]
    for mask, code, when, value in ((cart, 1, t_cart, None), (buy, 2, t_buy, item_price[item]),
                                    (rated & ~review, 3, t_rate, stars), (review, 4, t_rate, stars)):
        idx = np.flatnonzero(mask)
        parts.append((idx, code, when[idx], np.nan if value is None else value[idx]))
    touch = np.concatenate([p[0] for p in parts])
    etype = np.concatenate([np.full(len(p[0]), p[1], dtype=np.int8) for p in parts])
    ts = np.concatenate([p[2] for p in parts])
    value = np.concatenate([np.broadcast_to(p[3], len(p[0])) for p in parts])

    keep = ts < ref  # the export is a snapshot: anything after the reference date has not happened
    touch, etype, ts, value = touch[keep], etype[keep], ts[keep], value[keep]
    user, it = tu[touch], item[touch]
    o = np.lexsort((etype, it, user, ts))
    return {"user": user[o], "item": it[o], "type": etype[o], "ts": ts[o], "value": value[o]}


def _draw(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One category per entry of ``rows`` from that row's weights, without a Python loop."""
    n, k = weights.shape
    # Offsetting row i's cumulative weights by i turns all rows into one sorted array.
    flat = (np.cumsum(weights, axis=1) + np.arange(n)[:, None]).ravel()
    return np.minimum(np.searchsorted(flat, rng.random(len(rows)) + rows, side="right") - rows * k, k - 1)


def _review_texts(rng: np.random.Generator, ev: dict[str, np.ndarray], seg: np.ndarray,
                  item_cat: np.ndarray) -> np.ndarray:
    """Review text for review events ("" elsewhere), built from fragments so few strings repeat."""
    text = np.full(len(ev["type"]), "", dtype=object)
    idx = np.flatnonzero(ev["type"] == 4)
    if len(idx) == 0:
        return text
    k = len(idx)
    stars = ev["value"][idx]
    sent = np.where(stars <= 2, 0, np.where(stars == 3, 1, 2))
    rs = seg[ev["user"][idx]]
    cat = item_cat[ev["item"][idx]]
    opener = np.asarray(OPENERS, dtype=object)[sent, rng.integers(0, 4, k)]
    closer = np.asarray(CLOSERS, dtype=object)[sent, rng.integers(0, 4, k)]
    pick = rng.integers(0, 4, k)
    before = np.asarray([[a[0] for a in s] for s in ASPECTS], dtype=object)[sent, pick]
    after = np.asarray([[a[1] for a in s] for s in ASPECTS], dtype=object)[sent, pick]
    nouns = np.asarray([c[5].split("|") for c in CATEGORIES.values()], dtype=object)
    out = opener + " " + before + nouns[cat, rng.integers(0, nouns.shape[1], k)] + after
    for s, segment in enumerate(_SEGMENTS):
        sel = np.flatnonzero(rs == s)
        flav = np.asarray(segment.flavour, dtype=object)
        # Distinct sentences per review: the first n_flavour of a random ordering.
        chosen = np.argsort(rng.random((len(sel), len(flav))), axis=1)[:, : segment.n_flavour]
        for j in range(segment.n_flavour):
            out[sel] = out[sel] + " " + flav[chosen[:, j]]
    text[idx] = out + " " + closer
    return text


def _genders(seed: int, seg: np.ndarray, stream: int = 0) -> np.ndarray:
    """F or M per user: ``GENDER_SKEW``'s segment mostly F, the rest near even, from a stream of its own
    (``stream`` > 0: another one, for the sample's bots)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _GENDER_STREAM, *([stream] if stream else [])])))
    planted = SEGMENT_NAMES.index(GENDER_SKEW[0])
    p_female = np.where(seg == planted, GENDER_SKEW[1], GENDER_ELSEWHERE)
    return np.where(rng.random(len(seg)) < p_female, "F", "M").astype(object)


def _users(rng: np.random.Generator, user_ids: np.ndarray, seg: np.ndarray, first_ts: np.ndarray,
           gender: np.ndarray | None = None) -> pd.DataFrame:
    n = len(user_ids)
    country = np.asarray(_COUNTRIES[0], dtype=object)[rng.choice(len(_COUNTRIES[0]), n, p=_COUNTRIES[1])]
    # Age leans weakly by segment: a quarter of a segment's users come from its tilted band.
    band = rng.choice(len(_AGE_BANDS), n, p=_AGE_BASE)
    tilt = np.array([_AGE_TILT.get(s.name, -1) for s in _SEGMENTS])[seg]
    band = np.where((tilt >= 0) & (rng.random(n) < 0.25), tilt, band)
    signup = first_ts - rng.integers(0, 900, n) * _DAY - rng.integers(0, _DAY, n)
    dates = pd.to_datetime(signup, unit="s", utc=True).strftime("%Y-%m-%d")
    users = pd.DataFrame({"user_id": user_ids, "country": country, "signup_date": np.asarray(dates, dtype=object),
                          "age_band": np.asarray(_AGE_BANDS, dtype=object)[band]})
    if gender is not None:
        users["gender"] = gender
    return users


def _write_atomically(out_dir: str | Path, tables: dict[str, pd.DataFrame]) -> Path:
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out} exists and is not a directory.", "Choose a directory path for the sample data.")
    # merge: never delete the user's other files in an existing folder, swap in only ours.
    with atomic_folder(out, merge=True) as tmp:
        for name, df in tables.items():
            # %.15g prints amounts as written (12.34) and ratings as integers (4).
            df.to_csv(tmp / name, index=False, float_format="%.15g", lineterminator="\n")
    return out
