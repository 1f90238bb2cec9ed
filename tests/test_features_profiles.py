"""Behaviour features, user profiles and the alpha fusion of text with behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import (
    DAY,
    GROUPS,
    ITEMS_PER_GROUP,
    CountingEmbedder,
    dataset_from_frames,
    make_dataset,
)

from tools.core.errors import ParameterError
from tools.data.items import item_texts, split_categories
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.segment.features import FeatureSpec, compute_features, scale_features
from tools.segment.profiles import build_profiles, fuse

# --- split_categories ---------------------------------------------------------------


def test_split_categories_handles_separators_gaps_and_placeholders():
    got = split_categories(pd.Series(["Action|Comedy", None, "Home ; Garden > Tools", "(no genres listed)", ""]))
    assert got.tolist() == [["Action", "Comedy"], [], ["Home", "Garden", "Tools"], [], []]


# --- compute_features on a hand-checked dataset ---------------------------------------


@pytest.fixture
def tiny():
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["Tulip", "Trowel", "Zombie"],
            "category": ["Garden", "Garden|Tools", "Horror"],
            "price": [10.0, 20.0, 5.0],
        }
    )
    events = pd.DataFrame(
        [
            ("A", "i1", "view", 0, None, None),
            ("A", "i2", "purchase", 1, 20.0, None),
            ("A", "i1", "view", 3, None, None),
            ("B", "i1", "rating", 8, 2.0, None),
            ("B", "i3", "rating", 10, 4.0, "scary good"),
            ("C", "i3", "view", 2, None, None),
        ],
        columns=["user_id", "item_id", "event_type", "timestamp", "value", "text"],
    )
    events["timestamp"] = events["timestamp"] * DAY
    return dataset_from_frames(events, items)


def test_compute_features_values(tiny):
    f = compute_features(tiny, np.array(["A", "B", "C"], dtype=object))
    col = {name: f.raw[:, j] for j, name in enumerate(f.names)}
    np.testing.assert_array_equal(col["frequency"], [3, 2, 1])
    np.testing.assert_array_equal(col["distinct_items"], [2, 2, 1])
    np.testing.assert_allclose(col["recency_days"], [7, 0, 8])
    np.testing.assert_allclose(col["span_days"], [3, 2, 0])
    np.testing.assert_allclose(col["monetary"], [20, 0, 0])
    np.testing.assert_array_equal(col["purchases"], [1, 0, 0])
    np.testing.assert_allclose(col["share_view"], [2 / 3, 0, 1])
    np.testing.assert_allclose(col["share_rating"], [0, 1, 0])
    np.testing.assert_allclose(col["share_purchase"], [1 / 3, 0, 0])
    np.testing.assert_allclose(col["rating_mean"], [np.nan, 3, np.nan])
    np.testing.assert_allclose(col["rating_spread"], [np.nan, 1, np.nan])
    np.testing.assert_allclose(col["avg_price"], [40 / 3, 7.5, 5])
    np.testing.assert_allclose(col["text_share"], [0, 0.5, 0])
    # "Garden|Tools" counts half towards each category.
    np.testing.assert_allclose(col["category_Garden"], [2.5 / 3, 0.5, 0])
    np.testing.assert_allclose(col["category_Tools"], [0.5 / 3, 0, 0])
    np.testing.assert_allclose(col["category_Horror"], [0, 0.5, 1])
    shares = np.column_stack([col[n] for n in f.names if n.startswith("category_")])
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert col["diversity"][2] == 0 and col["diversity"][1] > col["diversity"][0] > 0
    # Rows follow the order asked for, not the data's order.
    again = compute_features(tiny, np.array(["C", "A", "B"], dtype=object))
    np.testing.assert_array_equal(again.raw[:, 0], [1, 3, 2])
    assert {s.unit for s in f.specs} <= {"days", "orders", "count", "money", "share", "rating", "ratio"}


def test_compute_features_scaled_is_standardised_without_gaps(tiny):
    f = compute_features(tiny, np.array(["A", "B", "C"], dtype=object))
    assert f.scaled.dtype == np.float32 and f.scaled.shape == f.raw.shape
    assert np.isfinite(f.scaled).all()
    np.testing.assert_allclose(f.scaled.mean(axis=0), 0, atol=1e-6)
    stds = f.scaled.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-5) | (stds == 0))


def test_scale_features_logs_counts_fills_median_and_zeroes_constants():
    specs = [FeatureSpec("const", "c", "count"), FeatureSpec("freq", "f", "count"), FeatureSpec("r", "r", "rating")]
    raw = np.array([[1, 5, np.nan], [1, 50, 2.0], [1, 500, 4.0]])
    x = scale_features(raw, specs)
    assert not x[:, 0].any()
    logged = np.log1p([5, 50, 500])
    np.testing.assert_allclose(x[:, 1], (logged - logged.mean()) / logged.std(), rtol=1e-5)
    # The gap is filled with the median (3), which is the mean here: it lands on 0.
    np.testing.assert_allclose(x[:, 2], [0, -np.sqrt(1.5), np.sqrt(1.5)], rtol=1e-5)
    assert np.isnan(raw[0, 2]), "scaling must not modify the raw matrix"


# --- fuse ------------------------------------------------------------------------------


def _spread(block: np.ndarray) -> float:
    """Mean squared distance to the centroid: the block's total variance."""
    return float(((block - block.mean(axis=0)) ** 2).sum(axis=1).mean())


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.8, 1.0])
def test_fuse_splits_the_variance_as_alpha_says(alpha):
    rng = np.random.default_rng(1)
    text = rng.normal(size=(400, 24)) * rng.uniform(0.01, 0.3, size=24) + 5.0  # off-centre, uneven scales
    behaviour = rng.normal(size=(400, 7)) * rng.uniform(0.5, 40, size=7)
    c = fuse(text.astype(np.float32), behaviour.astype(np.float32), alpha)
    assert c.shape == (400, 31) and c.dtype == np.float32
    text_part, beh_part = c[:, :24].astype(np.float64), c[:, 24:].astype(np.float64)
    assert _spread(text_part) == pytest.approx(alpha, abs=1e-4)
    assert _spread(beh_part) == pytest.approx(1 - alpha, abs=1e-4)
    # Squared distance between two users = alpha*(text part) + (1-alpha)*(behaviour part), on equal footing.
    d = ((c[0] - c[1]) ** 2).sum()
    dz = ((text[0] - text[1]) ** 2).sum() / _spread(text)
    dx = ((behaviour[0] - behaviour[1]) ** 2).sum() / _spread(behaviour)
    assert d == pytest.approx(alpha * dz + (1 - alpha) * dx, rel=1e-3)


