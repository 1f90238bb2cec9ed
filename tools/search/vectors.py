"""What a run puts in the workspace's Chroma store, and which collections a workspace keeps.

Collections are named so that a half-written run can never change what the live
run reads: ``users-KEY`` and ``segments-KEY`` per run, and ``items-DATA`` per
dataset (its fingerprint), because a run on other data may give the same item id
another text. After a run is published only the live run's collections stay; a
run published again from the cache gets its collections rebuilt from its folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.core.errors import SegscopeError, StoreError, WorkspaceError
from tools.core.workspace import Workspace
from tools.data.items import item_texts
from tools.embed.embedding import text_key
from tools.search.locator import StoreSpec
from tools.search.store import VectorStore

StageProgress = Callable[[str, int, int], None]
RUN_PREFIXES = ("users-", "segments-", "items-")
# Behaviour facts users carry as metadata, because find_users filters on them
# ("active in the last 30 days", "spent more than 500"). Every metadata field
# costs about 7 s per 100k users to write, so there are no others.
FILTER_FEATURES = ("recency_days", "monetary")
# (user ids, text vectors, segment labels, FILTER_FEATURES values) of some users at a time
UserChunk = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def users_collection(key: str) -> str:
    return f"users-{key}"


def segments_collection(key: str) -> str:
    return f"segments-{key}"


def items_collection(fingerprint: str) -> str:
    return f"items-{fingerprint[:24]}"


@dataclass(frozen=True)
class RunVectors:
    """Everything a run writes to Chroma, from a fresh fit or from a finished run's folder."""

    key: str
    fingerprint: str
    user_ids: np.ndarray
    text: np.ndarray  # (n_users, d) user text vectors
    labels: np.ndarray
    searchable: bool  # False when the vectors are the collaborative fallback, not text
    item_ids: np.ndarray
    item_vectors: np.ndarray
    items: pd.DataFrame | None  # item_id, title, category, description
    segments: list[dict]  # the summary's segments (id, size, keywords, traits)
    embedder: str
    facts: dict[str, np.ndarray]  # FILTER_FEATURES the data has, raw values per user
    # The users a chunk at a time, when they are not all in memory (profiles kept in parts: tools/segment/parts.py);
    # ``text`` and ``facts`` are then empty and ``user_ids`` and ``labels`` are every user's.
    chunks: Callable[[], Iterator[UserChunk]] | None = None

    def user_chunks(self) -> Iterator[UserChunk]:
        if self.chunks is not None:
            yield from self.chunks()
        else:
            yield self.user_ids, self.text, self.labels, self.facts

    @classmethod
    def from_summary(
        cls, summary: dict, items: pd.DataFrame | None, user_ids, text, labels, item_ids, item_vectors,
        feature_names=(), feature_raw=None, chunks: Callable[[], Iterator[UserChunk]] | None = None,
    ) -> RunVectors:
        """``chunks``: the users a chunk at a time instead of ``text`` and ``feature_raw`` (None both)."""
        names = list(feature_names)
        return cls(
            key=summary["run_key"],
            fingerprint=summary["data"]["fingerprint"],
            user_ids=np.asarray(user_ids),
            text=np.zeros((0, 0), dtype=np.float32) if text is None else np.asarray(text),
            labels=np.asarray(labels),
            searchable=summary["parameters"].get("text_source", "embedder") == "embedder",
            item_ids=np.asarray(item_ids),
            item_vectors=np.asarray(item_vectors),
            items=items,
            segments=summary["segments"],
            # Item hashes name the vectors' variant, so int8 items replace fp32 ones and back.
            embedder=summary["parameters"].get("embed_vectors") or summary["parameters"]["embedder"],
            facts={} if feature_raw is None else {f: np.asarray(feature_raw)[:, names.index(f)] for f in FILTER_FEATURES if f in names},
            chunks=chunks,
        )


