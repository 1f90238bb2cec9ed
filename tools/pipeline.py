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
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tools.core.dataset import Dataset
from tools.core.memory import release_memory
from tools.core.npz import Blocks, save_npz
from tools.core.workspace import Workspace, atomic_write_json
from tools.data.outliers import Outliers, detect_outliers
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import (
    DEFAULT_EMBEDDER,
    Embedder,
    make_embedder,
    vectors_name,
)
from tools.explain.labels import label_segments
from tools.explain.quality import label_distinctiveness
from tools.search.locator import StoreSpec, choose_store, recorded_store
from tools.search.store import VectorStore
from tools.search.vectors import (
    FILTER_FEATURES,
    RunVectors,
    UserChunk,
    has_vectors,
    keep_only,
    leave_store,
    rebuild_vectors,
    write_vectors,
)
from tools.segment.clustering import SegmentModel
from tools.segment.engine import LOCAL, Engine, fit_sample
from tools.segment.levels import Levels, fit_levels, flat_levels
from tools.segment.parts import ProfileParts, fused_rows
from tools.segment.profiles import DEFAULT_ALPHA, Profiles, build_profiles
from tools.segment.resmooth import NEIGHBOURS_FILE, Candidates
from tools.segment.stability import REPRODUCIBLE
from tools.segment.summary import SegmentSummary, summarise_segments, trait_tests
from tools.segment.text_clusters import TextSegmentModel

PIPELINE_VERSION = "13"  # 6: text-only data by tools/segment/text_clusters.py; 7: behaviour runs as a two-level tree;
# 8: traits need half the members covered, splits ordered by usefulness gain, segments cut from all users when no top
# level is reproducible; 9: traits tested, BH-adjusted, only significant ones cited; 10: both merged;
# 11: outliers left out of fitting (tools/data/outliers.py; flagged users assigned afterwards);
# 12: collaborative vectors are the projection on the SVD axes (what assign can repeat for new users);
# 13: the order of events (steps between event types, positions, time to convert, sessions) as a block of its own
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunParams:
    algorithm: str = "kmeans"
    k: int | str = "auto"
    alpha: float = DEFAULT_ALPHA
    seed: int = 0
    embedder: str = DEFAULT_EMBEDDER
    keep_outliers: bool = False  # fit flagged outliers with everyone (they are still flagged and reported)
    order: bool = True  # profile the order of events where the data has one (tools/segment/sequence.py); False: order-blind

    def as_dict(self) -> dict:
        return {"algorithm": self.algorithm, "k": self.k, "alpha": self.alpha, "seed": self.seed, "embedder": self.embedder,
                "keep_outliers": self.keep_outliers, "order": self.order}  # fmt: skip


@dataclass(frozen=True)
class SegmentationRun:
    workspace: Path
    key: str
    summary: dict  # the content of segments.json
    cached: bool
    timings: dict[str, float] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # e.g. an earlier store that could not be emptied


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
    store: StoreSpec | None = None,
    engine: Engine = LOCAL,
) -> SegmentationRun:
    """Segment ``data`` into ``workspace``; returns the run (reused when nothing changed).

    ``store`` is where the run's vectors go (default: the store the workspace
    records, else its embedded folder); a server that does not answer fails
    here, before anything is written. ``engine`` is where the per-user work runs
    (:class:`Engine`); it changes no result, so it is not part of the run's key.
    """
    report = progress or (lambda stage, done, total: None)
    ws = Workspace(workspace)
    spec = store or choose_store(ws.root, None)
    if write_store:
        VectorStore(spec).check_reachable()
    if embedder is not None and embedder.name != params.embedder:
        # The run key must name the embedder actually used, or a later run with
        # another model would wrongly reuse these results.
        params = replace(params, embedder=embedder.name)
    embedder = embedder or make_embedder(params.embedder)  # lazy: nothing loads until a text needs encoding
    key = run_key(data, params, vectors_name(embedder))
    if ws.has_run(key):
        notices: list[str] = []
        with ws.lock():
            previous = recorded_store(ws.root)
            ws.publish(key, spec.record() if write_store else None)
            if write_store:
                vstore = VectorStore(spec)
                if not has_vectors(vstore, key):  # another run was live since (or in another store): its collections replaced these
                    rebuild_vectors(vstore, ws.root, report)
                    keep_only(vstore, key, data.fingerprint)
                notices += filter(None, [leave_store(previous, spec)])
        summary = json.loads((ws.run_dir(key) / "segments.json").read_text())
        return SegmentationRun(ws.root, key, summary, cached=True, notices=tuple(notices))

    created = not ws.root.exists()
    previous = recorded_store(ws.root)
    try:
        return _segment_new(data, ws, key, params, embedder, report, spec if write_store else None, engine)
    except BaseException:
        if write_store and spec != previous:
            _forget_store(spec, ws)
        if created:  # a failed first run leaves no workspace behind
            shutil.rmtree(ws.root, ignore_errors=True)
        raise


