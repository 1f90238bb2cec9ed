"""segment_dataset end to end on small planted data, with the hashing embedder (no model)."""

from __future__ import annotations

import csv
import json

import pytest
from helpers import CountingEmbedder, files_matching, make_dataset
from sklearn.metrics import adjusted_rand_score

import tools.pipeline as pipeline
from tools.core.errors import WorkspaceError
from tools.core.workspace import Workspace
from tools.data.ingest import load_dataset
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.search.store import VectorStore
from tools.search.vectors import items_collection

PARAMS = RunParams(embedder="hashing-64", seed=0)
SEGMENT_KEYS = {"id", "size", "share", "keywords", "traits", "representative_user_ids", "name", "description"}


@pytest.fixture
def planted(tmp_path):
    return make_dataset(tmp_path)


def read_assignments(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], {row[0]: int(row[1]) for row in rows[1:]}, len(rows) - 1


def test_segment_dataset_writes_the_documented_outputs(planted, tmp_path):
    data, truth = planted
    ws = tmp_path / "ws"
    stages = set()
    run = segment_dataset(data, ws, PARAMS, embedder=CountingEmbedder(), progress=lambda s, d, t: stages.add(s))
    assert not run.cached and run.workspace == ws
    assert {"embedding texts", "smoothing", "choosing k", "clustering", "describing segments"} <= stages

    summary = json.loads((ws / "segments.json").read_text())
    assert summary == run.summary
    assert summary["run_key"] == run.key
    params = summary["parameters"]
    assert {k: params[k] for k in ("algorithm", "k", "alpha", "seed", "embedder", "keep_outliers", "order")} == PARAMS.as_dict()
    assert "monetary" in params["behaviour_features"]
    assert summary["k"] == 3 == len(summary["segments"])
    assert "prediction strength" in summary["k_selection"]["reason"]  # behaviour data: the top level by stability
    assert all(c["prediction_strength"] is not None and "silhouette" in c for c in summary["k_selection"]["candidates"])
    assert set(summary["metrics"]) >= {"silhouette", "calinski_harabasz", "davies_bouldin"}
    assert summary["metrics"]["silhouette"] > 0.5
    assert summary["data"]["n_users"] == len(truth) and summary["data"]["n_events"] == len(data.events)

    segments = summary["segments"]
    assert [s["id"] for s in segments] == [0, 1, 2]
    for s in segments:
        assert SEGMENT_KEYS <= set(s)
        assert s["keywords"] and s["traits"] and s["representative_user_ids"]
    assert [s["size"] for s in segments] == [30, 20, 12]
    assert sum(s["share"] for s in segments) == pytest.approx(1.0, abs=1e-3)
    assert "tulip" in segments[0]["keywords"] and "chronograph" in segments[1]["keywords"]

    header, assigned, n_rows = read_assignments(ws / "assignments.csv")
    assert header == ["user_id", "segment_id", "top_segment_id", "outlier"]
    assert n_rows == len(truth) and set(assigned) == set(truth), "every user exactly once"
    users = sorted(truth)
    assert adjusted_rand_score([truth[u] for u in users], [assigned[u] for u in users]) == 1.0
    for s in segments:
        assert sum(1 for seg in assigned.values() if seg == s["id"]) == s["size"]
        assert all(assigned[u] == s["id"] for u in s["representative_user_ids"])

    run_dir = Workspace(ws).require_run()
    assert {p.name for p in run_dir.iterdir()} >= {"segments.json", "assignments.csv", "profiles.npz", "model.npz", "run.json"}
    assert files_matching(ws, "*.tmp") == []

    store = VectorStore(Workspace(ws).chroma_dir)
    key = run_dir.name
    users, segs = f"users-{key}", f"segments-{key}"
    assert store.count(items_collection(data.fingerprint)) == data.n_items == 18
    assert store.count(users) == len(truth)
    assert store.count(segs) == 3
    hits = store.query(users, store.collection(segs).get(ids=["1"], include=["embeddings"])["embeddings"][0],
                       n=5, where={"segment_id": 1})  # fmt: skip
    assert len(hits) == 5 and all(h[2]["segment_id"] == 1 for h in hits)


def test_going_back_to_a_cached_run_brings_back_its_vectors(planted, tmp_path):
    """Only the live run's collections are kept; a cached run published again gets its own back."""
    data, _ = planted
    ws = tmp_path / "ws"
    first = segment_dataset(data, ws, PARAMS, embedder=HashingEmbedder())
    second = segment_dataset(data, ws, RunParams(k=2, seed=1, embedder=PARAMS.embedder), embedder=HashingEmbedder())
    store = VectorStore(Workspace(ws).chroma_dir)
    assert f"users-{first.key}" not in store.collection_names()
    back = segment_dataset(data, ws, PARAMS, embedder=HashingEmbedder())
    assert back.cached and back.key == first.key
    names = set(store.collection_names())
    assert names == {f"users-{first.key}", f"segments-{first.key}", items_collection(data.fingerprint)}
    assert second.key != first.key and store.count(f"users-{first.key}") == first.summary["data"]["n_users"]


