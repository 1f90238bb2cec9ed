"""Traits that are statistically real: the tests, intervals and Benjamini–Hochberg behind every cited trait."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import make_dataset
from scipy import stats

from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.explain.labels import label_segments
from tools.segment.features import BehaviourFeatures, FeatureSpec
from tools.segment.profiles import build_profiles
from tools.segment.significance import (
    MANN_WHITNEY,
    UNTESTED,
    WELCH,
    Pool,
    benjamini_hochberg,
    is_cited,
)
from tools.segment.summary import segment_traits, summarise_segments

# ---------------------------------------------------------------- Benjamini–Hochberg


def test_benjamini_hochberg_matches_a_hand_computed_example():
    # Sorted: 0.005, 0.01, 0.03, 0.04, 0.2 (m = 5); m·p/rank: 0.025, 0.025, 0.05, 0.05, 0.2;
    # the running minimum from the largest down leaves them so. Back in the given order:
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    np.testing.assert_allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.2, 0.025])
    # A larger p-value can lower the q of a smaller one (step-up): 0.03·3/2 = 0.045 > 0.04·3/3.
    np.testing.assert_allclose(benjamini_hochberg([0.001, 0.03, 0.04]), [0.003, 0.04, 0.04])
    assert benjamini_hochberg([0.9, 0.95]).tolist() == [0.95, 0.95] and benjamini_hochberg([]).size == 0
    assert benjamini_hochberg([0.6] * 3 + [0.0]).max() <= 1.0


def test_benjamini_hochberg_agrees_with_scipy():
    rng = np.random.default_rng(3)
    for m in (1, 7, 200):
        p = np.concatenate([rng.uniform(size=m), rng.uniform(0, 1e-3, size=m // 3)])
        np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


# ---------------------------------------------------------------- the tests of one group against the rest


def test_welch_and_its_interval_match_scipy_on_light_tails():
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, size=(300, 1))
    x[:60] += 1.0
    members = np.arange(300) < 60
    got = Pool(x).compare(members)
    want = stats.ttest_ind(x[:60, 0], x[60:, 0], equal_var=False)
    assert got.method == (WELCH,) and got.p[0] == pytest.approx(want.pvalue, rel=1e-9)
    low, high = stats.t.interval(0.95, 59, loc=x[:60, 0].mean(), scale=stats.sem(x[:60, 0]))
    assert (got.ci_low[0], got.ci_high[0]) == (pytest.approx(low), pytest.approx(high))
    assert got.n[0] == 60 and got.n_other[0] == 240 and got.consistent[0]


def test_heavy_tails_in_a_small_group_get_mann_whitney_and_a_bootstrap_interval():
    rng = np.random.default_rng(1)
    spend = rng.lognormal(3, 2, size=(400, 1))  # skewness in the tens: t is not safe for 25 members
    members = np.arange(400) < 25
    got = Pool(spend).compare(members)
    want = stats.mannwhitneyu(spend[:25, 0], spend[25:, 0], method="asymptotic", use_continuity=True)
    assert got.method == (MANN_WHITNEY,) and got.p[0] == pytest.approx(want.pvalue, rel=1e-9)
    assert got.ci_low[0] < spend[:25, 0].mean() < got.ci_high[0]
    # The bootstrap interval of a right-skewed mean leans right, where a t interval is symmetric.
    mean = spend[:25, 0].mean()
    assert got.ci_high[0] - mean > mean - got.ci_low[0]
    # Ties (shares at 0) are handled like scipy's tie correction.
    shares = np.where(rng.uniform(size=(400, 1)) < 0.9, 0.0, rng.uniform(size=(400, 1)))
    tied = Pool(shares).compare(members)
    want = stats.mannwhitneyu(shares[:25, 0], shares[25:, 0], method="asymptotic", use_continuity=True)
    assert tied.method == (MANN_WHITNEY,) and tied.p[0] == pytest.approx(want.pvalue, rel=1e-9)


def test_all_groups_at_once_match_scipy_group_by_group():
    # Five groups of a pool tested in one pass: each against every other row (rows of no group, -1,
    # among them), as scipy tests it. Column 0 has a large mean and a small spread (the others' sum of
    # squares must not lose its digits), column 1 heavy tails (rank tests for the small groups),
    # column 2 gaps.
    rng = np.random.default_rng(5)
    codes = np.repeat([0, 1, 2, 3, 4, -1], [300, 150, 25, 20, 6, 5])
    x = np.column_stack([1e6 + rng.normal(0, 0.01, len(codes)) + 0.002 * (codes == 1), rng.lognormal(2, 1.5, len(codes)),
                         np.where(rng.uniform(size=len(codes)) < 0.3, np.nan, rng.normal(codes, 1.0))])  # fmt: skip
    x[codes == 2, 1] *= 3.0
    got = Pool(x).compare_groups(codes, 5)
    methods = set()
    for c in range(5):
        for j in range(3):
            ok = np.isfinite(x[:, j])
            a, b = x[ok & (codes == c), j], x[ok & (codes != c), j]
            assert (got[c].n[j], got[c].n_other[j]) == (len(a), len(b))
            assert got[c].mean[j] == pytest.approx(a.mean(), rel=1e-12)
            method = got[c].method[j]
            methods.add(method)
            if method == WELCH:
                assert got[c].p[j] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6, abs=1e-300)
            elif method == MANN_WHITNEY:
                want = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True).pvalue
                assert got[c].p[j] == pytest.approx(want, rel=1e-9)
            assert got[c].ci_low[j] < a.mean() < got[c].ci_high[j]
    assert {WELCH, MANN_WHITNEY} <= methods
    one = Pool(x).compare(codes == 3)  # one group is the same computation
    np.testing.assert_array_equal(one.p, got[3].p)
    np.testing.assert_array_equal(one.ci_low, got[3].ci_low)


def test_too_few_values_are_not_tested_and_gaps_are_skipped():
    x = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, np.nan], [4.0, 2.0]] + [[float(i), float(i)] for i in range(20)])
    members = np.arange(len(x)) < 4  # 4 members with a value in column 0, 2 in column 1
    got = Pool(x).compare(members)
    assert got.method == (UNTESTED, UNTESTED) and np.isnan(got.p).all()
    assert got.n.tolist() == [4, 2]
    members = np.arange(len(x)) < 10
    got = Pool(x).compare(members)
    assert got.n.tolist() == [10, 8] and np.isfinite(got.p).all()


def test_a_rank_shift_against_the_means_is_not_consistent():
    # Most members sit below the rest, but two huge values lift their mean above it.
    rest = np.linspace(10, 20, 200)
    members = np.concatenate([np.full(28, 5.0), [5000.0, 8000.0]])
    x = np.concatenate([members, rest])[:, None]
    got = Pool(x).compare(np.arange(len(x)) < 30)
    assert got.method == (MANN_WHITNEY,) and got.mean[0] > rest.mean() and got.p[0] < 1e-6
    assert not got.consistent[0]


# ---------------------------------------------------------------- a planted trait with no real difference


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Three groups (60, 40, 12). ``frequency`` really differs (group 0 is busier); ``monetary`` is the
    same lognormal for everyone, except that two of group 2's twelve members are huge spenders, which
    gives the group a mean several times everyone's by chance; ``recency_days`` is noise."""
    data, truth = make_dataset(tmp_path_factory.mktemp("signif"), sizes=(60, 40, 12))
    profiles = build_profiles(data, HashingEmbedder(), EmbeddingCache(None, "hashing-64"))
    labels = np.array([truth[u] for u in profiles.user_ids])
    rng = np.random.default_rng(11)
    n = len(labels)
    frequency = np.where(labels == 0, 30.0, 10.0) + rng.normal(0, 2, n)
    monetary = rng.lognormal(4, 0.5, n)
    whales = np.flatnonzero(labels == 2)[:2]
    monetary[whales] = 40 * monetary.max()
    recency = rng.uniform(0, 100, n)
    specs = (FeatureSpec("frequency", "events", "count"), FeatureSpec("monetary", "total spend", "money"),
             FeatureSpec("recency_days", "days since last activity", "days"))
    raw = np.column_stack([frequency, monetary, recency])
    feats = BehaviourFeatures(profiles.user_ids, specs, raw, raw.astype(np.float32), currency="$")
    return data, replace(profiles, features=feats), labels


