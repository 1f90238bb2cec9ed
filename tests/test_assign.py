"""`segscope assign`: the run's own data comes back exactly, later data lands in the run's space, bad input writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import CountingEmbedder, continuum_dataset, files_matching, tiered_dataset

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder, vectors_name
from tools.pipeline import RunParams, segment_dataset
from tools.segment.assign import assign_dataset, load_fitted_run

BIN = Path(sys.executable).parent / "segscope"


def segscope(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def saved(ws: Path) -> pd.DataFrame:
    return pd.read_csv(ws / "assignments.csv", dtype={"user_id": str})


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory) -> tuple[Path, Path]:
    """The sample (tools/data/sample.py) segmented with the hashing embedder: (data folder, workspace)."""
    root = tmp_path_factory.mktemp("assign")
    generate_sample(root / "data", n_users=300, seed=1)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(seed=1, embedder="hashing-64"),
                    embedder=HashingEmbedder(), write_store=False)  # fmt: skip
    return root / "data", root / "ws"


@pytest.fixture(scope="module")
def tiered_ws(tmp_path_factory) -> tuple[object, Path]:
    """A two-level run (sub-segments cut along the outlook) on the tiered shop data."""
    data, _ = tiered_dataset()
    ws = tmp_path_factory.mktemp("tiered") / "ws"
    run = segment_dataset(data, ws, RunParams(embedder="hashing-64"), embedder=HashingEmbedder(), write_store=False)
    assert run.summary["hierarchy"]["levels"] == 2 and run.summary["hierarchy"]["split_by"] == "outlook"
    return data, ws


def test_cli_assign_on_the_runs_own_data_reproduces_assignments_csv_exactly(sample_ws):
    data, ws = sample_ws
    result = segscope("assign", "--workspace", ws, "--data", data)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.parent == ws / "exports" and path.exists()
    out = pd.read_csv(path, dtype={"user_id": str})
    fit = saved(ws)
    assert out["user_id"].tolist() == fit["user_id"].tolist()
    assert out["segment_id"].tolist() == fit["segment_id"].tolist()
    assert out["top_segment_id"].tolist() == fit["top_segment_id"].tolist()
    assert out["run_segment_id"].tolist() == fit["segment_id"].tolist()  # every user is the run's, in the same segment
    assert (out["next_distance"] >= out["distance"]).all() and (out["next_segment_id"] != out["top_segment_id"]).all()
    assert not files_matching(ws, "*.tmp")


def test_two_level_run_reproduced_exactly_leaf_and_top(tiered_ws):
    data, ws = tiered_ws
    fitted = load_fitted_run(ws)
    assert fitted.segments.splits and fitted.segments.split_by == "outlook"
    table = assign_dataset(fitted, data, HashingEmbedder()).table()
    fit = saved(ws)
    assert table["segment_id"].tolist() == fit["segment_id"].tolist()
    assert table["top_segment_id"].tolist() == fit["top_segment_id"].tolist()
    assert (table["segment_id"] != table["top_segment_id"]).any()  # sub-segments really were assigned


def test_run_cut_from_all_users_reproduced_exactly_with_distances_to_its_segments(tmp_path):
    # No reproducible top level (tests/test_hierarchy.py): model.npz keeps one centroid, everyone's, and the
    # splits from the root make the segments; assign must start everyone at the root too.
    data = continuum_dataset()
    ws = tmp_path / "ws"
    run = segment_dataset(data, ws, RunParams(embedder="hashing-64"), embedder=HashingEmbedder(), write_store=False)
    assert run.summary["k_selection"]["depth"]["from_root"] and run.summary["k"] >= 3
    fitted = load_fitted_run(ws)
    assert fitted.segments.root and fitted.segments.k_top == run.summary["k"] and len(fitted.segments.top.centroids_) == 1
    assert fitted.fit_agreement == 1.0
    table = assign_dataset(fitted, data, HashingEmbedder()).table()
    fit = saved(ws)
    assert table["segment_id"].tolist() == fit["segment_id"].tolist()
    assert table["top_segment_id"].tolist() == fit["top_segment_id"].tolist() == fit["segment_id"].tolist()
    # Distances are to each segment's mean smoothed profile: the own segment's is the members' mean.
    space, leaf = fitted.own.space.astype(np.float64), fitted.own.leaf
    for seg in np.unique(leaf):
        np.testing.assert_allclose(fitted.segments.centroids[seg], space[leaf == seg].mean(axis=0), atol=1e-5)
    assert table["distance"].notna().all() and (table["next_segment_id"] != table["top_segment_id"]).all()


def test_bad_input_missing_column_is_one_line_exit_2_and_writes_nothing(sample_ws, tmp_path):
    data, ws = sample_ws
    bad = tmp_path / "bad"
    bad.mkdir()
    events = pd.read_csv(data / "events.csv")
    events.drop(columns=["value"]).to_csv(bad / "events.csv", index=False)
    (bad / "items.csv").write_bytes((data / "items.csv").read_bytes())
    before = sorted(p.name for p in (ws / ".segscope" / "cache").iterdir())
    target = tmp_path / "out.csv"
    result = segscope("assign", "--workspace", ws, "--data", bad, "--out", target)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("segscope: error:") and "value" in lines[0], result.stderr
    assert result.stdout == ""
    assert not target.exists() and not (ws / "exports" / "bad.csv").exists()
    assert sorted(p.name for p in (ws / ".segscope" / "cache").iterdir()) == before
    assert not files_matching(tmp_path, "*.tmp")


def test_an_embedder_whose_vectors_are_not_the_runs_is_refused(sample_ws):
    # The cache is keyed by vectors_name (model and variant): another embedder's vectors would land in the run's space.
    from tools.core.errors import ParameterError

    data, ws = sample_ws
    fitted = load_fitted_run(ws)
    assert fitted.vectors_name == "hashing-64" and vectors_name(fitted.make_embedder()) == "hashing-64"
    with pytest.raises(ParameterError, match="embedded as hashing-64, not hashing-32"):
        assign_dataset(fitted, load_dataset(data), HashingEmbedder(32))


def test_new_item_texts_are_embedded_once_and_cached(sample_ws, tmp_path):
    data, ws = sample_ws
    later = tmp_path / "later"
    later.mkdir()
    events = pd.read_csv(data / "events.csv", dtype={"user_id": str, "item_id": str})
    items = pd.read_csv(data / "items.csv", dtype={"item_id": str})
    new_item = items.iloc[[0]].assign(item_id="brand-new", title="Quantum teapot", description="a teapot never seen before")
    pd.concat([items, new_item]).to_csv(later / "items.csv", index=False)
    extra = events.iloc[:3].assign(user_id="newcomer", item_id="brand-new")
    pd.concat([events, extra]).to_csv(later / "events.csv", index=False)
    fitted = load_fitted_run(ws)
    counting = CountingEmbedder()
    first = assign_dataset(fitted, load_dataset(later), counting)
    assert len(counting.texts) == 1 and "Quantum teapot" in counting.texts[0]  # only the new item's text
    assert first.n_new_users == 1 and first.profiles.n_texts_embedded == 1
    again = assign_dataset(fitted, load_dataset(later), counting)
    assert counting.calls == 1 and again.profiles.n_texts_embedded == 0  # the workspace cache kept it
    # The run's own users are untouched by one extra user: their segments are the fit's.
    table = again.table().set_index("user_id")
    fit = saved(ws).set_index("user_id")
    assert (table.loc[fit.index, "segment_id"] == fit["segment_id"]).all()
    assert pd.isna(table.loc["newcomer", "run_segment_id"])


def test_some_of_the_runs_users_keep_their_segments_in_the_runs_space(sample_ws, tmp_path):
    """A few users alone would be rescaled among themselves by a fresh profile run; assign keeps the run's scale."""
    data, ws = sample_ws
    events = pd.read_csv(data / "events.csv", dtype={"user_id": str, "item_id": str})
    last_user = events.loc[events["timestamp"].idxmax(), "user_id"]  # keeps the data's end, which recency is measured to
    rng = np.random.default_rng(0)
    some = {last_user, *rng.choice(events["user_id"].unique(), size=40, replace=False)}
    few = tmp_path / "few"
    few.mkdir()
    events[events["user_id"].isin(some)].to_csv(few / "events.csv", index=False)
    (few / "items.csv").write_bytes((data / "items.csv").read_bytes())
    fitted = load_fitted_run(ws)
    result = assign_dataset(fitted, load_dataset(few), HashingEmbedder())
    table = result.table().set_index("user_id")
    fit = saved(ws).set_index("user_id").loc[table.index]
    assert (table["segment_id"] == fit["segment_id"]).all() and (table["top_segment_id"] == fit["top_segment_id"]).all()
    run = fitted.run
    rows = pd.Index(run.user_ids).get_indexer(result.user_ids)
    np.testing.assert_array_equal(result.profiles.fused, run.fused[rows])  # the very profiles the fit had