def _forget_store(spec: StoreSpec, ws: Workspace) -> None:
    """Empty a store this workspace did not use before a run that failed: it holds only that run's partial collections."""
    try:
        if ws.root.exists() and recorded_store(ws.root) == spec:
            return  # the run was published there before it failed: those collections are live
        VectorStore(spec).discard()
    except Exception:  # noqa: BLE001 - the run's own error is the one to report
        pass


def _segment_new(
    data: Dataset,
    ws: Workspace,
    key: str,
    params: RunParams,
    embedder: Embedder,
    report: StageProgress,
    store: StoreSpec | None,
    engine: Engine = LOCAL,
) -> SegmentationRun:
    ws.prepare()
    notices: list[str] = []
    with ws.lock(), ExitStack() as cleanup:
        ws.clean_leftovers()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cache = EmbeddingCache(ws.cache_dir, vectors_name(embedder))
        report("finding outliers", 0, 1)
        outliers = detect_outliers(data)
        release_memory()  # each stage's temporaries back to the system: a large run's peak is one stage's, not their sum
        report("finding outliers", 1, 1)
        # Flagged users get profiles, but take no part in their scaling unless kept in the fit.
        exclude = None if params.keep_outliers else outliers.user_ids[outliers.flagged]
        profiles = engine.build_profiles(data, embedder, cache, params.alpha, report, exclude, order=params.order,
                                         scratch=ws.state)
        if isinstance(profiles, ProfileParts):  # kept in parts by the engine (tools/segment/parts.py): gone with the run
            cleanup.callback(profiles.discard)
        reasons = outliers.aligned(profiles.user_ids)
        flagged = reasons != ""
        fitted = np.ones(len(flagged), dtype=bool) if params.keep_outliers else ~flagged
        fitted = fit_sample(fitted, engine.fit_users, params.seed)
        fit_profiles = profiles if fitted.all() else profiles.rows(fitted)
        fit_data = data if fitted.all() else data.for_users(fit_profiles.user_ids)
        release_memory()
        timings["profiles_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        min_k, max_k = k_range_for(data, len(fit_profiles.user_ids))
        model: SegmentModel | TextSegmentModel

        def make_model(k: int | str, seed: int = params.seed) -> SegmentModel:
            return SegmentModel(
                algorithm=params.algorithm,
                k=k,
                seed=seed,
                metric="cosine" if data.kind == "text" else "euclidean",
                min_k=min_k,
                max_k=max_k,
                smooth_neighbours=TEXT_SMOOTHING if data.kind == "text" else BEHAVIOUR_SMOOTHING,
                # Behaviour data gets a hierarchy: its top level is the most reproducible partition,
                # and held-out usefulness decides the sub-segments (tools/segment/levels.py).
                k_rule="silhouette" if data.kind == "text" else "stability",
            )

        if data.kind == "text" and params.algorithm == "kmeans":  # one message per user: tools/segment/text_clusters.py
            model = TextSegmentModel(k=params.k, seed=params.seed, min_k=min_k, max_k=max_k).fit(fit_profiles.fused, progress=report)
            levels = flat_levels(model.labels_)
        else:
            model = make_model(params.k).fit(fit_profiles.fused, progress=report)
            if is_hierarchical(data, params):
                levels = fit_levels(fit_data, fit_profiles, model, make_model, embedder, cache, max_k, report)
            else:
                levels = flat_levels(model.labels_)
        top, labels = assign_everyone(levels, model, profiles, fitted, engine)
        release_memory()
        timings["clustering_s"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        report("describing segments", 0, 1)
        segments = summarise_segments(data, profiles, labels, top, levels.tree.parents, fitted=fitted, flagged=flagged,
                                      described=None if fitted.all() else (fit_data, fit_profiles))
        summary = build_summary(data, params, key, model, segments, profiles, levels, embedder, outliers)
        name_segments(summary, fit_profiles, labels[fitted], embedder)
        release_memory()
        report("describing segments", 1, 1)
        timings["summary_s"] = time.perf_counter() - t2

        with ws.new_run(key) as run_dir:
            save_run(run_dir, summary, profiles, model, levels, top, labels, reasons, fitted, fit_fused=fit_profiles.fused)
            save_data(run_dir, data)
            release_memory()
            if store is not None:
                t3 = time.perf_counter()
                vectors = run_vectors(summary, data, profiles, labels)
                write_vectors(VectorStore(store), vectors, report)
                timings["store_s"] = time.perf_counter() - t3
            timings["total_s"] = time.perf_counter() - t0
            timings.update(engine.stats)  # a cluster engine's own stages (tools/distributed/engine.py)
            atomic_write_json(run_dir / "timings.json", timings)
        previous = recorded_store(ws.root)
        ws.publish(key, None if store is None else store.record())
        if store is not None:
            keep_only(VectorStore(store), key, data.fingerprint)
            notices += filter(None, [leave_store(previous, store)])
    return SegmentationRun(ws.root, key, summary, cached=False, timings=timings, notices=tuple(notices))


def assign_everyone(levels: Levels, model: SegmentModel | TextSegmentModel, profiles: Profiles | ProfileParts,
                    fitted: np.ndarray, engine: Engine = LOCAL) -> tuple[np.ndarray, np.ndarray]:
    """(top-level, leaf) segment of every user: the fit's own for the ``fitted`` rows, the saved model's for the rest
    (placed by the ``engine``, a part at a time when it kept the profiles in parts)."""
    top = np.zeros(len(fitted), dtype=np.int64)
    leaf = np.zeros(len(fitted), dtype=np.int64)
    top[fitted], leaf[fitted] = levels.tree.top_labels, levels.tree.leaf_labels
    if isinstance(profiles, ProfileParts) and not fitted.all():
        placed_top, placed_leaf = engine.place_parts(levels, model, profiles, ~fitted)  # type: ignore[arg-type]
        top[~fitted], leaf[~fitted] = placed_top[~fitted], placed_leaf[~fitted]
    elif not fitted.all():
        top[~fitted], leaf[~fitted] = engine.assign_levels(levels, model, profiles.rows(~fitted))  # type: ignore[arg-type]
    return top, leaf


def run_vectors(summary: dict, data: Dataset, profiles: Profiles | ProfileParts, labels: np.ndarray) -> RunVectors:
    """What the run writes to the store: every user's text vector, from memory or a part at a time."""
    names = profiles.feature_names
    if not isinstance(profiles, ProfileParts):
        feats = profiles.features
        return RunVectors.from_summary(summary, data.items, profiles.user_ids, profiles.text, labels, profiles.item_ids,
                                       profiles.item_vectors, names, None if feats is None else feats.raw)
    parts = profiles

    def chunks() -> Iterator[UserChunk]:
        for i, rows in enumerate(parts.rows_of):
            text, raw = parts.load(i)
            yield parts.user_ids[rows], text, labels[rows], {f: raw[:, names.index(f)] for f in FILTER_FEATURES if f in names}

    return RunVectors.from_summary(summary, data.items, parts.user_ids, None, labels, parts.item_ids, parts.item_vectors,
                                   names, None, chunks=chunks)


def is_hierarchical(data: Dataset, params: RunParams) -> bool:
    """``--k auto`` on behaviour data gets sub-segments; ``--k N``, text-only data and HDBSCAN stay flat."""
    return data.kind == "behaviour" and params.k == "auto" and params.algorithm != "hdbscan"


def k_selection(model: SegmentModel, levels: Levels) -> dict | None:
    """Why the run has the segments it has: the top-level rule and candidates, then the depth and its candidates."""
    choice = model.k_choice_
    if choice is None:
        return None
    useful = levels.top_usefulness
    candidates = [c.as_dict() | ({"usefulness": useful[c.k]} if c.k in useful else {}) for c in choice.candidates]
    out: dict = {"reason": choice.reason, "candidates": candidates}
    if levels.depth is not None:
        depth = levels.depth
        out["reason"] = f"{choice.reason}. Sub-segments: {depth.reason}"
        if levels.root:
            best = max((c for c in choice.candidates if c.prediction_strength is not None), key=lambda c: c.prediction_strength)
            out["reason"] = (
                f"no top level: no k in {choice.candidates[0].k}..{choice.candidates[-1].k} reaches prediction strength "
                f"{REPRODUCIBLE} (best {best.prediction_strength:.3f} at k={best.k}), so the profiles hold no groups another "
                f"sample would find again; the segments are cut from all users along their outlook. Segments: {depth.reason}"
            )
        out["depth"] = {
            "from_root": levels.root,
            "space": depth.space,
            "splits": depth.splits,
            "reason": depth.reason,
            "time_split": levels.split,
            "outlook": None if levels.outlook is None else levels.outlook.as_dict(),
            "candidates": [c.as_dict() for c in depth.candidates],
        }
    return out


def build_summary(
    data: Dataset, params: RunParams, key: str, model: SegmentModel | TextSegmentModel, segments: list[SegmentSummary],
    profiles: Profiles | ProfileParts, levels: Levels | None = None, embedder: Embedder | None = None, outliers: Outliers | None = None,
) -> dict:
    levels = levels or flat_levels(model.labels_)
    metrics = {name: (round(value, 4) if np.isfinite(value) else None) for name, value in model.metrics_.items()}
    if model.noise_share_ is not None:
        metrics["hdbscan_noise_share"] = round(model.noise_share_, 4)
    tops = [s.segment_id for s in segments if s.parent is None]
    leaves = [s.segment_id for s in segments if not s.children]
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
            "outliers": None if outliers is None else outliers.as_dict(kept_in_fit=params.keep_outliers),
            "columns": dict(data.columns),
        },
        "parameters": {
            **params.as_dict(),
            "alpha": profiles.alpha,
            "behaviour_features": list(profiles.feature_names),
            "text_source": profiles.text_source,
            # The order block's weight in the profiles (0: the run has none), what assign and update fuse with.
            "order_weight": 0.0 if profiles.recipe is None else profiles.recipe.order_weight,
            # How the vectors were made (torch, onnx, onnx-int8) and the name they are cached under.
            "embed_backend": getattr(embedder, "backend", None),
            "embed_vectors": params.embedder if embedder is None else vectors_name(embedder),
        },
        "k": len(leaves),
        "k_top": len(tops),
        "hierarchy": {"levels": 1 if len(leaves) == len(tops) else 2, "top": tops, "leaves": leaves, "split_by": levels.space},
        "k_selection": k_selection(model, levels),
        "metrics": metrics,
        "trait_tests": trait_tests(segments),
        "segments": [s.as_dict() for s in segments],
    }


