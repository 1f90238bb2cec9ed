"""The workspace folder (atomic writes, runs, lock) and the Chroma vector store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import files_matching

from tools.core.errors import WorkspaceError
from tools.core.workspace import Workspace, atomic_write_bytes, atomic_write_json
from tools.search.locator import StoreSpec, new_database_name
from tools.search.store import VectorStore, _clean

# --- atomic writes ------------------------------------------------------------------


def test_atomic_writes_leave_only_the_target(tmp_path):
    target = tmp_path / "deep" / "segments.json"
    atomic_write_json(target, {"k": 3, "name": "Café"})
    atomic_write_json(target, {"k": 4})
    assert json.loads(target.read_text()) == {"k": 4}
    assert [p.name for p in target.parent.iterdir()] == ["segments.json"]


def test_atomic_write_json_refuses_nan(tmp_path):
    # NaN is not JSON: other tools reading segments.json would choke on it.
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "metrics.json", {"silhouette": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_failed_atomic_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "assignments.csv"
    atomic_write_bytes(target, b"old")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tools.core.workspace.os.replace", crash)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["assignments.csv"]


# --- runs ----------------------------------------------------------------------------


def test_new_run_becomes_the_run_folder_only_when_the_block_finishes(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with ws.new_run("abc") as tmp:
        (tmp / "run.json").write_text("{}")
        (tmp / "segments.json").write_text('{"k": 2}')
        (tmp / "assignments.csv").write_text("user_id,segment_id\nu1,0\n")
        assert not ws.run_dir("abc").exists()
    assert (ws.run_dir("abc") / "run.json").exists()
    assert files_matching(ws.root, "*.tmp") == []
    assert ws.current_run() is None, "a finished run is not current until published"

    ws.publish("abc")
    assert ws.current_run() == "abc" and ws.require_run() == ws.run_dir("abc")
    assert ws.assignments_csv.read_text() == "user_id,segment_id\nu1,0\n"
    assert json.loads(ws.segments_json.read_text()) == {"k": 2}


def test_exception_inside_new_run_leaves_nothing_behind(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(RuntimeError, match="boom"):
        with ws.new_run("abc") as tmp:
            (tmp / "profiles.npz").write_bytes(b"half")
            raise RuntimeError("boom")
    assert not ws.run_dir("abc").exists()
    assert list(ws.runs_dir.iterdir()) == []


def test_new_run_replaces_an_older_run_with_the_same_key(tmp_path):
    ws = Workspace(tmp_path)
    for content in ("first", "second"):
        with ws.new_run("k1") as tmp:
            (tmp / "run.json").write_text(content)
    assert (ws.run_dir("k1") / "run.json").read_text() == "second"
    assert [p.name for p in ws.runs_dir.iterdir()] == ["k1"]


def test_require_run_and_prepare_errors(tmp_path):
    ws = Workspace(tmp_path / "empty")
    with pytest.raises(WorkspaceError, match="no segmentation run") as info:
        ws.require_run()
    assert "segscope segment" in info.value.hint
    # A pointer to a run that never finished is not a run.
    ws.state.mkdir(parents=True)
    (ws.state / "current").write_text("ghost\n")
    assert ws.current_run() is None
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(WorkspaceError, match="not a folder"):
        Workspace(afile).prepare()


def test_second_lock_on_the_same_workspace_is_refused(tmp_path):
    with Workspace(tmp_path).lock():
        assert (tmp_path / ".segscope" / "lock").read_text().strip().isdigit()
        with pytest.raises(WorkspaceError, match="another segscope run"):
            with Workspace(tmp_path).lock():
                pass  # pragma: no cover - must not get here
    with Workspace(tmp_path).lock():  # released on exit
        pass


# --- the vector store --------------------------------------------------------------------


def test_clean_metadata_keeps_only_scalars():
    got = _clean({"a": None, "b": np.int64(3), "c": float("nan"), "d": np.float32(0.5), "e": ["x", "y"], "f": "s", "g": True})
    assert got == {"b": 3, "d": 0.5, "e": "x, y", "f": "s", "g": True}
    assert type(got["b"]) is int and type(got["d"]) is float


def _unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module", params=["embedded", "server"])
def store(request, tmp_path_factory):
    """The same tests against the embedded store and a Chroma server (a database of its own there)."""
    if request.param == "embedded":
        return VectorStore(tmp_path_factory.mktemp("chroma") / "db")
    return VectorStore(StoreSpec.server(request.getfixturevalue("chroma_url"), new_database_name()))


def test_sync_items_writes_only_what_changed(store, monkeypatch):
    rng = np.random.default_rng(0)
    ids = [f"i{j}" for j in range(6)]
    vectors = _unit(rng, 6)
    hashes = [f"h{j}" for j in range(6)]
    metas = [{"title": f"Item {j}", "category": None} for j in range(6)]
    assert store.sync_items(ids, vectors, hashes, metas) == 6
    assert store.count("items") == 6

    # Chroma must never be handed texts to embed itself.
    written = []
    real_write = VectorStore._write

    def spy(self, name, ids_, vectors_, metadatas, documents, progress):
        written.append(list(ids_))
        assert documents is None
        return real_write(self, name, ids_, vectors_, metadatas, documents, progress)

    monkeypatch.setattr(VectorStore, "_write", spy)
    progress = []
    assert store.sync_items(ids, vectors, hashes, metas, progress=lambda d, t: progress.append((d, t))) == 0
    assert written == [] and progress == [(6, 6)]

    hashes2 = hashes.copy()
    hashes2[2] = "changed"
    vectors2 = vectors.copy()
    vectors2[2] = vectors[5]
    assert store.sync_items(ids + ["i6"], np.vstack([vectors2, _unit(rng, 1)]), hashes2 + ["h6"], metas + [{"title": "New"}]) == 2
    assert written == [["i2", "i6"]]
    assert store.count("items") == 7
    hit_id, distance, meta = store.query("items", vectors[5], n=2)[0]
    assert hit_id in {"i2", "i5"} and distance == pytest.approx(0, abs=1e-5)
    assert meta["content_hash"] in {"changed", "h5"} and "category" not in meta


def test_replace_and_query_with_a_segment_filter(store):
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 10)
    ids = [f"u{j}" for j in range(10)]
    metas = [{"segment_id": j % 3, "traits": "many purchases"} for j in range(10)]
    store.replace("users", ids, vectors, metas)
    assert store.count("users") == 10

    hits = store.query("users", vectors[4], n=10, where={"segment_id": 1})
    assert {h[0] for h in hits} == {"u1", "u4", "u7"}
    assert hits[0][0] == "u4" and hits[0][1] == pytest.approx(0, abs=1e-5)
    assert [h[1] for h in hits] == sorted(h[1] for h in hits)
    assert all(h[2]["segment_id"] == 1 for h in hits)

    # Replacing keeps exactly the new rows.
    store.replace("users", ids[:4], vectors[:4], [{"segment_id": 0}] * 4)
    assert store.count("users") == 4
    assert store.query("users", vectors[4], n=10, where={"segment_id": 1}) == []
    assert store.query("empty-collection", vectors[0]) == []


def test_writes_beyond_chromas_batch_limit_go_in_batches(store, monkeypatch):
    """Chroma refuses more than 5,461 rows a request (a server says its own limit): 12,000 users still land whole."""
    rng = np.random.default_rng(2)
    n = 12_000
    vectors = _unit(rng, n)
    store.client  # opened: a server has told its limit by now
    limit = store.client.get_max_batch_size()
    sizes = []
    col = store.collection("big-users")
    for method in ("add", "upsert"):
        real = getattr(type(col), method)

        def spy(self, *args, real=real, **kwargs):
            sizes.append(len(kwargs["ids"]))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(type(col), method, spy)
    store.replace("big-users", [f"u{j}" for j in range(n)], vectors, [{"segment_id": j % 5} for j in range(n)])
    assert store.count("big-users") == n
    assert len(sizes) >= 3 and max(sizes) <= limit and sum(sizes) == n
    hit = store.query("big-users", vectors[11_999], n=1)[0]
    assert hit[0] == "u11999" and hit[1] == pytest.approx(0, abs=1e-4)
    store.delete("big-users")
    assert "big-users" not in store.collection_names()
