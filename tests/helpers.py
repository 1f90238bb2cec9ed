"""Small deterministic data builders and test doubles shared by the tools tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import EVENT_COLUMNS, ITEM_COLUMNS, Dataset
from tools.data.ingest import fingerprint, load_dataset
from tools.embed.embedding import HashingEmbedder, ProgressFn

DAY = 86_400
REFERENCE = 1_735_689_600  # 2025-01-01, fixed so builds are byte-identical


@dataclass(frozen=True)
class Group:
    """One planted group: its items' vocabulary and how its members behave."""

    name: str
    category: str
    words: tuple[str, ...]  # planted in item titles/descriptions (and reviews)
    price: tuple[float, float]
    n_events: tuple[int, int]
    event_type: str  # what most of their events are
    last_seen_days: tuple[int, int]
    reviews: tuple[str, ...] = ()


GROUPS: tuple[Group, ...] = (
    Group("gardeners", "Garden", ("tulip", "compost", "trowel"), (5, 15), (18, 26), "view", (0, 5)),
    Group("collectors", "Watches", ("chronograph", "sapphire", "bezel"), (800, 2000), (3, 5), "purchase", (200, 300)),
    Group(
        "horror fans",
        "Horror",
        ("zombie", "haunted", "poltergeist"),
        (10, 20),
        (8, 12),
        "rating",
        (40, 80),
        ("terrifying zombie gore", "haunted house screams", "creepy poltergeist chills"),
    ),
)
ITEMS_PER_GROUP = 6


