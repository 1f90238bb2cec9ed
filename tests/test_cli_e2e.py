"""End to end through the real console script: exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent / "segscope"


def segscope(*args: str, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_help_imports_nothing_heavy():
    result = segscope("--help")
    assert result.returncode == 0
    assert "segment" in result.stdout and "sample" in result.stdout
    # The help must not pay for torch/chromadb/pandas: checked by what is imported (its speed is bench/'s business).
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, assistant.cli; print(sorted(m for m in ('torch','chromadb','pandas','sentence_transformers','langchain') if m in sys.modules))"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "[]"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BROKEN = {
    "missing_columns.csv": "foo,bar\n1,2\n",
    "empty.csv": "",
    "header_only.csv": "user_id,item_id,rating\n",
    "wrong_types.csv": "user_id,item_id,rating\n1,2,5\n1,3,great\n",
    "duplicate_headers.csv": "user_id,item_id,user_id\n1,2,3\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input_gives_one_line_exit_2_and_no_workspace(tmp_path, name):
    data = _write(tmp_path / name, BROKEN[name])
    ws = tmp_path / "ws"
    result = segscope("segment", "--data", str(data), "--workspace", str(ws), "--embedder", "hashing")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr
    assert not ws.exists()


def test_wrong_types_names_the_line(tmp_path):
    data = _write(tmp_path / "events.csv", "user_id,item_id,rating\n1,2,5\n1,3,great\n")
    result = segscope("segment", "--data", str(data), "--workspace", str(tmp_path / "ws"), "--embedder", "hashing")
    assert result.returncode == 2
    assert "line 3" in result.stderr and "rating" in result.stderr


def test_undecodable_and_empty_directory(tmp_path):
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    (empty_dir / "notes.md").write_text("hello")
    result = segscope("segment", "--data", str(empty_dir), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"user_id,item_id,text\n1,2,caf\x81\x8d\n")
    result = segscope("segment", "--data", str(bad), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 2 and "UTF-8" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_bad_parameters_exit_2(tmp_path):
    data = _write(tmp_path / "events.csv", "user_id,item_id\n" + "".join(f"u{i},i{i % 3}\n" for i in range(12)))
    for args in (["--k", "0"], ["--k", "50"], ["--alpha", "1.5"], ["--algorithm", "magic"], ["--k", "many"]):
        result = segscope("segment", "--data", str(data), "--workspace", str(tmp_path / "ws"), "--embedder", "hashing", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sample_then_segment_recovers_planted_segments(tmp_path):
    """The README's promise on the bundled sample, with the real MiniLM model."""
    from sklearn.metrics import adjusted_rand_score

    data, ws = tmp_path / "s", tmp_path / "w"
    assert segscope("sample", "--out", str(data), "--seed", "7").returncode == 0
    first = segscope("segment", "--data", str(data), "--workspace", str(ws), "--seed", "7", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    assigned = pd.read_csv(ws / "assignments.csv", dtype=str, keep_default_na=False)
    assert list(assigned.columns) == ["user_id", "segment_id", "top_segment_id", "outlier"]
    assert (assigned["outlier"] == "").all(), "the sample's people are not bots"
    merged = truth.merge(assigned, on="user_id")
    assert len(merged) == len(truth)
    # The top level recovers the planted segments; the sub-segments below it split them by what members do next.
    assert summary["k_top"] == truth["segment"].nunique() < summary["k"]
    assert adjusted_rand_score(merged["segment"], merged["top_segment_id"]) >= 0.95
    saved = json.loads((ws / "segments.json").read_text())
    assert saved == summary
    for seg in saved["segments"]:
        assert {"id", "size", "share", "keywords", "traits", "representative_user_ids", "name", "description"} <= seg.keys()
        assert seg["keywords"] and seg["traits"]
    # Unchanged data and parameters: the finished run is reused.
    second = segscope("segment", "--data", str(data), "--workspace", str(ws), "--seed", "7", "--json")
    assert second.returncode == 0 and json.loads(second.stdout) == summary
