"""Segmentation in a child process (assistant.jobs): the same result as in-process, errors intact,
and cancelling stops the work and leaves the workspace exactly as it was."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from assistant.jobs import Cancelled, run_segment_job
from tools.core.errors import DataError
from tools.core.workspace import Workspace
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.search.store import VectorStore

PARAMS = RunParams(seed=3, embedder="hashing-64")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jobs") / "data"
    generate_sample(root, n_users=1500, seed=3)
    return root


def _state(ws: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    """Every workspace file outside Chroma's own folder, by content; and each Chroma collection's size."""
    files = {
        str(p.relative_to(ws)): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and "chroma" not in p.relative_to(ws).parts and p.name != "lock"
    }
    store = VectorStore(Workspace(ws).chroma_dir)
    names = [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
    return files, {name: store.count(name) for name in sorted(names)}


def _cancel_at(stage: str):
    """A progress callback that records stages and asks to stop once ``stage`` reports; and the stop flag."""
    stop = threading.Event()
    seen: list[str] = []
    asked: list[float] = []

    def progress(name: str, done: int, total: int) -> None:
        seen.append(name)
        if name == stage and not stop.is_set():
            asked.append(time.perf_counter())
            stop.set()

    return progress, stop, seen, asked


def test_a_job_gives_the_same_segments_as_in_process(data, tmp_path):
    stages: list[tuple[str, int, int]] = []
    job = run_segment_job(data, tmp_path / "a", PARAMS.as_dict(), lambda *s: stages.append(s))
    local = segment_dataset(load_dataset(data), tmp_path / "b", PARAMS, embedder=HashingEmbedder())
    assert not job.cached and job.key == local.key
    assert job.summary["segments"] == local.summary["segments"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "assignments.csv"), pd.read_csv(tmp_path / "b" / "assignments.csv"))
    names = [s[0] for s in stages]
    for stage in ("loading data", "embedding texts", "building profiles", "describing segments", "storing users"):
        assert stage in names
    assert all(0 <= done <= total for _, done, total in stages)
    # Unchanged data and parameters: the child finds the finished run.
    again = run_segment_job(data, tmp_path / "a", PARAMS.as_dict(), lambda *s: None)
    assert again.cached and again.key == job.key


def test_a_job_raises_the_users_error_as_the_same_class(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as in_process:
        load_dataset(missing)
    with pytest.raises(DataError) as from_job:
        run_segment_job(missing, tmp_path / "ws", PARAMS.as_dict(), lambda *s: None)
    assert from_job.value.one_line() == in_process.value.one_line()
    assert not (tmp_path / "ws").exists(), "a failed first run leaves no workspace"


@pytest.mark.parametrize("stage", ["embedding texts", "storing users"])
def test_cancelling_stops_the_job_and_keeps_the_previous_run(data, tmp_path, stage):
    ws = tmp_path / "ws"
    first = run_segment_job(data, ws, PARAMS.as_dict(), lambda *s: None)
    before = _state(ws)
    assert f"users-{first.key}" in before[1]

    progress, stop, seen, asked = _cancel_at(stage)
    other = RunParams(k=4, seed=9, embedder="hashing-64")
    with pytest.raises(Cancelled):
        run_segment_job(data, ws, other.as_dict(), progress, stop.is_set)
    assert stage in seen
    print(f"cancel at {stage!r}: stopped and tidied {time.perf_counter() - asked[0]:.2f} s after the request")
    assert _state(ws) == before, "the workspace is exactly the previous run: files and vector collections"
    assert Workspace(ws).current_run() == first.key
    # Nothing is left locked or half-built: the same request now runs to the end.
    again = run_segment_job(data, ws, other.as_dict(), lambda *s: None)
    assert not again.cached and Workspace(ws).current_run() == again.key


def test_a_progress_callback_that_raises_stops_the_job_too(data, tmp_path):
    """The session's callbacks raise Cancelled on a cancelled turn: the child must not outlive that."""

    def progress(name: str, done: int, total: int) -> None:
        if name == "building profiles":
            raise Cancelled()

    with pytest.raises(Cancelled):
        run_segment_job(data, tmp_path / "fresh", PARAMS.as_dict(), progress)
    assert not (tmp_path / "fresh").exists(), "a cancelled first run leaves no workspace"


def test_the_toolbox_answers_a_finished_run_here_and_runs_new_work_in_a_child(data, tmp_path, monkeypatch):
    import assistant.jobs as jobs
    from assistant.config import load_settings
    from assistant.service import WorkspaceService
    from assistant.toolbox import Toolbox

    ws = tmp_path / "ws"
    segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder())
    toolbox = Toolbox(WorkspaceService(ws, load_settings(embedder="hashing-64")), data_path=data)
    started: list[dict] = []
    real_job = jobs.run_segment_job

    def counting_job(*args, **kwargs):
        started.append(args[2])
        return real_job(*args, **kwargs)

    monkeypatch.setattr(jobs, "run_segment_job", counting_job)
    same = toolbox.segment_users()  # the current run's parameters: finished already
    assert same.artifact["cached"] and started == []
    stages: list[str] = []
    toolbox.progress = lambda stage, done, total: stages.append(stage)
    new = toolbox.segment_users(k=4)
    assert not new.artifact["cached"] and new.artifact["summary"]["k"] == 4
    assert started == [{**PARAMS.as_dict(), "k": 4}] and "embedding texts" in stages
    # The interface reads the new summary without loading the run's profiles and events.
    assert toolbox.service.summary()["k"] == 4 and toolbox.service._run is None
    assert toolbox.service.run.k == 4, "the service sees the new run"
