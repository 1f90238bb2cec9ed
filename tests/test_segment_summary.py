"""Segment summaries: c-TF-IDF keywords, traits with lift, representative members."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import GROUPS, make_dataset

from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.segment.features import BehaviourFeatures, FeatureSpec
from tools.segment.profiles import build_profiles
from tools.segment.summary import (
    MIN_EFFECT,
    class_tfidf,
    representatives,
    segment_keywords,
    segment_traits,
    summarise_segments,
)


def test_class_tfidf_on_a_tiny_matrix():
    counts = np.array([[2, 0, 1], [0, 3, 1]], dtype=float)
    got = class_tfidf(sp.csr_matrix(counts))
    tf = np.array([[2 / 3, 0, 1 / 3], [0, 3 / 4, 1 / 4]])
    avg_words = 7 / 2
    idf = np.log1p(avg_words / np.array([2, 3, 2]))
    np.testing.assert_allclose(got, tf * idf)
    # A word every segment uses scores below a segment's own word of the same frequency.
    shared = class_tfidf(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1]], dtype=float)))
    assert shared[0, 0] < shared[0, 1] and shared[1, 0] < shared[1, 2]


def test_class_tfidf_tolerates_an_empty_segment():
    got = class_tfidf(sp.csr_matrix(np.array([[0, 0], [1, 2]], dtype=float)))
    assert np.isfinite(got).all() and not got[0].any()


def _features(raw: np.ndarray, names: list[str]) -> BehaviourFeatures:
    specs = tuple(FeatureSpec(n, n.replace("_", " "), "count") for n in names)
    return BehaviourFeatures(np.arange(len(raw)).astype(str), specs, raw, raw.astype(np.float32))


def test_traits_lift_is_segment_mean_over_population_mean():
    # Segment 0 buys a lot, segment 1 little; "visits" is the same everywhere.
    raw = np.array([[10, 5, 1.0], [12, 5, 0.0], [2, 5, -1.0], [4, 5, 0.0]])
    labels = np.array([0, 0, 1, 1])
    traits = segment_traits(_features(raw, ["purchases", "visits", "balance"]), labels, 2)
    top0 = traits[0][0]
    assert top0.feature == "purchases"
    assert top0.segment_value == pytest.approx(11) and top0.population_value == pytest.approx(7)
    assert top0.lift == pytest.approx(11 / 7)
    assert top0.effect == pytest.approx((11 - 7) / raw[:, 0].std())
    assert traits[1][0].lift == pytest.approx(3 / 7) and traits[1][0].effect < 0
    # No difference, no trait.
    assert all(t.feature != "visits" for seg in traits for t in seg)
    # Population mean 0: the lift is undefined rather than infinite.
    balance = next(t for t in traits[0] if t.feature == "balance")
    assert balance.lift is None and balance.effect == pytest.approx(0.5 / np.sqrt(0.5))
    assert balance.as_dict()["lift"] is None
    assert all(abs(t.effect) >= MIN_EFFECT for seg in traits for t in seg)
    d = top0.as_dict()
    assert d["lift"] == round(11 / 7, 4) and set(d) >= {"feature", "label", "segment_value", "population_value", "lift"}


def test_traits_ignore_gaps_and_missing_features():
    raw = np.array([[np.nan, 1.0], [4.0, 1.0], [1.0, 3.0], [1.0, 3.0]])
    traits = segment_traits(_features(raw, ["rating", "x"]), np.array([0, 0, 1, 1]), 2)
    rating = next(t for t in traits[0] if t.feature == "rating")
    assert rating.segment_value == pytest.approx(4.0) and rating.population_value == pytest.approx(2.0)
    assert segment_traits(None, np.array([0, 1]), 2) == [(), ()]


def test_representatives_are_nearest_the_segment_centre():
    points = np.array([[0.0], [1.0], [10.0], [2.0], [20.0], [21.0]])
    labels = np.array([0, 0, 0, 0, 1, 1])
    reps = representatives(points, labels, 2, n=2)
    # Segment 0's centre is 3.25: nearest are 2.0 (row 3) then 1.0 (row 1).
    assert reps[0].tolist() == [3, 1]
    assert sorted(reps[1].tolist()) == [4, 5]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    data, truth = make_dataset(tmp_path_factory.mktemp("summary"))
    profiles = build_profiles(data, HashingEmbedder(), EmbeddingCache(None, "hashing-64"))
    labels = np.array([truth[u] for u in profiles.user_ids])
    return data, profiles, labels


def test_keywords_reflect_the_words_planted_in_each_group(planted):
    data, profiles, labels = planted
    keywords = segment_keywords(data, profiles, labels, len(GROUPS))
    for group, words in zip(GROUPS, keywords):
        assert set(group.words) <= set(words[:6]), (group.name, words)
        others = {w for g in GROUPS if g is not group for w in g.words}
        assert not others & set(words), (group.name, words)
        assert "for" not in words and "and" not in words, "stop words are dropped"


def test_summaries_carry_sizes_traits_and_members(planted):
    data, profiles, labels = planted
    summaries = summarise_segments(data, profiles, labels)
    assert [s.segment_id for s in summaries] == [0, 1, 2]
    assert [s.size for s in summaries] == [30, 20, 12]
    assert sum(s.share for s in summaries) == pytest.approx(1.0)
    for s in summaries:
        members = set(profiles.user_ids[labels == s.segment_id])
        assert 0 < len(s.representative_user_ids) <= 5 and set(s.representative_user_ids) <= members
        assert s.traits, "each planted group differs in behaviour"
    # Collectors (segment 1) spend far more than the population.
    spend = next(t for t in summaries[1].traits if t.feature in ("monetary", "avg_price"))
    assert spend.lift is not None and spend.lift > 2
    d = summaries[0].as_dict()
    assert set(d) == {"id", "name", "description", "size", "share", "keywords", "traits", "representative_user_ids",
                      "representative_texts", "profile", "attributes", "parent", "level", "children", "traits_vs_parent",
                      "profile_vs_parent"}
    assert (d["parent"], d["level"], d["children"], d["traits_vs_parent"], d["profile_vs_parent"]) == (None, 0, [], [], [])
    # The profile has every feature its members have a value for (names contrast siblings by it),
    # each with its test; the traits are its strongest significant entries.
    raw = profiles.features.raw
    for s in summaries:
        valued = {f for j, f in enumerate(profiles.features.names) if np.isfinite(raw[labels == s.segment_id, j]).any()}
        assert {t.feature for t in s.profile} == valued
        assert [t.feature for t in s.profile if t.significant and abs(t.effect) >= MIN_EFFECT][: len(s.traits)] == [t.feature for t in s.traits]
        assert all(t.significant and t.q < 0.05 and t.ci_low <= t.segment_value <= t.ci_high for t in s.traits)
    assert {"n", "ci_low", "ci_high", "p", "q", "significant", "test"} <= set(d["traits"][0])
    json.dumps(d, allow_nan=False)


def test_a_feature_most_members_lack_is_never_a_trait():
    # Days between orders exist only for customers with two orders or more: in a segment of
    # one-order customers the few who have a gap must not make "they order again sooner" a trait.
    n = 200
    labels = np.repeat([0, 1], n // 2)
    gap = np.full(n, np.nan)
    gap[:10] = 1.0  # 10% of segment 0, all tiny gaps
    gap[n // 2:] = np.linspace(60, 120, n // 2)  # every member of segment 1
    orders = np.where(labels == 0, 1.0, 4.0)
    raw = np.column_stack([gap, orders])
    specs = (FeatureSpec("median_gap_days", "median days between orders", "days"), FeatureSpec("orders", "orders", "orders"))
    feats = BehaviourFeatures(np.asarray([str(i) for i in range(n)]), specs, raw, np.nan_to_num(raw).astype(np.float32))
    traits = segment_traits(feats, labels, 2)
    profile = segment_traits(feats, labels, 2, limit=None, min_effect=0.0)
    assert [t.feature for t in traits[0]] == ["orders"] and {t.feature for t in profile[0]} == {"orders"}
    assert {t.feature for t in traits[1]} == {"median_gap_days", "orders"}
