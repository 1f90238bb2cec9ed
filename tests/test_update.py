"""`segscope update`: equal to a full re-assign of the merged data, untouched users untouched, atomic, strict on input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import files_matching

from tools.core.workspace import Workspace
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.segment.assign import assign_dataset, load_fitted_run
from tools.segment.update import merged_dataset
from tools.update import update_run

BIN = Path(sys.executable).parent / "segscope"
DAY = 86400.0


def segscope(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> dict:
    """The sample (300 users) cut by time: the run is fitted on the first 90% of events; the rest come later.

    ``late.csv``: events some users had inside the run's period, held back from the fit (the end does not move).
    ``later.csv``: the events after the cut (the end moves).
    """
    root = tmp_path_factory.mktemp("update")
    generate_sample(root / "data", n_users=300, seed=1)
    ev = pd.read_csv(root / "data" / "events.csv", dtype={"user_id": str, "item_id": str}).sort_values("timestamp", kind="stable")
    cut = ev["timestamp"].quantile(0.9)
    first = ev[ev["timestamp"] < cut]
    held_users = pd.unique(first["user_id"])[::15]
    held = first["user_id"].isin(held_users) & (first["timestamp"] > cut - 40 * DAY) & (first["timestamp"] < cut - DAY)
    (root / "first").mkdir()
    first[~held].to_csv(root / "first" / "events.csv", index=False)
    for name in ("items.csv", "users.csv"):
        shutil.copyfile(root / "data" / name, root / "first" / name)
    first[held].to_csv(root / "late.csv", index=False)
    ev[ev["timestamp"] >= cut].to_csv(root / "later.csv", index=False)
    return {"root": root, "first": root / "first", "late": root / "late.csv", "later": root / "later.csv"}


def fitted_ws(split: dict, tmp_path: Path) -> Path:
    """A fresh copy of the fitted workspace (fitted once per module)."""
    master = split["root"] / "ws"
    if not master.exists():
        segment_dataset(load_dataset(split["first"]), master, RunParams(seed=1, embedder="hashing-64"), embedder=HashingEmbedder(),
                        write_store=False)  # fmt: skip
    ws = tmp_path / "ws"
    shutil.copytree(master, ws)
    return ws


def reassigned(ws: Path, parent: str, new_path: Path):
    """A full re-assign of the run's data plus the new events, with the run's recipe and model."""
    fitted = load_fitted_run(ws, parent)
    return assign_dataset(fitted, merged_dataset(fitted.run, load_dataset(new_path)), HashingEmbedder())


def run_files(ws: Path, key: str) -> tuple[pd.DataFrame, dict]:
    folder = Workspace(ws).run_dir(key)
    with np.load(folder / "profiles.npz") as p:
        arrays = {k: p[k] for k in p.files}
    return pd.read_csv(folder / "assignments.csv", dtype={"user_id": str}), arrays


def snapshot(ws: Path) -> dict:
    w = Workspace(ws)
    return {"current": w.current_run(), "runs": sorted(p.name for p in w.runs_dir.iterdir()),
            "segments": (ws / "segments.json").read_bytes(), "assignments": (ws / "assignments.csv").read_bytes()}  # fmt: skip


def test_update_after_the_end_equals_a_full_reassign_exactly(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    parent = Workspace(ws).current_run()
    result = update_run(ws, load_dataset(split["later"]), HashingEmbedder())
    assert result.stats["end_shift_days"] > 0 and result.stats["placed"] == result.stats["users"]  # the end moved: all re-placed
    assert result.stats["end_features"] == "recovered"
    full = reassigned(ws, parent, split["later"])
    table, arrays = run_files(ws, result.key)
    assert table["user_id"].tolist() == full.user_ids.astype(str).tolist()
    assert table["segment_id"].tolist() == full.placement.leaf.tolist()
    assert table["top_segment_id"].tolist() == full.placement.top.tolist()
    assert np.array_equal(arrays["fused"], full.profiles.fused)  # bit for bit, not merely the same segments
    assert np.array_equal(arrays["feature_raw"], full.profiles.features.raw, equal_nan=True)
    assert Workspace(ws).current_run() == result.key
    params = json.loads((ws / "segments.json").read_text())["parameters"]
    assert params["updated_from"] == parent and params["fitted_run"] == parent
    assert sum(s["size"] for s in json.loads((ws / "segments.json").read_text())["segments"] if not s["children"]) == len(table)


def test_an_update_of_an_update_still_equals_the_reassign_with_the_fits_recipe(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    parent = Workspace(ws).current_run()
    update_run(ws, load_dataset(split["late"]), HashingEmbedder())
    second = update_run(ws, load_dataset(split["later"]), HashingEmbedder())
    assert json.loads((ws / "segments.json").read_text())["parameters"]["fitted_run"] == parent
    both = tmp_path / "both.csv"
    pd.concat([pd.read_csv(split["late"]), pd.read_csv(split["later"])]).to_csv(both, index=False)
    full = reassigned(ws, parent, both)
    table, arrays = run_files(ws, second.key)
    assert table["segment_id"].tolist() == full.placement.leaf.tolist()
    assert np.array_equal(arrays["fused"], full.profiles.fused)
    # assign on the updated run uses the fit's recipe too: its own users come back where the update put them.
    again = load_fitted_run(ws)
    assert again.fit_agreement == 1.0


def test_late_events_re_place_only_the_affected_users_and_the_others_keep_their_segments(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    parent = Workspace(ws).current_run()
    before = pd.read_csv(ws / "assignments.csv", dtype={"user_id": str})
    late = load_dataset(split["late"])
    result = update_run(ws, late, HashingEmbedder())
    s = result.stats
    assert s["end_shift_days"] == 0
    assert s["affected"] <= s["placed"] <= s["affected"] + 1  # plus at most the one holder of the data's last event
    after = pd.read_csv(ws / "assignments.csv", dtype={"user_id": str})
    untouched = ~before["user_id"].isin(late.events["user_id"].unique())
    assert after.loc[: len(before) - 1][untouched.to_numpy()][["segment_id", "top_segment_id"]].equals(
        before[untouched][["segment_id", "top_segment_id"]])
    full = reassigned(ws, parent, split["late"])
    assert after["segment_id"].tolist() == full.placement.leaf.tolist()
    assert result.refit == ()  # a few users' late events: nothing calls for a re-fit


def test_a_failure_mid_update_leaves_the_workspace_as_it_was(split, tmp_path, monkeypatch):
    import tools.update

    ws = fitted_ws(split, tmp_path)
    was = snapshot(ws)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tools.update.shutil, "copyfile", disk_full)  # dies after profiles.npz, before model.npz
    with pytest.raises(OSError):
        update_run(ws, load_dataset(split["later"]), HashingEmbedder())
    assert snapshot(ws) == was
    assert not files_matching(ws, "*.tmp")
    monkeypatch.undo()
    assert update_run(ws, load_dataset(split["later"]), HashingEmbedder()).key != was["current"]  # and the next update works


def test_missing_columns_are_one_line_exit_2_and_nothing_written(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    was = snapshot(ws)
    bad = tmp_path / "no_time.csv"
    pd.read_csv(split["later"]).drop(columns=["timestamp"]).to_csv(bad, index=False)
    result = segscope("update", "--workspace", ws, "--data", bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "timestamp" in lines[0] and "missing column" in lines[0], result.stderr
    assert snapshot(ws) == was and not files_matching(ws, "*.tmp")


def test_refit_is_suggested_when_the_end_moves_past_the_threshold_and_not_otherwise(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    ok = segscope("update", "--workspace", ws, "--data", split["later"], "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["refit"] == []  # 10% more events, a few days on: no indicator passes
    far = tmp_path / "far.csv"
    ev = pd.read_csv(split["later"])
    ev = ev[ev["user_id"].isin(ev["user_id"].unique()[:5])].copy()
    ev["timestamp"] += 200 * DAY  # five users come back 200 days later: the data's end moves past 90 days
    ev.to_csv(far, index=False)
    moved = segscope("update", "--workspace", ws, "--data", far)
    assert moved.returncode == 0, moved.stderr
    said = " ".join(moved.stdout.split())  # the console wraps long lines at its width
    assert "a full re-fit is suggested:" in said and "days after the fit's did (above 90)" in said


def test_refit_is_suggested_when_many_users_fit_no_segment(split, tmp_path):
    ws = fitted_ws(split, tmp_path)
    late = pd.read_csv(split["late"])
    t0, t1 = late["timestamp"].min(), late["timestamp"].max()  # inside the run's period: only the end-free rule can fire
    items = pd.read_csv(split["first"] / "items.csv", dtype={"item_id": str})["item_id"].tolist()
    # 30 new users alike and unlike anyone: 300 purchases of 1,000,000 each, of one item, each with a review in words nobody used.
    rows = [{"user_id": f"zz{u:03d}", "item_id": items[0], "event_type": "purchase", "timestamp": t0 + (t1 - t0) * j / 300,
             "value": 1e6, "text": "quux zorp blarg frobnicate wibble"} for u in range(30) for j in range(300)]
    odd = tmp_path / "odd.csv"
    pd.DataFrame(rows).to_csv(odd, index=False)
    result = update_run(ws, load_dataset(odd), HashingEmbedder())
    assert result.stats["end_shift_days"] == 0 and result.stats["beyond_p99_all"] >= 20
    assert any("farther from their segment than 99%" in r and "a segment may be missing" in r for r in result.refit), result.refit
