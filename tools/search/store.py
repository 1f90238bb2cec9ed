"""The Chroma vector store of a workspace: items, users and segments.

The store is the workspace's embedded folder (``chromadb.PersistentClient``, the
default) or a Chroma server (``chromadb.HttpClient``, in the workspace's own
database there); :class:`tools.search.locator.StoreSpec` says which, and every
method behaves the same on both. Embeddings are always supplied by segscope
(Chroma is never asked to embed, so it never tries to download a model). Items
are keyed by item id with the text's content hash in their metadata: an
unchanged item is not written again. Users and segments are replaced per run,
since their vectors and segment ids change.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tools.core.errors import StoreError, WorkspaceError
from tools.search.locator import StoreSpec, check_reachable, unreachable

MAX_BATCH = 5000  # Chroma refuses batches above 5461 (a server says its own limit: the smaller one is used)
# chromadb's HTTP client never times out: a server that hangs would hang segscope with it.
SERVER_TIMEOUT_S = 120.0
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


def _server_errors(method):
    """A server that goes away mid-way (refused, reset, timed out) becomes one StoreError naming it."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if not self.spec.is_server:
            return method(self, *args, **kwargs)
        import httpx

        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as exc:
            raise _gone(self.spec, exc) from None

    return guarded


def _gone(spec: StoreSpec, exc: Exception) -> StoreError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return unreachable(spec, f"no answer within {SERVER_TIMEOUT_S:g} s")
    return unreachable(spec, f"{type(exc).__name__}: {exc}")


