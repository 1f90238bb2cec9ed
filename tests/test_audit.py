"""The fairness audit: its statistics, which attributes it reads and how, the planted gender-skewed segment it must flag,
recommendation quality on the evaluation protocol, and the CLI's answers to bad or attribute-less input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.core.errors import ParameterError
from tools.core.run_state import load_run
from tools.data.ingest import load_dataset
from tools.embed.embedding import HashingEmbedder
from tools.explain.audit import AUDIT_FILE, audit_run, proxy_direction, read_assignments, saved_or_new_audit
from tools.explain.audit_attributes import AGE_BANDS, age_band, sensitive_attributes
from tools.explain.audit_stats import association, cramers_v, group_difference_p, holm
from tools.explain.audit_text import audit_lines
from tools.pipeline import RunParams, segment_dataset

BIN = Path(sys.executable).parent / "segscope"


def segscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    """400 sample users with the planted gender skew, segmented with the hashing embedder: (data folder, workspace)."""
    from tools.data.sample import generate_sample

    root = tmp_path_factory.mktemp("audit")
    generate_sample(root / "data", n_users=400, seed=3, plant_gender=True)
    # Flat k=6, the planted count: at 400 users and a 64-d hashing embedder the automatic top level
    # is two (taste tells apart less than buying does), and the audit needs the planted segment as one.
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(k=6, seed=3, embedder="hashing-64"), embedder=HashingEmbedder())
    return root / "data", root / "ws"


# ---------------------------------------------------------------- statistics
def test_bias_corrected_cramers_v_is_near_zero_for_independence_where_the_plain_one_is_not():
    rng = np.random.default_rng(0)
    segments, groups = rng.integers(0, 8, 300), rng.integers(0, 6, 300)
    table = np.zeros((8, 6))
    np.add.at(table, (segments, groups), 1)
    corrected, plain, chi2, dof = cramers_v(table)
    assert dof == 35 and plain > 0.1 and corrected < 0.05 and corrected <= plain


def test_cramers_v_is_one_for_a_perfect_association_and_matches_scipy_uncorrected():
    from scipy.stats.contingency import association as scipy_association

    corrected, plain, _, _ = cramers_v(np.array([[40, 0, 0], [0, 25, 0], [0, 0, 35]]))
    assert corrected == pytest.approx(1.0) and plain == pytest.approx(1.0)
    table = np.array([[30, 10, 5], [12, 40, 9]])
    assert cramers_v(table)[1] == pytest.approx(scipy_association(table, method="cramer"))
    # Bergsma (2013) by hand for r=2, k=3: phi² less (k-1)(r-1)/(n-1), over min(k~, r~) - 1 = r~ - 1 = 1 - 1/(n-1)
    n = table.sum()
    phi2 = cramers_v(table)[2] / n
    assert cramers_v(table)[0] == pytest.approx(np.sqrt((phi2 - 2 / (n - 1)) / (2 - 1 / (n - 1) - 1)))


def test_permutation_p_values_are_seeded_and_tell_association_from_noise():
    rng = np.random.default_rng(1)
    segments = rng.integers(0, 3, 600)
    noise = rng.integers(0, 2, 600)
    linked = np.where(rng.random(600) < 0.8, segments % 2, noise)
    strong = association(segments, linked, 3, 2, 199, np.random.default_rng(0))
    weak = association(segments, noise, 3, 2, 199, np.random.default_rng(0))
    assert strong.p_value == pytest.approx(1 / 200) and strong.cramers_v > 0.5
    assert weak.p_value > 0.05 and weak.cramers_v < 0.1
    assert association(segments, noise, 3, 2, 199, np.random.default_rng(0)) == weak


def test_holm_adjusts_in_the_input_order():
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_cell_p_values_are_exact_hypergeometric_tails_doubled():
    from scipy.stats import fisher_exact, hypergeom

    from tools.explain.audit_stats import cell_p_values

    p = cell_p_values(np.array([[5, 0], [0, 5]]))
    np.testing.assert_allclose(p, fisher_exact([[5, 0], [0, 5]])[1])  # symmetric: doubling is Fisher's two-sided p
    table = np.array([[30, 10, 5], [12, 40, 9]])
    expected = 2 * hypergeom.sf(40 - 1, table.sum(), 50, 61)  # segment 1 (61 users) holds 40 of group 1's 50
    assert cell_p_values(table)[1, 1] == pytest.approx(min(1.0, expected))


def test_group_differences_by_permutation():
    values = np.r_[np.full(50, 1.0), np.full(50, 0.0)]
    codes = np.r_[np.zeros(50, dtype=int), np.ones(50, dtype=int)]
    gap, p = group_difference_p(values, codes, 2, 99, np.random.default_rng(0))
    np.testing.assert_allclose(gap, [1.0, -1.0])
    np.testing.assert_allclose(p, [0.01, 0.01])  # no shuffle splits them as cleanly: the smallest p 99 shuffles give


def test_the_proxy_rule_needs_ratio_points_significance_and_enough_users():
    assert proxy_direction(0.84, 0.53, 0.001, 200, 400) == "over"
    assert proxy_direction(0.16, 0.47, 0.001, 200, 400) == "under"
    assert proxy_direction(0.84, 0.53, 0.2, 200, 400) is None  # not significant
    assert proxy_direction(0.84, 0.53, 0.001, 29, 400) is None  # too few users in the segment
    assert proxy_direction(0.84, 0.53, 0.001, 200, 29) is None  # too few in the group
    assert proxy_direction(0.09, 0.05, 0.001, 200, 400) is None  # ×1.8 but 4 points: not a proxy
    assert proxy_direction(0.70, 0.55, 0.001, 200, 400) is None  # 15 points but ×1.27


def test_carriers_of_an_under_represented_group_go_against_it_and_report_plain_effects():
    from tools.explain.audit import _carriers

    specs = [("category_Action", "share of activity in Action", "share"), ("category_Romance", "share of activity in Romance", "share")]
    under = _carriers(np.array([2.0, 0.5]), np.array([-0.3, 0.4]), -1.0, specs, None)
    assert [(c.feature, c.segment_effect, c.group_effect) for c in under] == [("category_Action", 2.0, -0.3)]
    over = _carriers(np.array([2.0, 0.5]), np.array([-0.3, 0.4]), 1.0, specs, None)
    assert [c.feature for c in over] == ["category_Romance"]


# ---------------------------------------------------------------- attributes
def test_ages_are_banded_and_other_columns_grouped_or_skipped():
    assert [label for _, _, label in AGE_BANDS] == ["under 18", "18–24", "25–34", "35–44", "45–54", "55–64", "65+"]
    assert age_band(pd.Series(["7", "18", "24", "25", "64", "65", None, "n/a"])).tolist() == [
        "under 18", "18–24", "18–24", "25–34", "55–64", "65+", None, None]
    users = pd.DataFrame({"user_id": ["1", "2", "3", "4"], "age": ["15", "33", "33", "70"], "sex": ["F", "M", None, "M"],
                          "zip_code": ["a", "b", "c", "d"], "plan": ["x", "x", "x", "x"]})  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tools.explain.audit_attributes.MAX_GROUPS", 3)
        found, skipped = sensitive_attributes(users, np.array(["1", "2", "3", "4", "5"]))
    by_name = {a.name: a for a in found}
    assert by_name["age"].values.tolist() == ["under 18", "25–34", "25–34", "65+", None] and by_name["age"].banding
    assert by_name["sex"].values.tolist() == ["F", "M", None, "M", None] and by_name["sex"].n_missing == 2
    assert dict(skipped) == {"zip_code": "4 distinct values (more than 3): it describes people, not groups",
                             "plan": "every user with a value has the same one"}
    found, _ = sensitive_attributes(users, np.array(["1", "2"]), ["Gender"])  # a synonym, any case
    assert [(a.name, a.asked_as) for a in found] == [("sex", "Gender")]


def test_a_requested_attribute_that_does_not_exist_names_the_ones_there_are():
    users = pd.DataFrame({"user_id": ["1"], "age": ["20"], "gender": ["F"]})
    with pytest.raises(ParameterError) as info:
        sensitive_attributes(users, np.array(["1"]), ["religion"])
    assert "no user attribute 'religion'" in info.value.one_line() and "age, gender" in info.value.one_line()
    with pytest.raises(ParameterError, match="no user attributes"):
        sensitive_attributes(None, np.array(["1"]), ["gender"])


def test_sensitive_attributes_never_enter_the_profiles(planted):
    """The same events with and without the users table give the same profiles, bit for bit."""
    import dataclasses

    from tools.embed.cache import EmbeddingCache
    from tools.segment.profiles import build_profiles

    data = load_dataset(planted[0])
    assert {"gender", "age_band", "country"} <= set(data.user_attributes)
    embedder = HashingEmbedder()
    with_users = build_profiles(data, embedder, EmbeddingCache(planted[0].parent / "c1", embedder.name))
    without = build_profiles(dataclasses.replace(data, users=None), embedder, EmbeddingCache(planted[0].parent / "c2", embedder.name))
    np.testing.assert_array_equal(with_users.fused, without.fused)
    assert not any(a in name for name in with_users.features.names for a in ("gender", "age_band", "country"))


def test_assignments_are_read_by_column_name_and_the_top_level_only_when_there_is_one(tmp_path):
    (tmp_path / "assignments.csv").write_text("segment_id,user_id,top_segment_id\n3,u1,0\n4,u2,0\n5,u3,1\n")
    assert read_assignments(tmp_path).to_dict() == {"u1": 3, "u2": 4, "u3": 5}
    assert read_assignments(tmp_path, "top").to_dict() == {"u1": 0, "u2": 0, "u3": 1}
    (tmp_path / "assignments.csv").write_text("user_id,segment_id\nu1,3\n")
    with pytest.raises(ParameterError, match="one level"):
        read_assignments(tmp_path, "top")


# ---------------------------------------------------------------- the planted sample
def test_the_planted_gender_skewed_segment_is_flagged_and_carried_by_its_categories(planted):
    data_dir, ws = planted
    run = load_run(ws)
    audit = audit_run(run, ["gender", "country"], recommendations=False, permutations=199).as_dict()
    truth = pd.read_csv(data_dir / "truth.csv", dtype=str).set_index("user_id")["segment"]
    planted_segment = pd.Series(run.labels, index=run.user_ids.astype(str)).groupby(truth).agg(lambda s: s.mode()[0])["fashion_forward"]
    gender, country = audit["attributes"]
    assert gender["attribute"] == "gender" and gender["association"]["p_value"] == pytest.approx(1 / 200)
    assert [p["segment_id"] for p in gender["proxies"]] == [int(planted_segment)]
    cells = {g["value"]: g for g in gender["proxies"][0]["groups"]}
    assert cells["F"]["direction"] == "over" and cells["F"]["ratio"] >= 1.5 and cells["M"]["direction"] == "under"
    carriers = [c["feature"] for c in gender["proxies"][0]["carried_by"]]
    assert {"category_Clothing", "category_Shoes & Accessories"} & set(carriers), carriers
    assert country["proxies"] == [] and country["association"]["cramers_v"] < 0.1
    text = "\n".join(audit_lines(audit))
    assert f"Segment {planted_segment} “" in text and "is in effect a proxy for gender" in text
    assert "Not audited: signup_date" not in text  # only what was asked for


def test_an_attributes_p_values_do_not_depend_on_the_others_audited(planted):
    run = load_run(planted[1])
    alone = audit_run(run, ["country"], recommendations=False, permutations=99).as_dict()["attributes"][0]
    second = audit_run(run, ["age_band", "country"], recommendations=False, permutations=99).as_dict()["attributes"][1]
    assert alone["attribute"] == second["attribute"] == "country" and 0.05 < alone["association"]["p_value"] < 1  # a p that shuffles move
    assert alone == second


def test_recommendation_quality_per_group_follows_the_evaluation_protocol(planted):
    from tools.explain.audit_recs import consumption_events
    from tools.recommend.evaluate import HYBRID_METHOD, evaluate

    run = load_run(planted[1])
    audit = audit_run(run, ["gender"], permutations=99).as_dict()
    reference = evaluate(consumption_events(run.data.events), k=10)
    overall = audit["recommendations"]
    assert overall["ndcg"] == pytest.approx(reference.row(HYBRID_METHOD).ndcg, abs=1e-4)
    assert overall["hr"] == pytest.approx(reference.row(HYBRID_METHOD).hr, abs=1e-4)
    assert overall["n_test_users"] == reference.n_test_users
    groups = audit["attributes"][0]["recommendations"]
    assert sum(g["n_test_users"] for g in groups) == reference.n_test_users  # every test user has a gender here
    weighted = sum(g["ndcg"] * g["n_test_users"] for g in groups) / reference.n_test_users
    assert weighted == pytest.approx(overall["ndcg"], abs=1e-3)
    assert all(0.0 <= g["exposure"] <= 1.0 and 0.0 <= g["history_head_share"] <= 1.0 for g in groups)


def test_an_audit_is_saved_with_its_run_and_reused_only_when_asked_the_same(planted):
    run = load_run(planted[1])
    first, reused = saved_or_new_audit(run, ["gender"], recommendations=False, permutations=49)
    assert not reused and json.loads((run.run_dir / AUDIT_FILE).read_text()) == first
    again, reused = saved_or_new_audit(run, ["gender"], recommendations=False, permutations=49)
    assert reused and again == first
    other, reused = saved_or_new_audit(run, ["gender"], recommendations=False, permutations=49, seed=1)
    assert not reused and other["parameters"]["seed"] == 1


def test_cli_audit_of_the_sample_and_its_bad_input(planted, tmp_path):
    _, ws = planted
    result = segscope("audit", "--workspace", ws, "--sensitive", "gender", "--no-recommendations", "--permutations", "99")
    assert result.returncode == 0, result.stderr
    assert "Cramér's V" in result.stdout and "is in effect a proxy for gender" in result.stdout
    audit_path = load_run(ws).run_dir / AUDIT_FILE
    before = audit_path.read_bytes()
    bad = segscope("audit", "--workspace", ws, "--sensitive", "gender,religion")
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "religion" in lines[0] and "gender" in lines[0], bad.stderr
    assert "Traceback" not in bad.stderr and audit_path.read_bytes() == before  # nothing written
    top = segscope("audit", "--workspace", ws, "--level", "top")
    assert top.returncode == 2 and "one level" in top.stderr


def test_data_without_attributes_says_so_and_invents_nothing(tmp_path):
    events = "user_id,item_id,event_type,timestamp\n" + "".join(
        f"u{u},i{(u * 7 + j) % 13},view,{1_700_000_000 + 3600 * j}\n" for u in range(24) for j in range(5))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text(events)
    segment_dataset(load_dataset(tmp_path / "data"), tmp_path / "ws", RunParams(k=2, embedder="hashing-64"), embedder=HashingEmbedder())
    audit = audit_run(load_run(tmp_path / "ws")).as_dict()
    assert audit["attributes"] == [] and audit["recommendations"] is None and "no user attributes" in audit["notes"][0]
    result = segscope("audit", "--workspace", tmp_path / "ws")
    assert result.returncode == 0 and "no user attributes" in result.stdout and "Cramér" not in result.stdout, result
    assert not (load_run(tmp_path / "ws").run_dir / AUDIT_FILE).exists()
    with_flag = segscope("audit", "--workspace", tmp_path / "ws", "--sensitive", "gender")
    assert with_flag.returncode == 2 and "no user attribute 'gender'" in with_flag.stderr