def name_segments(summary: dict, profiles: Profiles, labels: np.ndarray, embedder: Embedder) -> None:
    """Extractive names and descriptions, and how distinct they are (label distinctiveness), into ``summary``."""
    named = label_segments(summary)
    for seg, lab in zip(summary["segments"], named):
        seg.update(name=lab.name, description=lab.description, label_source=lab.source, label_template=lab.template)
    members = SimpleNamespace(text=profiles.text, labels=labels)
    # Distinctiveness compares label texts with users' text vectors (of the leaves users are in): only meaningful
    # when those came from the embedder.
    distinct = round(label_distinctiveness(named, members, embedder), 4) if profiles.text_source == "embedder" else None
    summary["labels"] = {
        "distinctiveness": distinct,
        "source": "extractive",
        "templates": [],
    }


def assignments_csv(
    user_ids: np.ndarray, labels: np.ndarray, top_labels: np.ndarray | None = None, outliers: np.ndarray | None = None
) -> str:
    """``user_id,segment_id,top_segment_id,outlier``: each user's leaf segment, its top-level segment, and why the
    user was flagged as an outlier (reason codes joined by "+"; empty for everyone else)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["user_id", "segment_id", "top_segment_id", "outlier"])
    tops = labels if top_labels is None else top_labels
    flags = np.full(len(labels), "", dtype=object) if outliers is None else outliers
    writer.writerows(zip(user_ids.tolist(), labels.tolist(), tops.tolist(), flags.tolist()))
    return buf.getvalue()


def save_run(
    run_dir: Path, summary: dict, profiles: Profiles | ProfileParts, model: SegmentModel | TextSegmentModel, levels: Levels | None = None,
    top: np.ndarray | None = None, labels: np.ndarray | None = None, outliers: np.ndarray | None = None,
    fitted: np.ndarray | None = None, fit_fused: np.ndarray | None = None,
) -> None:
    """Everything later commands need, in plain numpy/JSON (no pickles).

    ``top``/``labels`` are every user's segments (the fitted tree's when None); ``outliers`` their reason codes;
    ``fitted`` the rows the model was fitted on (None: everyone but the flagged outliers, unless the run kept them);
    ``fit_fused`` their fused profiles when the caller has them (else read from ``profiles``).
    """
    levels = levels or flat_levels(model.labels_)
    tree = levels.tree
    top = tree.top_labels if top is None else top
    labels = tree.leaf_labels if labels is None else labels
    outliers = np.full(len(labels), "", dtype=object) if outliers is None else outliers
    (run_dir / "segments.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    (run_dir / "assignments.csv").write_text(assignments_csv(profiles.user_ids, labels, top, outliers))
    arrays = {
        "user_ids": profiles.user_ids.astype(str),
        "text": None,
        "fused": None,
        "labels": labels,
        "top_labels": top,
        "outliers": np.asarray(outliers, dtype=str),
        "feature_names": np.asarray(profiles.feature_names, dtype=str),
        "feature_raw": None,
        "item_ids": profiles.item_ids.astype(str),
        "item_vectors": profiles.item_vectors,
    }
    if isinstance(profiles, ProfileParts):  # text, fused and feature_raw streamed from the parts
        profiles.save_npz(run_dir / "profiles.npz", arrays)
    else:
        feats = profiles.features
        raw = np.zeros((len(profiles.user_ids), 0)) if feats is None else feats.raw
        np.savez(run_dir / "profiles.npz", **(arrays | {"text": profiles.text, "fused": profiles.fused, "feature_raw": raw}))
    # The model was fitted on everyone but the flagged outliers (unless the run kept them in the fit).
    kept = ((summary.get("data") or {}).get("outliers") or {}).get("kept_in_fit", True)
    if fitted is None:
        fitted = np.ones(len(labels), dtype=bool) if kept else np.asarray(outliers, dtype=str) == ""
    save_model(run_dir, model, levels, fused_rows(profiles, fitted) if fit_fused is None else fit_fused)
    save_candidates(run_dir, model, fitted)
    # Last: run.json is what marks the run folder complete.
    (run_dir / "run.json").write_text(json.dumps({"key": summary["run_key"], "parameters": summary["parameters"]}, indent=2) + "\n")


def save_candidates(run_dir: Path, model: SegmentModel | TextSegmentModel, fitted: np.ndarray) -> None:
    """neighbours.npz: the fitted users' smoothing candidates (tools/segment/resmooth.py), what lets ``update``
    re-place everyone without searching the reference when the data's end moves; nothing for other models."""
    found = getattr(model, "fit_candidates_", None)
    if not isinstance(model, SegmentModel) or model.metric != "euclidean" or found is None:
        return
    fitted = np.asarray(fitted, dtype=bool)
    if fitted.all():
        Candidates.unknown(len(fitted), found.ids.shape[1]).put(fitted, found).save(run_dir / NEIGHBOURS_FILE)
        return
    # Unknown (-1, NaN, -inf) for the users the model was not fitted on: written a block of rows at a time, as
    # ``Candidates.unknown(n, width).put(fitted, found)`` would hold them (1M users: 0.6 GB, twice, built whole).
    width, n = found.ids.shape[1], len(fitted)
    before = np.concatenate([[0], np.cumsum(fitted)])  # fitted rows before each row: where its candidates start

    def blocks(of: np.ndarray, fill: float, dtype) -> Blocks:
        def make() -> Iterator[np.ndarray]:
            for start in range(0, n, CANDIDATE_BLOCK):
                stop = min(start + CANDIDATE_BLOCK, n)
                block = np.full((stop - start, width), fill, dtype=dtype)
                block[fitted[start:stop]] = of[before[start] : before[stop]]
                yield block
        return Blocks((n, width), np.dtype(dtype), make)

    bound = np.full(n, -np.inf)
    bound[fitted] = found.bound
    save_npz(run_dir / NEIGHBOURS_FILE, {"ids": blocks(found.ids, -1, np.int32), "dist": blocks(found.dist, np.nan, np.float64),
                                         "bound": bound})