def _bound_requests(client) -> None:
    """Give a chromadb HTTP client's requests a timeout (it sets none: a hung server would hang segscope with it)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(SERVER_TIMEOUT_S, connect=min(10.0, SERVER_TIMEOUT_S))


class VectorStore:
    """A thin, typed door onto a workspace's Chroma database (opened lazily): a folder path or a StoreSpec."""

    def __init__(self, where: StoreSpec | str | Path) -> None:
        self.spec = where if isinstance(where, StoreSpec) else StoreSpec.embedded(where)
        self._client = None
        self._max_batch = MAX_BATCH

    @property
    def path(self) -> Path | None:
        """The embedded store's folder (None on a server)."""
        return self.spec.path

    def describe(self) -> str:
        return self.spec.describe()

    def repair_hint(self) -> str:
        if self.spec.is_server:
            return f"segment again (the run's collections are rewritten into database {self.spec.database}), or with --chroma-url local"
        return f"delete {self.path}: the next search or `segscope segment` rebuilds it from the run folder"

    def check_reachable(self) -> None:
        """Fail with one line now, before anything is written, when the server does not answer (embedded: a no-op)."""
        check_reachable(self.spec)

    @property
    def client(self):
        if self._client is not None and self.path is not None and not (self.path / "chroma.sqlite3").exists():
            self._client = None  # the folder was deleted under this process: open it afresh
        if self._client is None:
            self._client = self._open_server() if self.spec.is_server else self._open_embedded()
        return self._client

    def _open_embedded(self):
        import chromadb
        from chromadb.config import Settings

        assert self.path is not None
        try:
            if not (self.path / "chroma.sqlite3").exists():
                # The folder was deleted under a running process: Chroma would keep
                # serving (and failing on) the system it opened there before.
                from chromadb.api.shared_system_client import SharedSystemClient

                SharedSystemClient.clear_system_cache()
            self.path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self.path), settings=Settings(anonymized_telemetry=False))
        except Exception as exc:
            raise WorkspaceError(
                f"cannot open the vector store at {self.path}: {exc}",
                "delete that folder: the next search or `segscope segment` rebuilds it from the run folder",
            ) from exc

    def _server_settings(self):
        from chromadb.config import Settings

        # What chromadb.HttpClient sets for this server; the admin client (databases) needs them spelled out.
        return Settings(
            anonymized_telemetry=False,
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=self.spec.host,
            chroma_server_http_port=self.spec.port,
            chroma_server_ssl_enabled=self.spec.ssl,
            chroma_server_headers=None,
        )

    def _open_server(self):
        import chromadb
        import httpx
        from chromadb.errors import ChromaError, NotFoundError

        check_reachable(self.spec)
        database = str(self.spec.database)
        try:
            admin = chromadb.AdminClient(self._server_settings())
            _bound_requests(admin)
            try:
                admin.get_database(database)
            except NotFoundError:
                try:
                    admin.create_database(database)
                except ChromaError:  # another process created it first
                    admin.get_database(database)
            client = chromadb.HttpClient(
                host=self.spec.host, port=self.spec.port, ssl=self.spec.ssl, database=database, settings=self._server_settings()
            )
        except httpx.TransportError as exc:
            raise _gone(self.spec, exc) from None
        except (ChromaError, ValueError) as exc:
            if "could not connect" in str(exc).lower():  # it went away right after answering the heartbeat
                raise unreachable(self.spec, "the connection failed") from None
            raise StoreError(f"{self.describe()} refused to open: {exc}", "check the server's log; `chroma run` 1.x is what segscope speaks to") from exc
        _bound_requests(client)
        self._max_batch = min(MAX_BATCH, int(client.get_max_batch_size()))
        return client

    @_server_errors
    def collection(self, name: str):
        return self.client.get_or_create_collection(name, embedding_function=None, metadata=COLLECTION_METADATA)

    @_server_errors
    def delete(self, name: str) -> None:
        """Drop collection ``name`` when it exists."""
        if name in self.collection_names():
            self.client.delete_collection(name)

    def discard(self) -> None:
        """Remove everything this store holds for the workspace: the embedded folder, or the workspace's server database."""
        if not self.spec.is_server:
            from chromadb.api.shared_system_client import SharedSystemClient

            self._client = None
            if self.path is not None and self.path.exists():
                shutil.rmtree(self.path, ignore_errors=True)
                SharedSystemClient.clear_system_cache()  # the process must not keep serving the deleted folder
            return
        self._discard_database()

    @_server_errors
    def _discard_database(self) -> None:
        import chromadb
        from chromadb.errors import NotFoundError

        check_reachable(self.spec)
        admin = chromadb.AdminClient(self._server_settings())
        _bound_requests(admin)
        try:
            admin.delete_database(str(self.spec.database))
        except NotFoundError:
            pass
        self._client = None

    @_server_errors
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
        batch = self._max_batch
        for start in range(0, len(ids), batch):
            end = min(start + batch, len(ids))
            write(
                ids=[str(i) for i in ids[start:end]],
                embeddings=np.ascontiguousarray(vectors[start:end], dtype=np.float32),
                metadatas=[_clean(m) for m in metadatas[start:end]],
                documents=None if documents is None else list(documents[start:end]),
            )
            if progress is not None:
                progress(end, len(ids))

    @_server_errors
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
        for start in range(0, len(ids), self._max_batch):
            got = col.get(ids=ids[start : start + self._max_batch], include=["metadatas"])
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
        self.delete(name)
        self._write(name, ids, vectors, metadatas, documents, progress, fresh=True)

    @_server_errors
    def create(self, name: str) -> None:
        """Collection ``name``, empty when it is new (``replace`` then ``append`` write one in parts)."""
        self.collection(name)

    @_server_errors
    def append(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
        progress: ProgressFn | None = None,
    ) -> None:
        """Add rows whose ids collection ``name`` does not hold yet (a collection written a part at a time)."""
        self._write(name, ids, vectors, metadatas, None, progress, fresh=True)

    @_server_errors
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
                f"{self.describe()} cannot be searched: {exc}",
                self.repair_hint(),
            ) from exc
        return list(zip(res["ids"][0], (float(d) for d in res["distances"][0]), res["metadatas"][0]))

    @_server_errors
    def collection_names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    @_server_errors
    def count(self, name: str) -> int:
        return self.collection(name).count()
