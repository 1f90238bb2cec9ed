"""Segment hierarchy: usefulness scores, the tree's ids and levels, the k and depth rules, and how a run shows the tree."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import continuum_dataset, tiered_dataset
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, completeness_score, homogeneity_score, roc_auc_score

from tools.core.run_state import load_run
from tools.embed.embedding import HashingEmbedder
from tools.explain.describe import describe_segment
from tools.pipeline import RunParams, segment_dataset
from tools.segment.clustering import SegmentModel
from tools.segment.hierarchy import (
    apply_splits,
    build_root_tree,
    build_tree,
    choose_depth_by_outlook,
    grow_splits,
    min_leaf_size,
)
from tools.segment.stability import Stability, most_stable_k, prediction_strength, reproducible
from tools.segment.usefulness import auc, r2, segment_means, usefulness

PARAMS = RunParams(embedder="hashing-64")


# ---------------------------------------------------------------- usefulness scores, checked by hand


def test_segment_means_come_from_the_fit_rows_and_unknown_segments_get_the_global_mean():
    pred = segment_means(np.array([0, 0, 1, 1]), np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 1, 2]))
    np.testing.assert_allclose(pred, [0.5, 1.0, 0.75])


def test_auc_counts_ties_as_half_and_agrees_with_scikit_learn():
    truth, score = np.array([1, 0, 1, 0]), np.array([0.9, 0.9, 0.5, 0.1])
    # Positive/negative pairs: (.9,.9) tie = 0.5, (.9,.1) = 1, (.5,.9) = 0, (.5,.1) = 1 -> 2.5 / 4.
    assert auc(truth, score) == pytest.approx(0.625) == roc_auc_score(truth, score)
    assert np.isnan(auc(np.ones(3), np.arange(3.0)))


def test_r2_is_one_minus_sse_over_sst_of_the_scored_rows():
    # SST = 1.5² + .5² + .5² + 1.5² = 5; SSE = 1 -> 0.8.
    assert r2(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 2.0, 4.0])) == pytest.approx(0.8)


def test_usefulness_of_segments_that_know_the_future_and_of_segments_that_do_not():
    rng = np.random.default_rng(0)
    bought = (rng.random(400) < 0.4).astype(float)
    spend = bought * rng.uniform(2, 4, 400)
    perfect = usefulness(bought.astype(int), bought, spend)
    assert perfect.auc == 1.0 and perfect.r2 > 0.8 and perfect.n_scores == 20
    random = usefulness(rng.integers(0, 5, 400), bought, spend)
    assert abs(random.auc - 0.5) < 0.06 and random.r2 < 0.02


# ---------------------------------------------------------------- the tree


def _two_level_space(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top groups 0 (two far-apart blobs of 130 and 70: heterogeneous), 1 and 2 (one tight blob each), in a 2-D space."""
    rng = np.random.default_rng(seed)
    top = np.repeat([0, 1, 2], [200, 120, 80])
    space = np.vstack([
        np.r_[rng.normal(-3, 0.3, (130, 2)), rng.normal(3, 0.3, (70, 2))],
        rng.normal(0, 0.3, (120, 2)), rng.normal(0, 0.3, (80, 2)),
    ]).astype(np.float32)
    return top, space


def test_a_split_goes_to_the_heterogeneous_segment_and_ids_follow_the_documented_scheme():
    top, space = _two_level_space()
    tree = build_tree(top, space, n_splits=1)
    assert tree.parents == {0: None, 1: None, 2: None, 3: 0, 4: 0}
    assert tree.levels == {0: 0, 1: 0, 2: 0, 3: 1, 4: 1}
    assert tree.children == {0: (3, 4), 1: (), 2: (), 3: (), 4: ()}
    # Leaves partition the users: each user is in one leaf, whose parent (or itself) is their top segment.
    assert set(np.unique(tree.leaf_labels)) == {1, 2, 3, 4}
    assert all(tree.parents[leaf] in (None, t) and (tree.parents[leaf] is not None or leaf == t)
               for leaf, t in zip(tree.leaf_labels, tree.top_labels))
    # Children are numbered largest first; predict follows the same splits.
    np.testing.assert_array_equal(tree.leaf_labels[:200], np.r_[np.full(130, 3), np.full(70, 4)])
    np.testing.assert_array_equal(tree.predict(top, space), tree.leaf_labels)