def behaviour_frames(sizes: Sequence[int] = (30, 20, 12), seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(events, items, truth) for three obvious groups of the given sizes; truth maps user -> group index."""
    rng = np.random.default_rng(seed)
    items, events, truth = [], [], {}
    for g, group in enumerate(GROUPS):
        for j in range(ITEMS_PER_GROUP):
            word = group.words[j % len(group.words)]
            items.append(
                {
                    "item_id": f"{group.category[0].lower()}{j}",
                    "title": f"{word.title()} {group.category} item {j}",
                    "category": group.category,
                    "description": f"A {word} for {' and '.join(group.words)} lovers",
                    "price": round(float(rng.uniform(*group.price)), 2),
                }
            )
    item_ids = {g: [f"{grp.category[0].lower()}{j}" for j in range(ITEMS_PER_GROUP)] for g, grp in enumerate(GROUPS)}
    user = 0
    for g, (group, size) in enumerate(zip(GROUPS, sizes)):
        for _ in range(size):
            uid = f"u{user:03d}"
            truth[uid] = g
            user += 1
            n = int(rng.integers(group.n_events[0], group.n_events[1] + 1))
            last = REFERENCE - int(rng.integers(*group.last_seen_days)) * DAY
            for e in range(n):
                etype = group.event_type if e else "view"  # everyone starts by looking
                row = {
                    "user_id": uid,
                    "item_id": str(rng.choice(item_ids[g])),
                    "event_type": etype,
                    "timestamp": last - e * DAY,
                    "value": None,
                    "text": None,
                }
                if etype == "rating":
                    row["value"] = float(rng.integers(4, 6))
                    row["text"] = str(rng.choice(group.reviews))
                elif etype == "purchase":
                    row["value"] = float(rng.uniform(*group.price))
                events.append(row)
    return pd.DataFrame(events), pd.DataFrame(items), truth


def make_events_csv(tmp_path: Path, sizes: Sequence[int] = (30, 20, 12), seed: int = 0) -> tuple[Path, dict[str, int]]:
    """Write events.csv + items.csv into a folder under ``tmp_path``; returns (folder, truth)."""
    events, items, truth = behaviour_frames(sizes, seed)
    folder = tmp_path / "shop"
    folder.mkdir(parents=True, exist_ok=True)
    events.to_csv(folder / "events.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    return folder, truth


def make_dataset(tmp_path: Path, sizes: Sequence[int] = (30, 20, 12), seed: int = 0) -> tuple[Dataset, dict[str, int]]:
    """The three-group behaviour dataset, loaded through the real loader."""
    folder, truth = make_events_csv(tmp_path, sizes, seed)
    return load_dataset(folder), truth


def dataset_from_frames(events: pd.DataFrame, items: pd.DataFrame | None = None, kind: str = "behaviour") -> Dataset:
    """A Dataset built directly from canonical-column frames (missing columns filled with NaN)."""
    events = events.copy()
    for col in EVENT_COLUMNS:
        if col not in events:
            events[col] = np.nan
    events = events[list(EVENT_COLUMNS)].astype({"user_id": str, "timestamp": float, "value": float})
    if items is not None:
        items = items.copy()
        for col in ITEM_COLUMNS:
            if col not in items:
                items[col] = np.nan
        items = items[list(ITEM_COLUMNS)].astype({"item_id": str, "price": float})
    return Dataset(events, items, None, kind, "test", fingerprint(events, items, None, kind))  # type: ignore[arg-type]


class CountingEmbedder:
    """Wraps an embedder and counts what it is asked to encode."""

    def __init__(self, inner: HashingEmbedder | None = None) -> None:
        self.inner = inner or HashingEmbedder()
        self.name = self.inner.name
        self.dim = self.inner.dim
        self.calls = 0
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.encode(texts, progress=progress)


def files_matching(root: Path, *patterns: str) -> list[Path]:
    """Every file or folder under ``root`` whose name matches one of ``patterns`` (e.g. temp leftovers)."""
    return sorted({p for pattern in patterns for p in root.rglob(pattern)})


def sample_workspace(root: Path, n_users: int = 300, seed: int = 1) -> Path:
    """A segmented workspace on generated shop data, with the fast hashing embedder; returns its path."""
    from tools.data.sample import generate_sample
    from tools.pipeline import RunParams, segment_dataset

    generate_sample(root / "data", n_users=n_users, seed=seed)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(seed=seed, embedder="hashing-64"), embedder=HashingEmbedder())
    return root / "ws"


def tiered_frames(sizes: Sequence[int] = (240, 200, 160), seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple[int, str]]]:
    """(events, items, truth) for three taste groups, each half steady buyers and half fading ones.

    Steady buyers purchase all year round; fading ones stopped 150 to 360 days
    before the end. Who buys in the last quarter therefore depends on the tier,
    not on the group: the structure a two-level hierarchy should find (groups on
    top, tiers below). ``truth`` maps user -> (group, tier).
    """
    rng = np.random.default_rng(seed)
    items = []
    for group in GROUPS:
        for j in range(ITEMS_PER_GROUP):
            word = group.words[j % len(group.words)]
            items.append({"item_id": f"{group.category[0].lower()}{j}", "title": f"{word.title()} {group.category} item {j}",
                          "category": group.category, "description": f"A {word} for {' and '.join(group.words)} lovers",
                          "price": round(float(rng.uniform(10, 40)), 2)})
    item_ids = [[f"{grp.category[0].lower()}{j}" for j in range(ITEMS_PER_GROUP)] for grp in GROUPS]
    events, truth = [], {}
    user = 0
    for g, size in enumerate(sizes):
        for i in range(size):
            uid = f"t{user:04d}"
            user += 1
            tier = "steady" if i % 2 == 0 else "fading"
            truth[uid] = (g, tier)
            n = int(rng.integers(6, 16))
            lo, hi = (0, 360) if tier == "steady" else (150, 360)
            for age in np.sort(rng.uniform(lo, hi, size=n)):
                own = rng.random() < 0.9
                item = str(rng.choice(item_ids[g] if own else item_ids[int(rng.integers(len(GROUPS)))]))
                events.append({"user_id": uid, "item_id": item, "event_type": "purchase",
                               "timestamp": REFERENCE - float(age) * DAY, "value": float(rng.uniform(10, 40)), "text": None})
    return pd.DataFrame(events), pd.DataFrame(items), truth


def tiered_dataset(sizes: Sequence[int] = (240, 200, 160), seed: int = 0) -> tuple[Dataset, dict[str, tuple[int, str]]]:
    events, items, truth = tiered_frames(sizes, seed)
    return dataset_from_frames(events, items), truth


HOSTILE_GROUP = "<b>x|y</b>"  # an attribute value that must reach every page escaped


def canned_audit(recommendations: bool = True) -> dict:
    """A fairness audit with fixed numbers (one proxy, one group too small, a hostile group value), as AuditReport.as_dict() gives it."""
    from tools.explain.audit_model import AttributeAudit, AuditReport, Carrier, FeatureEffect, GroupShare, ProxyFlag, SegmentComposition
    from tools.explain.audit_recs import GroupQuality
    from tools.explain.audit_stats import Association

    cells = [GroupShare("F", 60, 0.75, 0.5, 1.5, 0.0001, "over"), GroupShare(HOSTILE_GROUP, 20, 0.25, 0.5, 0.5, 0.0001, "under")]
    comps = (SegmentComposition(0, 'Gardeners "green" <b>thumbs</b>', 80, tuple(cells), False),
             SegmentComposition(2, "Tiny", 4, (GroupShare("F", 2, 0.5, 0.5, 1.0, 1.0), GroupShare(HOSTILE_GROUP, 2, 0.5, 0.5, 1.0, 1.0)), True))
    proxy = ProxyFlag(0, 'Gardeners "green" <b>thumbs</b>', tuple(cells), (Carrier("category_Garden", "share of activity in Garden", 1.5, 0.4),))
    quality = (GroupQuality("F", 70, 0.2, 0.1, 0.05, 0.01, 70, 0.6, 0.02, 0.5, 0.4, False, ("worse recommendations",)),
               GroupQuality(HOSTILE_GROUP, 12, 0.1, 0.05, -0.05, None, 12, 0.58, None, None, 0.41, True))
    attribute = AttributeAudit("gender", None, None, 124, 0, (("F", 62), (HOSTILE_GROUP, 62)), Association(0.41, 0.43, 22.0, 2, 0.001, 999),
                               "moderate", comps, (proxy,), (FeatureEffect("category_Garden", "share of activity in Garden", "share", 0.08, 0.6, ("F", 0.3), (HOSTILE_GROUP, 0.1)),),
                               (), quality if recommendations else None)
    overall = {"k": 10, "hr": 0.18, "ndcg": 0.09, "n_test_users": 82, "exposure": 0.6, "head_items": 4, "n_items": 40, "seconds": 1.0}
    return AuditReport("leaf", 124, 3, (attribute,), (("zip_code", "795 distinct values"),), overall if recommendations else None, (),
                       {"min_users": 30, "proxy_ratio": 1.5, "proxy_points": 0.1, "alpha": 0.05, "permutations": 999, "seed": 0}).as_dict()


def continuum_dataset(n_users: int = 600, seed: int = 21) -> Dataset:
    """One shop whose customers differ by degree only: a purchase rate and a churn day drawn from continuous laws.

    A continuum can still split reproducibly in two (a skewed rate does), and near the 0.8 threshold
    the verdict follows the last bits of the BLAS kernel (seed 1: 0.806 on an AVX-only CPU, under 0.8
    on an AVX-512 one). Seed 21 is far below it (best k 0.68), so tests of the no-groups case run on any CPU.

    No taste groups (every item is in one category) and no buying tiers: who buys in the last
    quarter follows each customer's own rate and whether they have churned, on a continuum.
    """
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"p{j}" for j in range(12)], "title": [f"Pantry item {j}" for j in range(12)],
                          "category": "Pantry", "description": "everyday pantry goods", "price": 5.0})
    events = []
    for u in range(n_users):
        rate = float(np.exp(rng.normal(np.log(0.04), 0.8)))  # purchases per day
        stop = min(float(rng.exponential(60.0)), 270.0)  # days before the end they stopped buying
        start = float(rng.uniform(stop + 60.0, 360.0))  # ... and started
        ages = rng.uniform(stop, start, size=max(1, int(rng.poisson(rate * (start - stop)))))
        for age in ages:
            events.append({"user_id": f"c{u:04d}", "item_id": f"p{int(rng.integers(12))}", "event_type": "purchase",
                           "timestamp": REFERENCE - float(age) * DAY, "value": float(rng.gamma(2.0, 10.0)), "text": None})
    return dataset_from_frames(pd.DataFrame(events), items)
