"""The Chroma vector store inside a workspace: items, users and segments.

Embeddings are always supplied by segscope (Chroma is never asked to embed, so
it never tries to download a model). Items are keyed by item id with the text's
content hash in their metadata: an unchanged item is not written again. Users
and segments are replaced per run, since their vectors and segment ids change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tools.core.errors import WorkspaceError

MAX_BATCH = 5000  # Chroma refuses batches above 5461
# HNSW build parameters: a lower construction effort than Chroma's default
# makes writing 100k users several times faster at a small recall cost.
COLLECTION_METADATA = {
    "hnsw:space": "cosine",
    "hnsw:construction_ef": 40,
    "hnsw:M": 10,
    "hnsw:search_ef": 64,
}
ProgressFn = Callable[[int, int], None]

Scalar = str | int | float | bool


def _clean(meta: dict[str, Any]) -> dict[str, Scalar]:
    """Chroma metadata takes scalars only, never None or NaN."""
    out: dict[str, Scalar] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if isinstance(value, (np.integer,)):
            value = int(value)
        elif isinstance(value, (np.floating, float)):
            if not np.isfinite(value):
                continue
            value = float(value)
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        out[key] = value
    return out


class VectorStore:
    """A thin, typed door onto the workspace's Chroma database (opened lazily)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            try:
                if not (self.path / "chroma.sqlite3").exists():
                    # The folder was deleted under a running process: Chroma would keep
                    # serving (and failing on) the system it opened there before.
                    from chromadb.api.shared_system_client import SharedSystemClient

                    SharedSystemClient.clear_system_cache()
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(
                    path=str(self.path), settings=Settings(anonymized_telemetry=False)
                )
            except Exception as exc:
                raise WorkspaceError(
                    f"cannot open the vector store at {self.path}: {exc}",
                    "delete that folder: the next search or `segscope segment` rebuilds it from the run folder",
                ) from exc
        return self._client

    def collection(self, name: str):
        return self.client.get_or_create_collection(name, embedding_function=None, metadata=COLLECTION_METADATA)

    def _write(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
        documents: Sequence[str] | None,
        progress: ProgressFn | None,
        fresh: bool = False,
    ) -> None:
        col = self.collection(name)
        # A fresh collection needs no existence check per row: add is ~15% faster than upsert.
        write = col.add if fresh else col.upsert
        for start in range(0, len(ids), MAX_BATCH):
            end = min(start + MAX_BATCH, len(ids))
            write(
                ids=[str(i) for i in ids[start:end]],
                embeddings=np.ascontiguousarray(vectors[start:end], dtype=np.float32),
                metadatas=[_clean(m) for m in metadatas[start:end]],
                documents=None if documents is None else list(documents[start:end]),
            )
            if progress is not None:
                progress(end, len(ids))

    def sync_items(
        self,
        item_ids: Sequence[str],
        vectors: np.ndarray,
        content_hashes: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        progress: ProgressFn | None = None,
        name: str = "items",
    ) -> int:
        """Write items whose content hash changed (or that are new); returns how many were written."""
        col = self.collection(name)
        known: dict[str, str] = {}
        ids = [str(i) for i in item_ids]
        for start in range(0, len(ids), MAX_BATCH):
            got = col.get(ids=ids[start : start + MAX_BATCH], include=["metadatas"])
            for i, meta in zip(got["ids"], got["metadatas"]):
                known[i] = (meta or {}).get("content_hash", "")
        changed = [j for j, i in enumerate(ids) if known.get(i) != content_hashes[j]]
        if changed:
            metas = [{**metadatas[j], "content_hash": content_hashes[j]} for j in changed]
            self._write(name, [ids[j] for j in changed], vectors[changed], metas, None, progress)
        elif progress is not None:
            progress(len(ids), len(ids))
        return len(changed)

    def replace(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
        documents: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """Make collection ``name`` hold exactly these rows."""
        try:
            self.client.delete_collection(name)
        except Exception:  # chromadb raises a NotFound-style error when absent
            pass
        self._write(name, ids, vectors, metadatas, documents, progress, fresh=True)

    def query(
        self, name: str, vector: np.ndarray, n: int = 10, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float, dict[str, Scalar]]]:
        """Nearest rows to ``vector``: (id, cosine distance, metadata), nearest first."""
        from chromadb.errors import ChromaError

        try:
            col = self.collection(name)
            count = col.count()
            if count == 0:
                return []
            res = col.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=min(n, count),
                where=where,
                include=["metadatas", "distances"],
            )
        except ChromaError as exc:
            raise WorkspaceError(
                f"the vector store at {self.path} cannot be searched: {exc}",
                "delete that folder: the next search or `segscope segment` rebuilds it from the run folder",
            ) from exc
        return list(zip(res["ids"][0], (float(d) for d in res["distances"][0]), res["metadatas"][0]))

    def collection_names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    def count(self, name: str) -> int:
        return self.collection(name).count()
