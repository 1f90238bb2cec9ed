"""Flagged outliers in a run: left out of the fit, assigned afterwards with the saved model, reported; --keep-outliers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.core.run_state import load_run
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.report.export import member_table
from tools.segment.clustering import SegmentModel

PARAMS = RunParams(embedder="hashing-64", seed=2)
BIN = Path(sys.executable).parent / "segscope"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same people segmented without bots, with bots (default), and with bots kept in the fit."""
    root = tmp_path_factory.mktemp("outliers")
    planted = generate_sample(root / "bots", n_users=420, seed=5, bots=0.05)
    generate_sample(root / "people", n_users=420 - planted.n_bots, seed=5, n_items=planted.n_items)
    out = {}
    for name, folder, params in (("people", "people", PARAMS), ("default", "bots", PARAMS),
                                 ("kept", "bots", RunParams(embedder="hashing-64", seed=2, keep_outliers=True))):
        segment_dataset(load_dataset(root / folder), root / f"ws-{name}", params, embedder=HashingEmbedder(), write_store=False)
        out[name] = load_run(root / f"ws-{name}")
    truth = pd.read_csv(root / "bots" / "truth.csv", keep_default_na=False)
    return out, set(truth.loc[truth["segment"] == "bot", "user_id"]), root


def fitted_rows(run) -> int:
    """How many users the top level was fitted on: its smoothing reference holds them all (under 10,000 users)."""
    with np.load(run.run_dir / "model.npz") as m:
        return len(m["reference"])


def rows_of(run, ids) -> np.ndarray:
    return pd.Index(run.user_ids).get_indexer(pd.Index(list(ids)))


def test_flagged_users_do_not_shape_the_segments(runs):
    (by, bots, _) = runs
    people, default = by["people"], by["default"]
    flagged = set(default.user_ids[default.flagged])
    assert flagged == bots, "every planted bot flagged, and no one else (this sample)"
    assert fitted_rows(default) == len(default.user_ids) - len(bots) == fitted_rows(people)
    rows = rows_of(default, people.user_ids)
    # The people's profiles, segments and tree are exactly those of the run without bots.
    np.testing.assert_allclose(default.fused[rows], people.fused, atol=1e-6)
    np.testing.assert_array_equal(default.labels[rows], people.labels)
    np.testing.assert_array_equal(default.top_labels[rows], people.top_labels)
    seg_people = {s["id"]: s["traits"] for s in people.summary["segments"]}
    for seg in default.summary["segments"]:
        assert seg["traits"] == seg_people[seg["id"]], "traits describe the fitted members only"
        assert not set(seg["representative_user_ids"]) & bots


def test_comparing_segments_tests_the_fitted_members_only(runs):
    from tools.explain.describe import compare_segments

    (by, _, _) = runs
    people, default = by["people"], by["default"]
    leaves = [s["id"] for s in default.summary["segments"] if not s["children"]]
    with_bots = [s["id"] for s in default.summary["segments"] if s["outliers"]]
    pairs = [(a, b) for a in with_bots for b in leaves if b != a][:3]
    assert pairs, "some segment holds a flagged user"
    for a, b in pairs:
        # The bots are in the sizes, not in the differences: those are the run's without them.
        assert compare_segments(default, a, b).differences == compare_segments(people, a, b).differences