def test_no_splits_leave_each_top_segment_its_own_leaf():
    top, space = _two_level_space()
    for tree in (build_tree(top, space, 0), build_tree(top, None, 5)):
        np.testing.assert_array_equal(tree.leaf_labels, top)
        assert tree.parents == {0: None, 1: None, 2: None}


def test_splits_stop_before_any_leaf_falls_under_the_minimum_size():
    top, space = _two_level_space()
    splits = grow_splits(top, space, max_splits=50, min_leaf=60)
    sizes = np.bincount(apply_splits(top, space, splits))
    assert len(splits) >= 1 and sizes[sizes > 0].min() >= 60
    assert min_leaf_size(100) == 20 and min_leaf_size(10_000) == 200


def test_usefulness_gain_orders_a_large_group_before_a_small_extreme_tail():
    """Splitting 800 users spread over one unit orders 400×400 pairs; splitting 100 in two far blobs orders 50×50.

    The within-leaf sum of squares prefers the blobs (gap squared); held-out AUC prefers the large group.
    """
    rng = np.random.default_rng(0)
    big = np.column_stack([rng.uniform(-0.5, 0.5, 800), rng.normal(0, 0.1, 800)])
    tail = np.column_stack([np.r_[rng.normal(3, 0.1, 50), rng.normal(6, 0.1, 50)], rng.normal(0, 0.1, 100)])
    space = np.vstack([big, tail]).astype(np.float32)
    top = np.repeat([0, 1], [800, 100])
    by_variance = grow_splits(top, space, 1, 20, "variance")
    by_usefulness = grow_splits(top, space, 1, 20, "usefulness")
    assert by_variance[0].leaf == 1 and by_usefulness[0].leaf == 0
    come_back = 1 / (1 + np.exp(-2.5 * space[:, 0]))
    bought = (np.random.default_rng(10).random(900) < come_back).astype(float)
    before = usefulness(top, bought, bought).auc
    after_variance = usefulness(apply_splits(top, space, by_variance), bought, bought).auc
    after_usefulness = usefulness(apply_splits(top, space, by_usefulness), bought, bought).auc
    assert after_usefulness > after_variance + 0.08 and after_variance < before + 0.02
    with pytest.raises(ValueError, match="gain must be one of"):
        grow_splits(top, space, 1, 20, "entropy")


def test_a_tree_grown_from_everyone_makes_its_leaves_the_top_level():
    top, space = _two_level_space()
    tree = build_root_tree(space, n_splits=2)
    assert tree.root and len(tree.parents) == 3 and all(parent is None for parent in tree.parents.values())
    np.testing.assert_array_equal(tree.top_labels, tree.leaf_labels)
    sizes = np.bincount(tree.leaf_labels)
    assert sorted(tree.parents) == [0, 1, 2] and list(sizes) == sorted(sizes, reverse=True)  # 0 the largest
    assert tree.levels == {0: 0, 1: 0, 2: 0} and tree.children == {0: (), 1: (), 2: ()}
    # predict starts everyone at the root, whatever top labels it is handed.
    np.testing.assert_array_equal(tree.predict(top, space), tree.leaf_labels)
    one = build_root_tree(space, n_splits=0)
    assert one.root and set(one.leaf_labels) == {0} and one.parents == {0: None}


