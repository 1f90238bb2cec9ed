"""Segment users end to end: profiles, clustering, summaries, store, workspace.

A run is identified by a key hashed from the data's fingerprint and every
parameter that changes the result. Running again with the same key reuses the
finished run instead of recomputing it; a changed parameter re-clusters but
still reuses every cached embedding.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tools.core.dataset import Dataset
from tools.core.workspace import Workspace, atomic_write_json
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import (
    DEFAULT_EMBEDDER,
    Embedder,
    make_embedder,
    vectors_name,
)
from tools.explain.labels import label_segments
from tools.explain.quality import label_distinctiveness
from tools.search.store import VectorStore
from tools.search.vectors import (
    RunVectors,
    has_vectors,
    keep_only,
    rebuild_vectors,
    write_vectors,
)
from tools.segment.clustering import SegmentModel
from tools.segment.profiles import DEFAULT_ALPHA, Profiles, build_profiles
from tools.segment.summary import SegmentSummary, summarise_segments
from tools.segment.text_clusters import TextSegmentModel

PIPELINE_VERSION = "6"  # 6: text-only data clustered by tools/segment/text_clusters.py
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunParams:
    algorithm: str = "kmeans"
    k: int | str = "auto"
    alpha: float = DEFAULT_ALPHA
    seed: int = 0
    embedder: str = DEFAULT_EMBEDDER

    def as_dict(self) -> dict:
        return {"algorithm": self.algorithm, "k": self.k, "alpha": self.alpha, "seed": self.seed, "embedder": self.embedder}


@dataclass(frozen=True)
class SegmentationRun:
    workspace: Path
    key: str
    summary: dict  # the content of segments.json
    cached: bool
    timings: dict[str, float] = field(default_factory=dict)


# Neighbours averaged into each profile before clustering (tools/segment/clustering.py).
# Text-only data has many small groups (Banking77: 77 intents of ~40 messages),
# which ten neighbours blur: five gave NMI 0.822-0.826 over 3 seeds and both
# precisions, against 0.819-0.821 for ten, and a k auto closer to the truth.
BEHAVIOUR_SMOOTHING = 10
TEXT_SMOOTHING = 5


def run_key(data: Dataset, params: RunParams, vectors: str | None = None) -> str:
    """The run's identity: data, parameters, and the vectors' variant when it is not the model's own (int8)."""
    extra = {"vectors": vectors} if vectors is not None and vectors != params.embedder else {}
    payload = json.dumps({"v": PIPELINE_VERSION, "data": data.fingerprint, **params.as_dict(), **extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def k_range_for(data: Dataset, n_users: int) -> tuple[int, int]:
    """Candidate k for automatic choice: few segments for people, many intents for messages."""
    if data.kind == "text":
        return 2, max(2, min(150, n_users // 20))
    return 2, max(2, min(20, n_users // 10))


def segment_dataset(
    data: Dataset,
    workspace: str | Path,
    params: RunParams = RunParams(),
    embedder: Embedder | None = None,
    progress: StageProgress | None = None,
    write_store: bool = True,
) -> SegmentationRun:
    """Segment ``data`` into ``workspace``; returns the run (reused when nothing changed)."""
    report = progress or (lambda stage, done, total: None)
    ws = Workspace(workspace)
    if embedder is not None and embedder.name != params.embedder:
        # The run key must name the embedder actually used, or a later run with
        # another model would wrongly reuse these results.
        params = RunParams(params.algorithm, params.k, params.alpha, params.seed, embedder.name)
    embedder = embedder or make_embedder(params.embedder)  # lazy: nothing loads until a text needs encoding
    key = run_key(data, params, vectors_name(embedder))
    if ws.has_run(key):
        with ws.lock():
            ws.publish(key)
            if write_store:
                store = VectorStore(ws.chroma_dir)
                if not has_vectors(store, key):  # another run was live since: its collections replaced these
                    rebuild_vectors(store, ws.root, report)
                    keep_only(store, key, data.fingerprint)
        summary = json.loads((ws.run_dir(key) / "segments.json").read_text())
        return SegmentationRun(ws.root, key, summary, cached=True)

    created = not ws.root.exists()
    try:
        return _segment_new(data, ws, key, params, embedder, report, write_store)
    except BaseException:
        if created:  # a failed first run leaves no workspace behind
            shutil.rmtree(ws.root, ignore_errors=True)
        raise


def _segment_new(
    data: Dataset,
    ws: Workspace,
    key: str,
    params: RunParams,
    embedder: Embedder,
    report: StageProgress,
    write_store: bool,
) -> SegmentationRun:
    ws.prepare()
    with ws.lock():
        ws.clean_leftovers()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cache = EmbeddingCache(ws.cache_dir, vectors_name(embedder))
        profiles = build_profiles(data, embedder, cache, alpha=params.alpha, progress=report)
        timings["profiles_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        min_k, max_k = k_range_for(data, len(profiles.user_ids))
        model: SegmentModel | TextSegmentModel
        if data.kind == "text" and params.algorithm == "kmeans":  # one message per user: tools/segment/text_clusters.py
            model = TextSegmentModel(k=params.k, seed=params.seed, min_k=min_k, max_k=max_k).fit(profiles.fused, progress=report)
        else:
            model = SegmentModel(
                algorithm=params.algorithm,
                k=params.k,
                seed=params.seed,
                metric="cosine" if data.kind == "text" else "euclidean",
                min_k=min_k,
                max_k=max_k,
                smooth_neighbours=TEXT_SMOOTHING if data.kind == "text" else BEHAVIOUR_SMOOTHING,
            ).fit(profiles.fused, progress=report)
        labels = model.labels_
        timings["clustering_s"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        report("describing segments", 0, 1)
        segments = summarise_segments(data, profiles, labels)
        summary = build_summary(data, params, key, model, segments, profiles, embedder)
        name_segments(summary, profiles, labels, embedder)
        report("describing segments", 1, 1)
        timings["summary_s"] = time.perf_counter() - t2

        with ws.new_run(key) as run_dir:
            save_run(run_dir, summary, profiles, model)
            save_data(run_dir, data)
            if write_store:
                t3 = time.perf_counter()
                feats = profiles.features
                vectors = RunVectors.from_summary(
                    summary, data.items, profiles.user_ids, profiles.text, labels, profiles.item_ids, profiles.item_vectors,
                    () if feats is None else feats.names, None if feats is None else feats.raw,
                )
                write_vectors(VectorStore(ws.chroma_dir), vectors, report)
                timings["store_s"] = time.perf_counter() - t3
            timings["total_s"] = time.perf_counter() - t0
            atomic_write_json(run_dir / "timings.json", timings)
        ws.publish(key)
        if write_store:
            keep_only(VectorStore(ws.chroma_dir), key, data.fingerprint)
    return SegmentationRun(ws.root, key, summary, cached=False, timings=timings)


def build_summary(
    data: Dataset, params: RunParams, key: str, model: SegmentModel | TextSegmentModel, segments: list[SegmentSummary], profiles: Profiles,
    embedder: Embedder | None = None,
) -> dict:
    metrics = {name: (round(value, 4) if np.isfinite(value) else None) for name, value in model.metrics_.items()}
    if model.noise_share_ is not None:
        metrics["hdbscan_noise_share"] = round(model.noise_share_, 4)
    choice = model.k_choice_
    return {
        "segscope_version": PIPELINE_VERSION,
        "run_key": key,
        "data": {
            "source": data.source,
            "kind": data.kind,
            "fingerprint": data.fingerprint,
            "n_users": len(profiles.user_ids),
            "n_items": data.n_items,
            "n_events": len(data.events),
            "warnings": list(data.warnings),
            "entity": data.entity,
            "entity_reason": data.entity_reason,
            "skipped": dict(data.skipped),
            "currency": data.currency,
            "spend": data.spend,
            "returns": int((data.events["event_type"] == "return").sum()),
            "user_attributes": list(data.user_attributes),
        },
        "parameters": {
            **params.as_dict(),
            "alpha": profiles.alpha,
            "behaviour_features": [] if profiles.features is None else profiles.features.names,
            "text_source": profiles.text_source,
            # How the vectors were made (torch, onnx, onnx-int8) and the name they are cached under.
            "embed_backend": getattr(embedder, "backend", None),
            "embed_vectors": params.embedder if embedder is None else vectors_name(embedder),
        },
        "k": model.k_,
        "k_selection": None
        if choice is None
        else {
            "reason": choice.reason,
            "candidates": [
                {"k": c.k, "silhouette": round(c.silhouette, 4), "calinski_harabasz": round(c.calinski_harabasz, 2), "davies_bouldin": round(c.davies_bouldin, 4)}
                for c in choice.candidates
            ],
        },
        "metrics": metrics,
        "segments": [s.as_dict() for s in segments],
    }


def name_segments(summary: dict, profiles: Profiles, labels: np.ndarray, embedder: Embedder) -> None:
    """Extractive names and descriptions, and how distinct they are (label distinctiveness), into ``summary``."""
    named = label_segments(summary)
    for seg, lab in zip(summary["segments"], named):
        seg.update(name=lab.name, description=lab.description, label_source=lab.source, label_template=lab.template)
    members = SimpleNamespace(text=profiles.text, labels=labels)
    # Distinctiveness compares label texts with users' text vectors: only meaningful when those came from the embedder.
    distinct = round(label_distinctiveness(named, members, embedder), 4) if profiles.text_source == "embedder" else None
    summary["labels"] = {
        "distinctiveness": distinct,
        "source": "extractive",
        "templates": [],
    }


def assignments_csv(user_ids: np.ndarray, labels: np.ndarray) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["user_id", "segment_id"])
    writer.writerows(zip(user_ids.tolist(), labels.tolist()))
    return buf.getvalue()


def save_run(run_dir: Path, summary: dict, profiles: Profiles, model: SegmentModel | TextSegmentModel) -> None:
    """Everything later commands need, in plain numpy/JSON (no pickles)."""
    (run_dir / "segments.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    (run_dir / "assignments.csv").write_text(assignments_csv(profiles.user_ids, model.labels_))
    feats = profiles.features
    np.savez(
        run_dir / "profiles.npz",
        user_ids=profiles.user_ids.astype(str),
        text=profiles.text,
        fused=profiles.fused,
        labels=model.labels_,
        feature_names=np.asarray([] if feats is None else feats.names, dtype=str),
        feature_raw=np.zeros((len(profiles.user_ids), 0)) if feats is None else feats.raw,
        item_ids=profiles.item_ids.astype(str),
        item_vectors=profiles.item_vectors,
    )
    np.savez(
        run_dir / "model.npz",
        centroids=model.centroids_,
        reference=model.reference_,
        smooth_neighbours=model.smooth_neighbours,
        metric=model.metric,
    )
    (run_dir / "run.json").write_text(json.dumps({"key": summary["run_key"], "parameters": summary["parameters"]}, indent=2) + "\n")


def save_data(run_dir: Path, data: Dataset) -> None:
    """The normalised tables, so later commands work from the workspace alone."""
    data.events.to_parquet(run_dir / "events.parquet", index=False)
    if data.items is not None:
        data.items.to_parquet(run_dir / "items.parquet", index=False)
    if data.users is not None:
        data.users.to_parquet(run_dir / "users.parquet", index=False)