@pytest.mark.parametrize("alpha", [-0.01, 1.01, 2.0])
def test_fuse_rejects_alpha_outside_0_1(alpha):
    with pytest.raises(ParameterError, match="alpha"):
        fuse(np.zeros((3, 2)), np.zeros((3, 2)), alpha)


def test_fuse_without_behaviour_is_the_text_itself():
    text = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(fuse(text, None, 0.3), text)
    np.testing.assert_array_equal(fuse(text, np.zeros((5, 0)), 0.3), text)


# --- build_profiles ---------------------------------------------------------------------


def test_item_texts_join_title_categories_description():
    items = pd.DataFrame(
        {"title": ["Tulip", "Bare", None], "category": ["Garden|Bulbs", None, None], "description": ["Red.", None, "Only"]}
    )
    assert item_texts(items).tolist() == ["Tulip. Garden, Bulbs. Red", "Bare", "Only"]


def test_build_profiles_on_planted_groups(tmp_path):
    data, truth = make_dataset(tmp_path)
    emb = CountingEmbedder(HashingEmbedder(dim=64))
    cache = EmbeddingCache(tmp_path / "cache", emb.name)
    stages = []
    p = build_profiles(data, emb, cache, alpha=0.4, progress=lambda s, d, t: stages.append(s))
    n_users = len(truth)
    n_reviews = len({r for g in GROUPS for r in g.reviews})
    assert list(p.user_ids) == sorted(truth)
    assert p.text.shape == (n_users, 64)
    np.testing.assert_allclose(np.linalg.norm(p.text, axis=1), 1.0, rtol=1e-5)
    assert p.features is not None and p.fused.shape == (n_users, 64 + len(p.features.names))
    assert p.alpha == 0.4
    assert len(p.item_ids) == len(GROUPS) * ITEMS_PER_GROUP and p.item_vectors.shape == (len(p.item_ids), 64)
    assert p.n_texts_total == len(p.item_ids) + n_reviews
    assert p.n_texts_embedded == p.n_texts_total == len(emb.texts)
    assert {"embedding texts", "building profiles"} <= set(stages)

    # Each user's text profile points at their own group's items.
    item_group = np.array([next(g for g, grp in enumerate(GROUPS) if i.startswith(grp.category[0].lower())) for i in p.item_ids])
    nearest_item = np.argmax(p.text @ p.item_vectors.T, axis=1)
    assert (item_group[nearest_item] == np.array([truth[u] for u in p.user_ids])).all()

    # Again, with a different alpha: same texts, nothing embedded, text profiles unchanged.
    again = build_profiles(data, emb, EmbeddingCache(tmp_path / "cache", emb.name), alpha=0.9)
    assert again.n_texts_embedded == 0 and len(emb.texts) == p.n_texts_total
    np.testing.assert_allclose(again.text, p.text, atol=1e-6)
    assert not np.allclose(again.fused, p.fused)


def test_build_profiles_text_only_data_has_no_behaviour_block():
    events = pd.DataFrame(
        {"user_id": ["m1", "m2", "m3"], "item_id": [None] * 3, "event_type": "text", "text": ["card lost", "card stolen", "refund please"]}
    )
    data = dataset_from_frames(events, None, kind="text")
    p = build_profiles(data, HashingEmbedder(dim=32), EmbeddingCache(None, "hashing-32"), alpha=0.3)
    assert p.features is None and p.alpha == 1.0
    np.testing.assert_array_equal(p.fused, p.text)
    assert p.n_texts_total == 3 and len(p.item_ids) == 0