def test_depth_rule_splits_where_the_future_differs_and_not_where_it_is_noise():
    rng = np.random.default_rng(1)
    top = np.repeat([0, 1], 600)
    space = rng.normal(size=(1200, 2)).astype(np.float32)
    active = (space[:, 0] + rng.normal(0, 0.5, 1200) > 0).astype(float)  # the future follows the first outlook axis
    value = active * np.exp(rng.normal(3, 0.2, 1200))
    useful = choose_depth_by_outlook(top, space, active, np.log1p(value), max_splits=10, seed=0)
    assert useful.splits >= 2 and useful.space == "outlook"
    chosen = useful.candidates[useful.splits]
    assert chosen.auc > useful.candidates[0].auc + 0.2 and chosen.r2 > useful.candidates[0].r2 + 0.2
    assert chosen.stability_ari is not None and "held-out gain" in useful.reason
    # A future unrelated to the outlook: mostly no sub-segments. Not always: a split made without looking at the
    # targets can still line up with one draw of noise, and the held-out halvings reuse that draw (about a third
    # of draws at 1,200 users, by either leaf order).
    depths = []
    for draw in range(10):
        noise = np.random.default_rng(100 + draw).random(1200) < 0.5
        none = choose_depth_by_outlook(top, space, noise.astype(float), noise * 2.0, max_splits=10, seed=0)
        depths.append(none.splits)
        assert (none.splits == 0) == none.reason.startswith("no sub-segments")
    assert sum(d == 0 for d in depths) >= 6, depths


def test_top_level_rule_finds_planted_blobs_and_prefers_the_larger_of_equally_stable_k():
    x, y = make_blobs(n_samples=[150, 130, 110, 90], n_features=6, cluster_std=0.5, center_box=(-12, 12), random_state=4)
    model = SegmentModel(seed=0, k_rule="stability", max_top_k=8, smooth_neighbours=0).fit(x.astype(np.float32))
    assert model.k_ == 4 and adjusted_rand_score(y, model.labels_) == 1.0
    assert "prediction strength" in model.k_choice_.reason
    assert all(c.prediction_strength is not None for c in model.k_choice_.candidates)
    picks = [Stability(2, 0.99, 0.002, 0.99), Stability(3, 0.95, 0.01, 0.97), Stability(4, 0.93, 0.02, 0.9)]
    assert most_stable_k(picks).k == 3  # 0.95 is within 0.05 of 0.99; 0.93 is not
    noisy = [Stability(2, 0.80, 0.04, 0.8), Stability(3, 0.73, 0.03, 0.7), Stability(4, 0.71, 0.03, 0.7)]
    assert most_stable_k(noisy).k == 3  # two standard errors (0.08) when the estimate is noisy
    assert prediction_strength(np.array([0, 0, 1, 1]), np.array([5, 5, 5, 6])) == 0.0
    # Tibshirani & Walther's bar: groups are in the data when some k reaches prediction strength 0.8.
    assert model.k_choice_.reproducible and reproducible(picks) and not reproducible(noisy[1:])
    smear = np.random.default_rng(0).uniform(size=(500, 6)).astype(np.float32)
    assert not SegmentModel(seed=0, k_rule="stability", smooth_neighbours=0).fit(smear).k_choice_.reproducible


# ---------------------------------------------------------------- a run on data with two levels


