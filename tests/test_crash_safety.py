"""SIGKILL at random points of `segment` and `report`: the workspace is always one complete run; a lock refuses a second writer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.core.workspace import Workspace
from tools.data.sample import generate_sample
from tools.search.store import VectorStore

BIN = Path(sys.executable).parent / "segscope"
KILLS = int(os.environ.get("SEGSCOPE_KILLS", "8"))


def _segment(data: Path, ws: Path, seed: int) -> subprocess.Popen:
    args = [str(BIN), "segment", "--data", str(data), "--workspace", str(ws), "--embedder", "hashing", "--seed", str(seed), "--json"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _check_consistent(ws: Path, n_users: int) -> str:
    w = Workspace(ws)
    key = w.current_run()
    assert key is not None
    summary = json.loads((ws / "segments.json").read_text())
    assert summary["run_key"] == key
    assert json.loads((w.run_dir(key) / "segments.json").read_text())["run_key"] == key
    assigned = pd.read_csv(ws / "assignments.csv", dtype=str)
    assert len(assigned) == n_users and assigned["user_id"].is_unique
    with np.load(w.run_dir(key) / "profiles.npz") as p:
        assert len(p["labels"]) == n_users
    store = VectorStore(w.chroma_dir)
    assert store.count(f"users-{key}") == n_users  # Chroma opens and holds the live run's users
    return key


@pytest.mark.slow
def test_sigkill_during_segment_leaves_a_complete_run(tmp_path):
    data, ws = tmp_path / "data", tmp_path / "ws"
    summary = generate_sample(data, n_users=400, seed=4)
    first = _segment(data, ws, seed=1)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    keys = {_check_consistent(ws, summary.n_users)}
    rng = random.Random(0)
    survived = 0
    for i in range(KILLS):
        proc = _segment(data, ws, seed=10 + i)
        time.sleep(rng.uniform(0.3, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        keys.add(_check_consistent(ws, summary.n_users))
        survived += 1
    assert survived == KILLS
    # The next run succeeds and cleans what the killed ones left behind.
    last = _segment(data, ws, seed=99)
    assert last.wait(timeout=300) == 0, last.stderr.read()
    _check_consistent(ws, summary.n_users)
    assert not list((ws / ".segscope" / "runs").glob(".*.tmp"))


@pytest.mark.slow
def test_sigkill_during_report_keeps_the_old_report(tmp_path):
    data, ws = tmp_path / "data", tmp_path / "ws"
    generate_sample(data, n_users=300, seed=5)
    assert _segment(data, ws, seed=1).wait(timeout=300) == 0
    out = ws / "report.html"
    done = subprocess.run([str(BIN), "report", "--workspace", str(ws), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    original = out.read_bytes()
    rng = random.Random(1)
    for _ in range(3):
        proc = subprocess.Popen([str(BIN), "report", "--workspace", str(ws), "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        content = out.read_bytes()
        assert content == original or content.rstrip().endswith(b"</html>")


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path):
    from tools.core.errors import WorkspaceError

    ws = Workspace(tmp_path / "ws")
    ws.prepare()
    with ws.lock():
        proc = subprocess.run(
            [sys.executable, "-c", f"from tools.core.workspace import Workspace\nwith Workspace({str(ws.root)!r}).lock(): pass"],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        )
        assert proc.returncode != 0 and "another segscope run is writing" in proc.stderr
        with pytest.raises(WorkspaceError):
            with Workspace(ws.root).lock():
                pass