def test_flagged_users_are_assigned_with_the_saved_model(runs):
    (by, bots, _) = runs
    run = by["default"]
    with np.load(run.run_dir / "model.npz") as m:
        model = SegmentModel(smooth_neighbours=int(m["smooth_neighbours"]), metric=str(m["metric"]))
        model.centroids_, model.reference_ = m["centroids"], m["reference"]
    flagged = run.flagged
    np.testing.assert_array_equal(model.predict(run.fused[flagged]), run.top_labels[flagged])
    segments = {s["id"]: s for s in run.summary["segments"]}
    for leaf, top in zip(run.labels[flagged].tolist(), run.top_labels[flagged].tolist()):
        parent = segments[leaf]["parent"]
        assert not segments[leaf]["children"] and (leaf if parent is None else parent) == top
    # Everyone is in assignments.csv, the flagged with their reasons; sizes count them, `outliers` says how many.
    assigned = pd.read_csv(run.workspace / "assignments.csv", dtype=str, keep_default_na=False)
    assert list(assigned.columns) == ["user_id", "segment_id", "top_segment_id", "outlier"]
    marked = assigned.set_index("user_id")["outlier"]
    assert set(marked[marked != ""].index) == bots
    assert (marked[list(bots)].str.split("+").map(set) <= {"event_volume", "single_item", "inhuman_timing", "duplicate_bursts"}).all()
    leaves = [s for s in run.summary["segments"] if not s["children"]]
    assert sum(s["size"] for s in leaves) == run.summary["data"]["n_users"] == len(assigned)
    block = run.summary["data"]["outliers"]
    assert block["count"] == len(bots) == sum(s["outliers"] for s in leaves) and block["kept_in_fit"] is False
    assert "outlier" in member_table(run, None).columns


def test_keep_outliers_fits_them_with_everyone(runs):
    (by, bots, _) = runs
    people, kept = by["people"], by["kept"]
    block = kept.summary["data"]["outliers"]
    assert block["kept_in_fit"] is True and block["count"] == len(bots)
    assert set(kept.user_ids[kept.flagged]) == bots  # still flagged and marked
    assert fitted_rows(kept) == len(kept.user_ids)
    assert kept.summary["run_key"] != by["default"].summary["run_key"]
    rows = rows_of(kept, people.user_ids)
    # Kept in, the bots take part in the scaling: the people's profiles move.
    assert np.abs(kept.fused[rows] - people.fused).max() > 1e-3


def test_the_cli_plants_bots_and_says_what_became_of_them(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}

    def cli(*args):
        return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)

    made = cli("sample", "--out", tmp_path / "d", "--users", 300, "--seed", 2, "--bots", 0.04)
    assert made.returncode == 0 and "and 12 bots" in made.stdout, made.stderr
    for flag, fate in (([], "left out of the fit"), (["--keep-outliers"], "kept in the fit (--keep-outliers)")):
        run = cli("segment", "--data", tmp_path / "d", "--workspace", tmp_path / "ws", "--embedder", "hashing", *flag)
        assert run.returncode == 0, run.stderr
        assert "flagged as outliers" in run.stdout and fate in run.stdout.replace("\n", " ")
    described = cli("describe", "--workspace", tmp_path / "ws", "--json")
    assert json.loads(described.stdout)["outliers"]["kept_in_fit"] is True
    bad = cli("sample", "--out", tmp_path / "e", "--users", 300, "--bots", 0.7)
    assert bad.returncode == 2 and "bots" in bad.stderr and not (tmp_path / "e").exists()


def test_the_saved_tree_assigns_a_few_users_as_the_fit_placed_them(tmp_path):
    from helpers import tiered_dataset

    from tools.embed.cache import EmbeddingCache
    from tools.segment.levels import assign_levels, fit_levels
    from tools.segment.profiles import build_profiles

    data, _ = tiered_dataset()
    embedder = HashingEmbedder()
    cache = EmbeddingCache(tmp_path, embedder.name)
    profiles = build_profiles(data, embedder, cache)

    def make_model(k, seed=0):
        return SegmentModel(k=k, seed=seed, k_rule="stability", max_k=20)

    model = make_model("auto").fit(profiles.fused)
    levels = fit_levels(data, profiles, model, make_model, embedder, cache, 20)
    assert levels.tree.splits and levels.space == "outlook"
    # A handful at a time: the outlook space is scaled by the fitted users' figures, not by these few's.
    few = np.arange(0, len(profiles.user_ids), 37)
    top, leaf = assign_levels(levels, model, profiles.rows(few))
    np.testing.assert_array_equal(top, levels.tree.top_labels[few])
    np.testing.assert_array_equal(leaf, levels.tree.leaf_labels[few])