def _summary(summaries) -> dict:
    return {"data": {"kind": "behaviour", "currency": "$"}, "segments": [s.as_dict() for s in summaries]}


def _untested(summary: dict) -> dict:
    """The same summary as a run without tests would have it: every trait taken at its effect."""
    segments = []
    for s in summary["segments"]:
        strip = [{k: v for k, v in t.items() if k not in ("p", "q", "significant", "test", "n", "ci_low", "ci_high")}
                 for t in s["profile"]]
        segments.append(s | {"profile": strip, "traits": [t for t in strip if abs(t["effect"]) >= 0.2][:5]})
    return summary | {"segments": segments}


def test_a_planted_trait_with_no_real_difference_is_not_cited(planted):
    data, profiles, labels = planted
    # Taken at its effect alone, the whales make spend group 2's strongest trait.
    by_effect = segment_traits(profiles.features, labels, 3)[2]
    assert by_effect[0].feature == "monetary" and by_effect[0].effect > 0.5
    summaries = summarise_segments(data, profiles, labels)
    spend = next(t for t in summaries[2].profile if t.feature == "monetary")
    assert spend.test == MANN_WHITNEY and spend.q >= 0.05 and spend.significant is False
    assert all(t.feature != "monetary" for s in summaries for t in s.traits)
    busy = next(t for t in summaries[0].traits if t.feature == "frequency")
    assert busy.significant and busy.q < 1e-6 and busy.ci_low < busy.segment_value < busy.ci_high and busy.n == 60
    summary = _summary(summaries)
    assert not is_cited(summary["segments"][2]["profile"][0]) and summary["segments"][2]["profile"][0]["feature"] == "monetary"
    # Without the tests the name says what the whales did; with them, neither name nor description does.
    before = {lab.segment_id: lab for lab in label_segments(_untested(summary))}
    assert "spend" in before[2].name.lower(), before[2].name
    for lab in label_segments(summary):
        text = f"{lab.name} {lab.description} {' '.join(lab.facts)}".lower()
        assert "spend" not in text, (lab.segment_id, text)
    assert "Frequent" in label_segments(summary)[0].name