def test_append_profiles_later_users_over_their_whole_history(sample_ws, tmp_path):
    data, ws = sample_ws
    events = pd.read_csv(data / "events.csv", dtype={"user_id": str, "item_id": str})
    cut = events["timestamp"].quantile(0.8)
    late = tmp_path / "late"
    late.mkdir()
    events[events["timestamp"] >= cut].to_csv(late / "events.csv", index=False)
    (late / "items.csv").write_bytes((data / "items.csv").read_bytes())
    fitted = load_fitted_run(ws)
    appended = assign_dataset(fitted, load_dataset(late), HashingEmbedder(), append=True)
    alone = assign_dataset(fitted, load_dataset(late), HashingEmbedder())
    # The run's data is the whole sample, so a user's run events plus the late ones are all of theirs,
    # twice over for the late rows; without duplicates (a later slice of new rows) it is the full history.
    assert set(appended.user_ids) == set(alone.user_ids)
    assert len(appended.profiles.features.raw) == len(alone.user_ids)
    freq = appended.profiles.features.names.index("frequency")
    late_counts = load_dataset(late).events.groupby("user_id").size()
    whole_counts = load_dataset(data).events.groupby("user_id").size()
    got = pd.Series(appended.profiles.features.raw[:, freq], index=appended.user_ids.astype(str))
    assert (got == whole_counts.loc[got.index] + late_counts.loc[got.index]).all()