def write_vectors(store: VectorStore, run: RunVectors, report: StageProgress) -> None:
    """Items (skipped when unchanged), users with their segment, and segment centres, into Chroma."""
    if len(run.item_ids) and run.items is not None:
        items = run.items.set_index("item_id").loc[run.item_ids]
        texts = item_texts(items.reset_index())
        hashes = [text_key(run.embedder, t) for t in texts]
        metas = [
            {"title": t, "category": c}
            for t, c in zip(items["title"].fillna("").astype(str), items["category"].fillna("").astype(str))
        ]
        store.sync_items(
            list(run.item_ids), run.item_vectors, hashes, metas, lambda d, t: report("storing items", d, t),
            name=items_collection(run.fingerprint),
        )
    traits = {s["id"]: ", ".join(t["label"] for t in s["traits"][:3]) for s in run.segments}
    name, total = users_collection(run.key), len(run.user_ids)
    store.delete(name)
    store.create(name)  # an empty collection when no user has text: the run's users were written, as none
    segment_index = pd.Index([int(s["id"]) for s in run.segments])
    sums = np.zeros((len(run.segments), 0))
    counts = np.zeros(len(run.segments), dtype=np.int64)
    done = written = 0
    for ids, text, labels, facts in run.user_chunks():
        # Users with no text at all (nothing they touched has a description) have no
        # direction to search by; they stay out of the users collection.
        has_text = np.flatnonzero((text != 0).any(axis=1)) if run.searchable else np.zeros(0, dtype=np.int64)
        # Metadata is what makes Chroma writes slow, so users carry only what the issue
        # and the tools use: their segment, its key traits, and the FILTER_FEATURES.
        user_meta = [
            {"segment_id": int(labels[i]), "traits": traits[int(labels[i])], **{f: float(v[i]) for f, v in facts.items()}}
            for i in has_text
        ]
        store.append(name, list(np.asarray(ids)[has_text]), text[has_text], user_meta,
                     progress=lambda d, t, base=done: report("storing users", base + d, total))
        done += len(ids)
        written += len(has_text)
        if sums.shape[1] == 0:
            sums = np.zeros((len(run.segments), text.shape[1]))
        rows = segment_index.get_indexer(np.asarray(labels, dtype=np.int64))  # each segment's text sum, in float64
        np.add.at(sums, rows, text.astype(np.float64))
        counts += np.bincount(rows, minlength=len(run.segments))
    report("storing users", total, total)
    if not written:
        return  # no text vectors: nothing to search users or segments by
    present = np.flatnonzero(counts)
    segs = [run.segments[j] for j in present]
    centres = (sums[present] / counts[present, None]).astype(np.float32)
    seg_meta = [{"segment_id": s["id"], "size": s["size"], "keywords": list(s["keywords"][:5])} for s in segs]
    store.replace(segments_collection(run.key), [str(s["id"]) for s in segs], centres, seg_meta)


def has_vectors(store: VectorStore, key: str) -> bool:
    """Whether run KEY's users collection exists (it may be empty when the run has no text)."""
    return users_collection(key) in store.collection_names()


def keep_only(store: VectorStore, key: str | None, fingerprint: str | None) -> int:
    """Drop every run or dataset collection except those of run KEY on data FINGERPRINT; returns how many went."""
    keep = set() if key is None else {users_collection(key), segments_collection(key)}
    if fingerprint is not None:
        keep.add(items_collection(fingerprint))
    dropped = 0
    for name in store.collection_names():
        if (name.startswith(RUN_PREFIXES) or name == "items") and name not in keep:
            store.delete(name)
            dropped += 1
    return dropped


def leave_store(previous: StoreSpec, now: StoreSpec) -> str | None:
    """Empty the store the workspace used before ``now`` (call once a run in ``now`` is published).

    Nothing there is live any more. Returns a notice when that store is a server
    that cannot be reached: its collections stay there, and nothing reads them.
    """
    if previous == now or (not previous.is_server and not (previous.path and previous.path.exists())):
        return None
    try:
        VectorStore(previous).discard()
    except StoreError as exc:
        return f"the vectors of this workspace's earlier runs stay on {previous.describe()}: {exc.message}"
    return None