def save_model(run_dir: Path, model: SegmentModel | TextSegmentModel, levels: Levels, fused: np.ndarray) -> None:
    """model.npz: the top level's centroids and smoothing reference, the sub-segment tree and the outlook.

    tools/segment/fitted.py loads it back to assign new users (``segscope assign``).
    A run cut from all users (``Levels.root``) has one centroid, everyone's: every user
    starts at internal leaf 0 and the splits make the segments. Its ``segment_centroids``
    are then each segment's mean smoothed profile (from ``fused``, the run's profiles),
    what assign measures a user's distance to; otherwise they are the centroids.
    """
    tree = levels.tree
    text = isinstance(model, TextSegmentModel)
    centroids = model.centroids_
    segment_centroids = centroids
    if tree.root:  # the members' means, weighted by size: the mean of all smoothed profiles
        centroids = np.average(centroids, axis=0, weights=np.bincount(model.labels_, minlength=len(centroids)))[None, :]
        segment_centroids = _segment_means(model.smoothed(fused), tree.top_labels)
    np.savez(
        run_dir / "model.npz",
        model_kind="text" if text else "centroid",
        centroids=centroids,
        root=tree.root,
        segment_centroids=np.asarray(segment_centroids, dtype=np.float32),
        reference=model.reference_,
        smooth_neighbours=model.smooth_neighbours,
        metric=model.metric,
        # TextSegmentModel's diffusion (restored from the reference by TextSegmentModel.restore)
        text_diffusion=np.asarray([model.self_weight, model.rounds, model.dims] if text else [], dtype=np.float64),
        # The sub-segment tree: split j sends members of leaf split_leaf[j] to the nearest of
        # split_centres[j] (in the space split_by names), becoming split_children[j]; leaf_map
        # turns the internal leaf ids into segment ids. Outlook: ridge from the named features.
        split_by=str(levels.space or ""),
        split_leaf=np.asarray([s.leaf for s in tree.splits], dtype=np.int64),
        split_children=np.asarray([s.children for s in tree.splits], dtype=np.int64).reshape(-1, 2),
        split_centres=np.stack([s.centres for s in tree.splits]).astype(np.float32) if tree.splits else np.zeros((0, 2, 0), np.float32),
        leaf_map=np.asarray(sorted(tree.leaf_map.items()), dtype=np.int64).reshape(-1, 2),
        outlook_features=np.asarray([] if levels.outlook is None else levels.outlook.feature_names, dtype=str),
        outlook_coef=np.zeros((2, 0)) if levels.outlook is None else levels.outlook.coef,
        outlook_intercept=np.zeros(2) if levels.outlook is None else levels.outlook.intercept,
        outlook_basis="" if levels.outlook is None else levels.outlook.basis,
        outlook_knots=_spline_knots(levels),
        # The outlook space is (prediction - outlook_centre) / outlook_scale, the fitted users' figures.
        outlook_centre=np.zeros(0) if levels.space_centre is None else levels.space_centre,
        outlook_scale=np.zeros(0) if levels.space_scale is None else levels.space_scale,
    )


