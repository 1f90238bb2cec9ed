"""`segscope export`: members out in csv/parquet/jsonl that read back as assignments.csv, changes since a run, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import files_matching, sample_workspace

from tools.core.run_state import load_run
from tools.core.workspace import Workspace
from tools.report.export import read_export

BIN = Path(sys.executable).parent / "segscope"


def segscope(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("segscope: error:"), result.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert result.stdout == ""
    return lines[0]


def assignments(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"user_id": str})


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return sample_workspace(tmp_path_factory.mktemp("export"), n_users=200, seed=3)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_all_round_trips_to_assignments_with_traits_in_user_units(ws, fmt):
    result = segscope("export", "--workspace", ws, "--segment", "all", "--format", fmt)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == ws / "exports" and path.suffix == f".{fmt}" and path.exists()
    back = read_export(path)
    expected = assignments(ws / "assignments.csv")
    assert back["user_id"].tolist() == expected["user_id"].tolist()
    assert back["segment_id"].astype(int).tolist() == expected["segment_id"].tolist()
    run = load_run(ws)
    key = run.summary["run_key"]
    assert back["segment_key"].tolist() == [f"{key}:{s}" for s in expected["segment_id"]]
    two_level = run.top_labels is not None and bool((run.top_labels != run.labels).any())
    parents = ["top_segment_id", "top_segment_key"] if two_level else []  # a two-level run names each member's parent too
    assert run.feature_names and list(back.columns[3:]) == parents + list(run.feature_names)
    if two_level:
        assert back["top_segment_id"].astype(int).tolist() == expected["top_segment_id"].astype(int).tolist()
        assert back["top_segment_key"].tolist() == [f"{key}:{s}" for s in expected["top_segment_id"]]
    np.testing.assert_allclose(back[list(run.feature_names)].to_numpy(float), run.feature_raw, rtol=1e-12, equal_nan=True)
    assert not files_matching(ws, "*.tmp")


def test_export_one_segment_to_a_chosen_file(ws, tmp_path):
    expected = assignments(ws / "assignments.csv")
    sid = int(expected["segment_id"].value_counts().index[-1])  # the smallest segment
    out = tmp_path / "members.jsonl"
    result = segscope("export", "-w", ws, "--segment", sid, "--format", "jsonl", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    back = read_export(out)
    members = expected[expected["segment_id"] == sid]
    assert sorted(back["user_id"]) == sorted(members["user_id"]) and set(back["segment_id"]) == {sid}


def test_changed_since_an_earlier_run_with_another_k(tmp_path):
    from tools.data.ingest import load_dataset
    from tools.embed.embedding import HashingEmbedder
    from tools.pipeline import RunParams, segment_dataset

    ws = sample_workspace(tmp_path, n_users=150, seed=4)
    first_key = Workspace(ws).current_run()
    first = assignments(ws / "assignments.csv")
    k_first = first["segment_id"].nunique()
    segment_dataset(load_dataset(tmp_path / "data"), ws, RunParams(k=k_first + 2, seed=4, embedder="hashing-64"), embedder=HashingEmbedder())
    second = assignments(ws / "assignments.csv")
    assert Workspace(ws).current_run() != first_key

    both = first.merge(second, on="user_id", suffixes=("_before", "_after"))
    moved = set(both.loc[both["segment_id_before"] != both["segment_id_after"], "user_id"])
    assert moved, "the two runs should disagree about someone"

    result = segscope("export", "-w", ws, "--changed-since", first_key[:8], "--format", "parquet")
    assert result.returncode == 0, result.stderr
    back = read_export(Path(result.stdout.strip()))
    assert set(back["user_id"]) == moved and set(back["change"]) == {"moved"}
    someone = min(moved)
    row = back.set_index("user_id").loc[someone]
    pair = both.set_index("user_id").loc[someone]
    assert (row["previous_segment_id"], row["segment_id"]) == (pair["segment_id_before"], pair["segment_id_after"])

    # One segment: who entered it and who left it, nobody else.
    sid = int(second["segment_id"].iloc[0])
    result = segscope("export", "-w", ws, "--segment", sid, "--changed-since", first_key, "--format", "csv")
    assert result.returncode == 0, result.stderr
    back = read_export(Path(result.stdout.strip())).set_index("user_id")
    entered = set(both.loc[(both["segment_id_after"] == sid) & (both["segment_id_before"] != sid), "user_id"])
    left = set(both.loc[(both["segment_id_before"] == sid) & (both["segment_id_after"] != sid), "user_id"])
    assert entered | left and set(back.index) == entered | left
    assert set(back.loc[sorted(entered), "change"]) <= {"entered"} and set(back.loc[sorted(left), "change"]) <= {"left"}

    missing = segscope("export", "-w", ws, "--changed-since", "feedface")
    line = one_line_error(missing, "feedface", first_key, Workspace(ws).current_run())
    assert "available runs" in line


def test_bad_input_writes_nothing(tmp_path):
    ws = sample_workspace(tmp_path, n_users=120, seed=5)
    ids = sorted(assignments(ws / "assignments.csv")["segment_id"].unique())
    one_line_error(segscope("export", "-w", ws, "--segment", 99), "99", ", ".join(map(str, ids)))
    one_line_error(segscope("export", "-w", ws, "--segment", "big"), "big")
    one_line_error(segscope("export", "-w", ws, "--format", "xlsx"), "xlsx", "parquet")
    one_line_error(segscope("export", "-w", ws, "--out", tmp_path / "no" / "such" / "m.csv"), str(tmp_path / "no" / "such"))
    one_line_error(segscope("export", "-w", ws, "--out", tmp_path), "is a folder")
    assert not (ws / "exports").exists() and not (tmp_path / "no").exists()
    assert not files_matching(tmp_path, "*.tmp")
    one_line_error(segscope("export", "-w", tmp_path / "empty"), "no segmentation run")