def test_text_model_restored_from_its_saved_parts_predicts_as_fitted():
    from tools.segment.text_clusters import TextSegmentModel

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    x = np.vstack([c + 0.3 * rng.normal(size=(60, 16)) for c in centres]).astype(np.float32)
    model = TextSegmentModel(k=4, seed=0).fit(x)
    restored = TextSegmentModel.restore(model.reference_, model.centroids_, model.neighbours)
    np.testing.assert_array_equal(restored.predict(x), model.labels_)


def test_a_run_that_left_its_outliers_out_is_reproduced_exactly(tmp_path):
    """Flagged bots take no part in the fit's scaling, centring or outlook: assign must use the fitted users' figures too."""
    generate_sample(tmp_path / "data", n_users=1000, seed=7, bots=0.03)
    ws = tmp_path / "ws"
    run = segment_dataset(load_dataset(tmp_path / "data"), ws, RunParams(seed=7, embedder="hashing-64"),
                          embedder=HashingEmbedder(), write_store=False)  # fmt: skip
    assert run.summary["data"]["outliers"]["count"] >= 20 and run.summary["hierarchy"]["levels"] == 2
    fitted = load_fitted_run(ws)
    assert fitted.fit_agreement == 1.0
    table = assign_dataset(fitted, load_dataset(tmp_path / "data"), HashingEmbedder()).table()
    fit = saved(ws)
    assert table["segment_id"].tolist() == fit["segment_id"].tolist()
    assert table["top_segment_id"].tolist() == fit["top_segment_id"].tolist()
