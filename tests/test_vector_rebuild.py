"""A deleted or damaged Chroma folder: a search rebuilds the live run's collections (with a notice), never an empty answer."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pandas as pd
import pytest
from helpers import dataset_from_frames, sample_workspace

from assistant.config import load_settings
from assistant.events import ToolFinished, TurnDone
from assistant.service import WorkspaceService
from assistant.session import Session
from assistant.toolbox import Toolbox
from tools.core.errors import SegscopeError
from tools.core.workspace import Workspace
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset

REQUEST = "/find users who love gardening"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A sample workspace, and the exact cosine similarity of every user with text to the request."""
    # Over 1,000 users: Chroma then keeps them in its HNSW files, not only in its log.
    ws = sample_workspace(tmp_path_factory.mktemp("rebuild"), n_users=1200, seed=3)
    run = _toolbox(ws).service.run
    query = HashingEmbedder().encode(["users who love gardening"])[0]
    norms = np.linalg.norm(run.text, axis=1)
    has_text = norms > 0
    sims = run.text[has_text] @ query / norms[has_text]
    return ws, dict(zip(run.user_ids[has_text].astype(str), sims.astype(float)))


def _check_right_users(rows: list[dict], exact: dict[str, float]) -> None:
    """Ten users, each with its true similarity to the request, all among the closest few percent.

    Chroma's HNSW index is approximate (and its build is not deterministic), so a
    rebuilt index may rank a near-tie differently; a wrong or half-empty index
    returns other users with other similarities.
    """
    assert len(rows) == 10
    for row in rows:
        assert row["similarity"] == pytest.approx(exact[row["user_id"]], abs=2e-3)
    ranks = {user: i for i, user in enumerate(sorted(exact, key=exact.get, reverse=True))}
    assert max(ranks[r["user_id"]] for r in rows) < 50, "all ten among the 50 closest of 1,200"


@pytest.fixture
def workspace(pristine, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(pristine[0], ws)
    return ws


def _toolbox(ws) -> Toolbox:
    return Toolbox(WorkspaceService(ws, load_settings(embedder="hashing-64"), embedder=HashingEmbedder()))


def _turn(ws, prompt: str) -> list:
    settings = load_settings(embedder="hashing-64")
    session = Session(ws, settings, service=WorkspaceService(ws, settings, embedder=HashingEmbedder()))
    events: list = []
    session.run_turn(prompt, events.append, threading.Event())
    return events


def test_a_deleted_chroma_folder_is_rebuilt_and_the_request_finds_the_same_users(pristine, workspace):
    _check_right_users(_toolbox(workspace).find_users("users who love gardening").artifact["users"], pristine[1])
    shutil.rmtree(Workspace(workspace).chroma_dir)

    events = _turn(workspace, REQUEST)
    (finished,) = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.ok
    _check_right_users(finished.artifact["users"], pristine[1])
    assert "was missing; rebuilt it from the run folder (1,200 rows)" in finished.artifact["notice"]
    answer = events[-1]
    assert isinstance(answer, TurnDone) and "rebuilt it from the run folder" in answer.answer
    assert "10 users closest to" in answer.answer

    # Rebuilt on disk: the next request needs no rebuild.
    again = _toolbox(workspace).find_users("users who love gardening")
    assert again.artifact["notice"] is None and len(again.artifact["users"]) == 10


def test_a_collection_whose_index_files_are_gone_is_rebuilt(pristine, workspace):
    chroma = Workspace(workspace).chroma_dir
    for segment in [p for p in chroma.iterdir() if p.is_dir()]:
        shutil.rmtree(segment)  # the HNSW files; chroma.sqlite3 still lists every row
    found = _toolbox(workspace).find_users("users who love gardening")
    assert "was damaged" in found.artifact["notice"]
    _check_right_users(found.artifact["users"], pristine[1])
    assert len(_toolbox(workspace).find_items("garden tools", n=5).artifact["items"]) == 5


def test_a_folder_deleted_under_a_running_session_is_rebuilt_too(pristine, workspace):
    toolbox = _toolbox(workspace)
    assert len(toolbox.find_items("garden tools", n=5).artifact["items"]) == 5  # the store is open in this process
    shutil.rmtree(Workspace(workspace).chroma_dir)
    found = toolbox.find_users("users who love gardening")
    assert "was missing" in found.artifact["notice"]
    _check_right_users(found.artifact["users"], pristine[1])
    items = toolbox.find_items("garden tools", n=5)
    assert len(items.artifact["items"]) == 5


def test_an_unreadable_store_is_one_line_saying_how_to_rebuild(workspace):
    (Workspace(workspace).chroma_dir / "chroma.sqlite3").write_bytes(b"not a database")
    with pytest.raises(SegscopeError) as err:
        _toolbox(workspace).find_users("users who love gardening")
    line = err.value.one_line()
    assert "\n" not in line and "delete that folder" in line and "rebuilds it" in line


def test_items_without_texts_are_one_line_not_an_empty_list(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    events = pd.DataFrame({  # reviews give users text vectors; there is no items file
        "user_id": [f"u{u}" for u in range(60) for _ in range(6)],
        "item_id": [f"i{(u % 3) * 10 + rng.integers(0, 10)}" for u in range(60) for _ in range(6)],
        "event_type": "review",
        "timestamp": 1.7e9 + rng.integers(0, 10**7, 360),
        "text": [f"{['garden', 'books', 'tech'][u % 3]} review {rng.integers(0, 5)}" for u in range(60) for _ in range(6)],
    })
    segment_dataset(dataset_from_frames(events), tmp_path / "ws", RunParams(k=3, embedder="hashing-64"), embedder=HashingEmbedder())
    toolbox = _toolbox(tmp_path / "ws")
    assert len(toolbox.find_users("garden").artifact["users"]) == 10

    def no_rebuild(*args, **kwargs):
        raise AssertionError("a run without item texts has nothing to rebuild")

    monkeypatch.setattr("tools.search.vectors.rebuild_vectors", no_rebuild)
    for _ in range(2):
        with pytest.raises(SegscopeError, match="items have no texts"):
            toolbox.find_items("garden")