def test_identical_second_call_is_cached_and_embeds_nothing(planted, tmp_path):
    data, _ = planted
    first_emb = CountingEmbedder()
    first = segment_dataset(data, tmp_path / "ws", PARAMS, embedder=first_emb, write_store=False)
    assert first_emb.calls > 0
    (tmp_path / "ws" / "segments.json").write_text("stale")  # the cached path republishes

    again_emb = CountingEmbedder()
    again = segment_dataset(data, tmp_path / "ws", PARAMS, embedder=again_emb, write_store=False)
    assert again.cached and again.key == first.key
    assert again_emb.calls == 0
    assert again.summary == first.summary
    assert json.loads((tmp_path / "ws" / "segments.json").read_text()) == first.summary

    # Reloading the same files gives the same fingerprint, hence the same run.
    reloaded = load_dataset(data.source)
    assert segment_dataset(reloaded, tmp_path / "ws", PARAMS, embedder=again_emb, write_store=False).cached


def test_new_alpha_reclusters_but_embeds_nothing_new(planted, tmp_path, monkeypatch):
    data, _ = planted
    ws = tmp_path / "ws"
    first = segment_dataset(data, ws, PARAMS, embedder=CountingEmbedder(), write_store=False)

    caches: list[EmbeddingCache] = []

    class SpyCache(EmbeddingCache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            caches.append(self)

    monkeypatch.setattr(pipeline, "EmbeddingCache", SpyCache)
    emb = CountingEmbedder()
    params = RunParams(embedder="hashing-64", seed=0, alpha=0.9)
    second = segment_dataset(data, ws, params, embedder=emb, write_store=False)
    assert not second.cached and second.key != first.key
    # The only texts embedded are the new run's segment labels (for distinctiveness); no data text.
    label_texts = {f"{seg['name']}. {seg['description']}" for seg in second.summary["segments"]}
    assert set(emb.texts) <= label_texts
    assert len(caches) == 1 and caches[0].misses == 0 and caches[0].hits > 0
    assert second.summary["parameters"]["alpha"] == 0.9
    assert Workspace(ws).current_run() == second.key
    # Both runs stay on disk; asking for the first again is free.
    back = segment_dataset(data, ws, PARAMS, embedder=emb, write_store=False)
    assert back.cached and Workspace(ws).current_run() == first.key
    assert json.loads((ws / "segments.json").read_text())["parameters"]["alpha"] == PARAMS.alpha


def test_a_failed_run_leaves_the_previous_one_published(planted, tmp_path, monkeypatch):
    data, _ = planted
    ws = tmp_path / "ws"
    first = segment_dataset(data, ws, PARAMS, embedder=CountingEmbedder(), write_store=False)
    before = (ws / "segments.json").read_bytes(), (ws / "assignments.csv").read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "save_run", crash)
    with pytest.raises(RuntimeError):
        segment_dataset(data, ws, RunParams(embedder="hashing-64", k=2), embedder=CountingEmbedder(), write_store=False)
    assert Workspace(ws).current_run() == first.key
    assert ((ws / "segments.json").read_bytes(), (ws / "assignments.csv").read_bytes()) == before
    assert [p.name for p in Workspace(ws).runs_dir.iterdir()] == [first.key]


def test_a_locked_workspace_is_refused(planted, tmp_path):
    data, _ = planted
    ws = tmp_path / "ws"
    emb = CountingEmbedder()
    with Workspace(ws).lock():
        with pytest.raises(WorkspaceError, match="another segscope run"):
            segment_dataset(data, ws, PARAMS, embedder=emb, write_store=False)
    assert emb.calls == 0 and Workspace(ws).current_run() is None


@pytest.mark.slow
def test_movielens_small_with_the_hashing_embedder(shared_data, tmp_path):
    folder = shared_data / "ml-latest-small"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    data = load_dataset(folder)
    run = segment_dataset(data, tmp_path / "ws", RunParams(embedder="hashing-64"), embedder=CountingEmbedder(), write_store=False)
    segments = run.summary["segments"]
    tops = [s["size"] for s in segments if s["parent"] is None]
    leaves = [s["size"] for s in segments if not s["children"]]
    assert sum(tops) == sum(leaves) == data.n_users and tops == sorted(tops, reverse=True)
    # --k auto on MovieLens: a few top-level segments, each split where that explains more (issue #10).
    assert run.summary["hierarchy"]["levels"] == 2 and 2 <= len(tops) <= 8 and len(tops) < len(leaves) <= 20
    assert all(s["keywords"] for s in segments)