PARQUET_CHUNK = 1_000_000  # rows converted to Arrow at a time
CANDIDATE_BLOCK = 65_536  # rows of neighbours.npz built at a time


def write_parquet(frame, path: Path) -> None:
    """``frame.to_parquet(path, index=False)``, converted ``PARQUET_CHUNK`` rows at a time (each a row group) rather
    than all at once; read back, the same table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(frame) <= PARQUET_CHUNK:
        frame.to_parquet(path, index=False)
        return
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(frame), PARQUET_CHUNK):
            writer.write_table(pa.Table.from_pandas(frame.iloc[start : start + PARQUET_CHUNK], schema=schema,
                                                    preserve_index=False))


def _segment_means(space: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(k, d) each segment's mean row of ``space`` (segments 0..k-1 by ``labels``)."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, space.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, space.astype(np.float64))
    return sums / np.maximum(np.bincount(labels, minlength=k), 1)[:, None]


def _spline_knots(levels: Levels) -> np.ndarray:
    """(n_features, n_knots) B-spline knots of a spline outlook (cubic), empty otherwise."""
    transformer = None if levels.outlook is None else levels.outlook.transformer
    if transformer is None:
        return np.zeros((0, 0))
    return np.stack([spline.t for spline in transformer.bsplines_])


def save_data(run_dir: Path, data: Dataset) -> None:
    """The normalised tables, so later commands work from the workspace alone."""
    write_parquet(data.events, run_dir / "events.parquet")
    if data.items is not None:
        data.items.to_parquet(run_dir / "items.parquet", index=False)
    if data.users is not None:
        data.users.to_parquet(run_dir / "users.parquet", index=False)