def test_the_report_overview_has_an_outliers_line(runs):
    from tools.report.markdown import render_markdown
    from tools.report.model import ReportInput

    (by, bots, _) = runs
    inp = ReportInput(by["default"].summary, np.zeros((0, 2)), np.zeros(0, dtype=int), {}, None)
    line = next(row for row in render_markdown(inp).splitlines() if row.startswith("| Outliers |"))
    assert f"{len(bots)} users" in line and "left out of the fit" in line
    people = ReportInput(by["people"].summary, np.zeros((0, 2)), np.zeros(0, dtype=int), {}, None)
    assert "| Outliers | No users flagged as outliers. |" in render_markdown(people)


def test_a_fit_cut_from_everyone_assigns_a_few_users_as_it_placed_them(tmp_path):
    """No reproducible top level (Levels.root): the leaves are the top level, and assigning starts at the root."""
    from helpers import continuum_dataset

    from tools.embed.cache import EmbeddingCache
    from tools.segment.levels import assign_levels, fit_levels
    from tools.segment.profiles import build_profiles

    data = continuum_dataset()
    embedder = HashingEmbedder()
    cache = EmbeddingCache(tmp_path, embedder.name)
    profiles = build_profiles(data, embedder, cache)

    def make_model(k, seed=0):
        return SegmentModel(k=k, seed=seed, k_rule="stability", min_k=2, max_k=8)

    model = make_model("auto").fit(profiles.fused)
    levels = fit_levels(data, profiles, model, make_model, embedder, cache, 8)
    assert levels.root and levels.tree.splits, "the case this test is about"
    few = np.arange(0, len(profiles.user_ids), 29)
    top, leaf = assign_levels(levels, model, profiles.rows(few))
    np.testing.assert_array_equal(leaf, levels.tree.leaf_labels[few])
    np.testing.assert_array_equal(top, leaf)  # one level: each user's top-level segment is its leaf


def continuum_with_bots(n_bots: int = 4):
    """The continuum shop (no reproducible groups) and ``n_bots`` users buying one item 300 times, 2 seconds apart."""
    from helpers import DAY, REFERENCE, continuum_dataset, dataset_from_frames

    people = continuum_dataset()
    bots = pd.DataFrame([{"user_id": f"bot{b}", "item_id": f"p{b}", "event_type": "purchase",
                          "timestamp": REFERENCE - (b + 1) * DAY + 2.0 * i, "value": 5.0, "text": None}
                         for b in range(n_bots) for i in range(300)])  # fmt: skip
    return people, dataset_from_frames(pd.concat([people.events, bots], ignore_index=True), people.items)


def test_a_run_cut_from_everyone_leaves_its_bots_out_and_assigns_them_to_its_segments(tmp_path):
    people, data = continuum_with_bots()
    params = RunParams(embedder="hashing-64")
    for name, d in (("people", people), ("bots", data)):
        segment_dataset(d, tmp_path / name, params, embedder=HashingEmbedder(), write_store=False)
    alone, run = load_run(tmp_path / "people"), load_run(tmp_path / "bots")
    assert run.summary["k_selection"]["depth"]["from_root"], "the case this test is about"
    bots = {f"bot{b}" for b in range(4)}
    assert set(run.user_ids[run.flagged]) == bots
    rows = rows_of(run, alone.user_ids)
    np.testing.assert_array_equal(run.labels[rows], alone.labels)  # the people's segments as without the bots
    assert [s["traits"] for s in run.summary["segments"]] == [s["traits"] for s in alone.summary["segments"]]
    assigned = pd.read_csv(tmp_path / "bots" / "assignments.csv", dtype=str, keep_default_na=False)
    assert (assigned["segment_id"] == assigned["top_segment_id"]).all()
    segments = {s["id"]: s for s in run.summary["segments"]}
    flagged = run.flagged
    assert all(segments[int(i)]["parent"] is None and not segments[int(i)]["children"] for i in run.labels[flagged])
    np.testing.assert_array_equal(run.top_labels[flagged], run.labels[flagged])
    assert sum(s["outliers"] for s in segments.values()) == len(bots) == run.summary["data"]["outliers"]["count"]
    assert sum(s["size"] for s in segments.values()) == len(run.user_ids)