@pytest.fixture(scope="module")
def tiered(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiered")
    data, truth = tiered_dataset()
    segment_dataset(data, root / "ws", PARAMS, embedder=HashingEmbedder(), write_store=False)
    return load_run(root / "ws"), truth, root / "ws"


def test_a_run_finds_taste_groups_on_top_and_buying_tiers_below(tiered):
    run, truth, ws = tiered
    s = run.summary
    segs = {x["id"]: x for x in s["segments"]}
    tops = [x for x in s["segments"] if x["parent"] is None]
    assert s["hierarchy"]["levels"] == 2 and s["k_top"] == len(tops) == 3
    assert s["k"] == len(s["hierarchy"]["leaves"]) == sum(1 for x in segs.values() if not x["children"])
    users = run.user_ids.tolist()
    groups = [truth[u][0] for u in users]
    tiers = [f"{truth[u][0]}{truth[u][1]}" for u in users]
    assert adjusted_rand_score(groups, run.top_labels) == 1.0
    # Sub-segments nest inside the buying tiers (a leaf holds one tier), though the outlook may
    # cut a tier finer than the truth (recency bands of the fading half): homogeneity, not ARI.
    assert homogeneity_score(tiers, run.labels) > 0.8 and completeness_score(tiers, run.labels) > 0.6
    for seg in s["segments"]:
        assert seg["level"] == (0 if seg["parent"] is None else 1)
        if seg["children"]:
            kids = [segs[c] for c in seg["children"]]
            assert all(k["parent"] == seg["id"] and k["level"] == 1 for k in kids)
            assert sum(k["size"] for k in kids) == seg["size"]
            assert np.array_equal(run.members(seg["id"]), np.isin(run.labels, seg["children"]))
        if seg["parent"] is not None:
            assert seg["id"] >= s["k_top"] and seg["traits_vs_parent"]
            assert seg["traits_vs_parent"][0]["feature"] in ("recency_days", "span_days", "frequency", "purchases", "monetary")
    depth = s["k_selection"]["depth"]
    assert depth["space"] == "outlook" and depth["splits"] >= 3 and depth["time_split"]["target"] == "purchases"
    assert all({"auc", "r2", "stability_ari", "leaves"} <= set(c) for c in depth["candidates"])
    assert "Sub-segments" in s["k_selection"]["reason"]
    with open(ws / "assignments.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(users) == len({r["user_id"] for r in rows})
    for r in rows:
        leaf, top = segs[int(r["segment_id"])], int(r["top_segment_id"])
        assert not leaf["children"] and (leaf["parent"] if leaf["parent"] is not None else leaf["id"]) == top


def test_without_reproducible_groups_the_segments_are_cut_from_everyone(tmp_path):
    data = continuum_dataset()
    run = segment_dataset(data, tmp_path / "ws", PARAMS, embedder=HashingEmbedder(), write_store=False)
    s = run.summary
    choice = s["k_selection"]
    assert max(c["prediction_strength"] for c in choice["candidates"]) < 0.8  # the case this test is about
    assert choice["reason"].startswith("no top level: no k in 2..8 reaches prediction strength 0.8")
    assert choice["depth"]["from_root"] and choice["depth"]["space"] == "outlook"
    assert s["hierarchy"]["levels"] == 1 and s["hierarchy"]["split_by"] == "outlook" and s["k"] == s["k_top"] >= 3
    assert all(x["parent"] is None and x["level"] == 0 and not x["children"] for x in s["segments"])
    with open(tmp_path / "ws" / "assignments.csv", newline="") as fh:
        assert all(r["segment_id"] == r["top_segment_id"] for r in csv.DictReader(fh))
    saved = load_run(tmp_path / "ws")
    with np.load(saved.run_dir / "model.npz") as model:
        assert bool(model["root"]) and model["centroids"].shape[0] == 1 and len(model["split_leaf"]) == s["k"] - 1
    assert all(x["traits"] for x in s["segments"])  # described like any top-level segment


def test_k_given_stays_flat(tmp_path):
    data, _ = tiered_dataset(sizes=(120, 100, 80))
    run = segment_dataset(data, tmp_path / "ws", RunParams(embedder="hashing-64", k=4), embedder=HashingEmbedder(), write_store=False)
    s = run.summary
    assert s["k"] == s["k_top"] == 4 and s["hierarchy"]["levels"] == 1 and s["k_selection"] is None
    assert [(x["parent"], x["level"], x["children"]) for x in s["segments"]] == [(None, 0, [])] * 4
    with open(tmp_path / "ws" / "assignments.csv", newline="") as fh:
        assert all(r["segment_id"] == r["top_segment_id"] for r in csv.DictReader(fh))


def test_describe_places_a_segment_in_the_tree(tiered):
    run, _, _ = tiered
    parent = next(x for x in run.summary["segments"] if x["children"])
    d = describe_segment(run, parent["id"])
    assert [c.segment_id for c in d.children] == parent["children"] and d.parent is None
    assert f"in {len(parent['children'])} sub-segments" in d.narrative
    assert len(d.typical_items) > 0  # a parent's members are all of its sub-segments' members
    child = describe_segment(run, parent["children"][0])
    assert child.parent.segment_id == parent["id"] and child.level == 1
    assert [s.segment_id for s in child.siblings] == parent["children"][1:]
    assert f'a sub-segment of segment {parent["id"]}' in child.narrative
    assert f'Compared with all of segment {parent["id"]}' in child.narrative
    assert child.traits_vs_parent and json.dumps(child.as_dict())


def test_the_report_and_the_cli_table_show_the_tree(tiered):
    from rich.console import Console

    from assistant.render import segments_table
    from tools.report.html import render_html
    from tools.report.markdown import render_markdown
    from tools.report.model import ReportInput

    run, _, _ = tiered
    s = run.summary
    parent = next(x for x in s["segments"] if x["children"])
    inp = ReportInput(s, np.zeros((0, 2)), np.zeros(0), {}, None)
    md = render_markdown(inp)
    assert "3 segments and" in md and "sub-segments" in md
    assert f"#### {parent['children'][0]}. " in md and f"(sub-segment of {parent['id']}. " in md
    assert "├ " in md and "└ " in md and "What sets them apart within" in md
    html = render_html(inp)
    assert html.count('class="card sub"') == sum(1 for x in s["segments"] if x["parent"] is not None)
    assert f'<a href="#segment-{parent["children"][0]}">' in html and "<h4>Sub-segments</h4>" in html
    console = Console(width=200, record=True)
    console.print(segments_table(s))
    text = console.export_text()
    assert "3 segments (" in text and "├ " in text and "└ " in text and "within parent" in text


def test_describe_without_a_segment_prints_the_tree(tiered):
    _, _, ws = tiered
    cli = Path(sys.executable).parent / "segscope"
    shown = subprocess.run([str(cli), "describe", "--workspace", str(ws)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "3 segments (" in shown.stdout and "├ " in shown.stdout and "└ " in shown.stdout
    as_json = subprocess.run([str(cli), "describe", "--workspace", str(ws), "--json"], capture_output=True, text=True, timeout=120)
    tree = json.loads(as_json.stdout)
    assert tree["k_top"] == 3 and {s["parent"] for s in tree["segments"]} >= {None, 0}


def test_profile_splits_stop_where_behaviour_cannot_tell_the_halves_apart():
    # Two blobs in the profile space (item vectors), identical in every behaviour feature: a split
    # there would make sub-segments no one could describe. A behaviour gap makes the same split real.
    rng = np.random.default_rng(3)
    space = np.vstack([rng.normal(-3, 0.3, (200, 4)), rng.normal(3, 0.3, (200, 4))]).astype(np.float32)
    groups = np.zeros(400, dtype=np.int64)
    same = rng.normal(size=(400, 3))
    assert grow_splits(groups, space, max_splits=3, min_leaf=20, behaviour=same) == []
    apart = same.copy()
    apart[200:, 0] += 2.0
    splits = grow_splits(groups, space, max_splits=1, min_leaf=20, behaviour=apart)
    assert len(splits) == 1 and len(grow_splits(groups, space, max_splits=1, min_leaf=20)) == 1


def test_why_a_user_is_in_a_sub_segment_names_its_parent_too(tiered):
    from assistant.config import load_settings
    from assistant.service import WorkspaceService
    from assistant.session import user_text
    from assistant.toolbox import Toolbox

    run, _, ws = tiered
    row = int(np.flatnonzero(run.labels != run.top_labels)[0])
    user, leaf, top = str(run.user_ids[row]), int(run.labels[row]), int(run.top_labels[row])
    result = Toolbox(WorkspaceService(ws, load_settings(), embedder=HashingEmbedder())).explain_user_segment(user)
    assert (result.artifact["segment_id"], result.artifact["top_segment_id"]) == (leaf, top)
    first = user_text(result.summary).splitlines()[0]
    assert first == (f"User {user} is in segment {leaf} “{run.segment(leaf)['name']}” ({run.segment(leaf)['size']:,} users), "
                     f"a sub-segment of segment {top} “{run.segment(top)['name']}” ({run.segment(top)['size']:,} users).")  # fmt: skip