def test_sub_segments_cite_only_what_sets_them_apart_significantly(planted):
    # Groups 1 and 2 become sub-segments of one top-level segment 3; within it only the whales set 2 apart.
    data, profiles, labels = planted
    top = np.where(labels == 0, 0, 3)
    summaries = summarise_segments(data, profiles, labels, top, {0: None, 3: None, 1: 3, 2: 3})
    assert [s.segment_id for s in summaries] == [0, 3, 1, 2]
    sub = summaries[3]
    vs_parent = {t.feature: t for t in sub.profile_vs_parent}
    assert set(vs_parent) == {"frequency", "monetary", "recency_days"} and not vs_parent["monetary"].significant
    assert sub.traits_vs_parent == () and all(t.feature != "monetary" for t in sub.traits)
    # The same members have one interval of their mean, whatever they are compared with.
    for t in sub.profile:
        assert (vs_parent[t.feature].ci_low, vs_parent[t.feature].ci_high) == (t.ci_low, t.ci_high) != (None, None)
    # One family: the q-values count every test of the run, against everyone and against the parent.
    tested = [t.p for s in summaries for t in (*s.profile, *s.profile_vs_parent)]
    q = benjamini_hochberg(tested)
    got = [t.q for s in summaries for t in (*s.profile, *s.profile_vs_parent)]
    np.testing.assert_allclose(got, q)
    for lab in label_segments(_summary(summaries)):
        assert "spend" not in f"{lab.name} {lab.description}".lower(), lab