def rebuild_vectors(store: VectorStore, workspace, report: StageProgress) -> None:
    """Write the current run's collections again from its folder (after a cached run was published)."""
    from tools.core.run_state import load_run

    run = load_run(workspace)
    items = run.data.items
    write_vectors(
        store,
        RunVectors.from_summary(
            run.summary, items, run.user_ids, run.text, run.labels, run.item_ids, run.item_vectors, run.feature_names, run.feature_raw
        ),
        report,
    )



Hit = tuple[str, float, dict]


def search_run(
    store: VectorStore, workspace, summary: dict, name: str, vector: np.ndarray, n: int = 10,
    where: dict | None = None, report: StageProgress | None = None,
) -> tuple[list[Hit], str | None]:
    """Nearest rows of the live run's collection ``name``, and a notice when the collection had to be rebuilt first.

    A collection that is missing, empty while the run has vectors for it, or
    damaged (an unfiltered query returns fewer rows than the collection holds:
    part of the Chroma folder was deleted) is rebuilt from the run folder under the
    workspace lock, so a search never answers with a silently empty list. Raises
    a one-line SegscopeError when the run has nothing to search by.
    """
    if name == users_collection(summary["run_key"]) and summary["parameters"].get("text_source", "embedder") != "embedder":
        raise SegscopeError(
            "this run's users have no text vectors (the data has no item texts or reviews), so they cannot be found by a description",
            "describe or compare segments instead, or segment data that has item titles, descriptions or reviews",
        )
    if name == items_collection(summary["data"]["fingerprint"]) and not _has_item_vectors(workspace, summary["run_key"]):
        raise SegscopeError(
            "this run's items have no texts (titles, categories or descriptions), so they cannot be found by a description",
            "segment data with an items file that has titles or descriptions",
        )
    notice = None
    present = name in store.collection_names()
    if not present or store.count(name) == 0:
        notice = _rebuild(store, workspace, summary, name, "was missing" if not present else "was empty", report)
    hits = store.query(name, vector, n=n, where=where)
    if len(hits) < n:  # few matches, or an index that lost rows: only the second is worth a rebuild
        found = len(hits) if where is None else len(store.query(name, vector, n=n))
        expected = min(n, store.count(name))
        if found < expected:
            if notice is not None:
                raise WorkspaceError(f"{store.describe()} returns {found} of {expected} rows even after a rebuild", store.repair_hint())
            notice = _rebuild(store, workspace, summary, name, f"was damaged (its index returned {found} of {expected} rows)", report)
            hits = store.query(name, vector, n=n, where=where)
    return hits, notice


def _has_item_vectors(workspace, key: str) -> bool:
    """Whether run KEY embedded any item texts (read from its folder: one small array, not the run)."""
    with np.load(Workspace(workspace).run_dir(key) / "profiles.npz", allow_pickle=False) as profiles:
        return len(profiles["item_ids"]) > 0


def _rebuild(store: VectorStore, workspace, summary: dict, name: str, why: str, report: StageProgress | None) -> str:
    key, fingerprint = summary["run_key"], summary["data"]["fingerprint"]
    ws = Workspace(workspace)
    with ws.lock():
        if ws.current_run() != key:
            raise WorkspaceError(
                f"{ws.root}: another segmentation run was published after this one was loaded",
                "ask again: the assistant then reads the current run",
            )
        store.delete(name)  # items are only rewritten when their text changed
        rebuild_vectors(store, ws.root, report or (lambda stage, done, total: None))
        keep_only(store, key, fingerprint)
    count = store.count(name) if name in store.collection_names() else 0
    if count == 0:
        what = "users" if name.startswith("users-") else "items"
        raise SegscopeError(
            f"this run has no {what} with a text to search by",
            "describe or compare segments instead" if what == "users" else "segment data whose items have titles or descriptions",
        )
    return f"The vector store's {name} collection {why}; rebuilt it from the run folder ({count:,} rows)."