def _t(feature: str, effect: float, significant: bool, value: float = 1.0) -> dict:
    return {"feature": feature, "label": feature.replace("_", " "), "unit": "days" if "days" in feature else "orders",
            "segment_value": value, "population_value": 1.0, "lift": value, "effect": effect, "n": 50, "ci_low": value,
            "ci_high": value, "p": 1e-6 if significant else 0.5, "q": 1e-5 if significant else 0.6,
            "significant": significant, "test": "welch"}


def test_a_sub_segment_keeps_the_noun_its_significant_traits_against_everyone_earn():
    # Both halves of a busy parent order more than everyone (significantly); against the parent only recency
    # tells them apart. They buy, so they are Buyers, even though orders do not set either apart within the parent.
    def sub(sid: int, recency: float) -> dict:
        return {"id": sid, "parent": 0, "level": 1, "size": 100, "share": 0.25, "keywords": [], "children": [],
                "profile": [_t("orders", 1.2, True, 3.0), _t("recency_days", recency, True, 1 + recency)],
                "profile_vs_parent": [_t("recency_days", 2 * recency, True, 1 + recency), _t("orders", 0.05, False, 3.0)],
                "traits_vs_parent": [_t("recency_days", 2 * recency, True, 1 + recency)],
                "traits": [_t("orders", 1.2, True, 3.0)]}

    parent = {"id": 0, "parent": None, "level": 0, "size": 200, "share": 0.5, "keywords": [], "children": [1, 2],
              "profile": [_t("orders", 1.2, True, 3.0), _t("recency_days", 0.0, False)], "traits": [_t("orders", 1.2, True, 3.0)]}
    other = {"id": 3, "parent": None, "level": 0, "size": 200, "share": 0.5, "keywords": [], "children": [],
             "profile": [_t("orders", -1.2, True, 0.5), _t("recency_days", 0.0, False)], "traits": [_t("orders", -1.2, True, 0.5)]}
    labels = {lab.segment_id: lab.name for lab in label_segments({"data": {"kind": "behaviour"},
                                                                    "segments": [parent, sub(1, 0.6), sub(2, -0.6), other]})}
    assert labels[1].endswith("Buyers") and labels[2].endswith("Buyers"), labels


def test_compare_cites_only_differences_that_pass_their_test(planted):
    # Groups 1 and 2 differ in nothing but the whales' spend (and noise): compare must not say they spend differently.
    from types import SimpleNamespace

    from tools.explain.describe import compare_segments

    data, profiles, labels = planted
    summary = _summary(summarise_segments(data, profiles, labels))
    for s in summary["segments"]:
        s["name"] = f"Group {'ABC'[s['id']]}"
    run = SimpleNamespace(summary=summary, feature_raw=profiles.features.raw, feature_names=profiles.features.names,
                          members=lambda sid: labels == sid, segment=lambda sid: summary["segments"][sid],
                          fitted=np.ones(len(labels), dtype=bool))
    raw = profiles.features.raw
    gap = (raw[labels == 2, 1].mean() - raw[labels == 1, 1].mean()) / raw[:, 1].std()
    assert gap > 0.5, "the whales make spend the largest gap between groups 2 and 1"
    c = compare_segments(run, 2, 1)
    assert all(d.feature != "monetary" for d in c.differences) and "spend" not in c.narrative
    busy = compare_segments(run, 0, 1)
    assert busy.differences[0].feature == "frequency" and busy.differences[0].q < 0.05 and "events" in busy.narrative
