"""Where a workspace's vectors live: its embedded Chroma folder, or a Chroma server.

A :class:`StoreSpec` names one of the two. On a server every workspace writes
into a database of its own (named when it first writes there, and recorded in
``.segscope/store.json`` when its run is published), so two workspaces on one
server never see each other's run-named collections, and dropping one's stale
collections never touches another's. Searches read the record: they go to the
store the live run was written to, whatever the settings say now.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tools.core.errors import ParameterError, StoreError
from tools.core.workspace import Workspace

LOCAL = "local"  # --chroma-url local: the workspace's embedded store
DEFAULT_PORT = 8000  # what `chroma run` listens on when given no --port
PROBE_TIMEOUT_S = 5.0  # a server that does not answer its heartbeat within this is unreachable
INSTALL_HINT = "`.venv/bin/pip install -e '.[cluster]'` installs it into the project's .venv"


@dataclass(frozen=True)
class StoreSpec:
    """The embedded store at ``path``, or the Chroma server at ``url`` (its ``database`` holds this workspace)."""

    path: Path | None = None
    url: str | None = None
    database: str | None = None

    @classmethod
    def embedded(cls, path: str | Path) -> StoreSpec:
        return cls(path=Path(path))

    @classmethod
    def server(cls, url: str, database: str) -> StoreSpec:
        return cls(url=parse_chroma_url(url), database=database)

    @property
    def is_server(self) -> bool:
        return self.url is not None

    @property
    def host(self) -> str:
        return urlsplit(self.url or "").hostname or "localhost"

    @property
    def port(self) -> int:
        return urlsplit(self.url or "").port or DEFAULT_PORT

    @property
    def ssl(self) -> bool:
        return urlsplit(self.url or "").scheme == "https"

    def describe(self) -> str:
        return f"the Chroma server at {self.url} (database {self.database})" if self.is_server else f"the vector store at {self.path}"

    def record(self) -> dict:
        """What ``.segscope/store.json`` keeps, so later commands open the same store."""
        if self.is_server:
            return {"store": "chroma-server", "url": self.url, "database": self.database}
        return {"store": "embedded"}

    @classmethod
    def from_record(cls, record: dict | None, workspace: str | Path) -> StoreSpec:
        ws = Workspace(workspace)
        if not record or record.get("store") == "embedded":
            return cls.embedded(ws.chroma_dir)
        url, database = record.get("url"), record.get("database")
        if record.get("store") != "chroma-server" or not isinstance(url, str) or not isinstance(database, str) or not database:
            raise StoreError(f"{ws.store_json} names no store segscope knows: {record}", "delete it: the next `segscope segment` records the store again")
        return cls.server(url, database)


def parse_chroma_url(text: str) -> str:
    """``http://HOST:PORT`` (or https) in one canonical spelling; ParameterError for anything else."""
    raw = str(text).strip()
    parts = urlsplit(raw)
    usage = f"--chroma-url must look like http://HOST:PORT (or `{LOCAL}` for the workspace's embedded store), got {raw!r}"
    try:
        port = parts.port
    except ValueError:
        raise ParameterError(usage, "e.g. --chroma-url http://127.0.0.1:8000") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ParameterError(usage, "e.g. --chroma-url http://127.0.0.1:8000")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or DEFAULT_PORT}"


def start_hint(spec: StoreSpec) -> str:
    return (
        f"start it with `chroma run --path DIR --port {spec.port}` (DIR: the folder the server keeps its data in; {INSTALL_HINT}), "
        f"or segment with --chroma-url {LOCAL} to keep the vectors in the workspace"
    )


def unreachable(spec: StoreSpec, why: str) -> StoreError:
    return StoreError(f"cannot reach the Chroma server at {spec.url} ({why})", start_hint(spec))


def check_reachable(spec: StoreSpec, timeout: float | None = None) -> None:
    """Raise a one-line StoreError unless ``spec``'s server answers its heartbeat; an embedded store always passes.

    A plain HTTP request with its own timeout: chromadb's client waits forever on a
    server that accepts the connection and never answers, and words a refused one vaguely.
    """
    if not spec.is_server:
        return
    try:
        with urllib.request.urlopen(f"{spec.url}/api/v2/heartbeat", timeout=timeout or PROBE_TIMEOUT_S) as response:
            body = response.read(4096)
    except urllib.error.HTTPError as exc:
        raise unreachable(spec, f"it answers HTTP {exc.code}: it is not a Chroma server, or not version 1.x") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            why = f"no answer within {timeout or PROBE_TIMEOUT_S:g} s"
        elif isinstance(reason, ConnectionRefusedError):
            why = "connection refused: nothing listens on that port"
        else:
            why = str(getattr(reason, "strerror", None) or reason)
        raise unreachable(spec, why) from None
    if b"heartbeat" not in body:
        raise unreachable(spec, "it answers, but not as a Chroma server")


def new_database_name() -> str:
    return f"segscope-{secrets.token_hex(8)}"


def recorded_store(workspace: str | Path) -> StoreSpec:
    """The store the workspace's live run was written to (its embedded folder when nothing is recorded)."""
    return StoreSpec.from_record(Workspace(workspace).store_record(), workspace)


def choose_store(workspace: str | Path, chroma_url: str | None) -> StoreSpec:
    """The store a new run writes to: the one asked for (``local`` or a URL), else the one on record, else the embedded one.

    Reads the workspace, writes nothing: a server URL the workspace already uses keeps its database.
    """
    ws = Workspace(workspace)
    if chroma_url is not None and chroma_url.strip().lower() == LOCAL:
        return StoreSpec.embedded(ws.chroma_dir)
    current = recorded_store(ws.root)
    if chroma_url is None or not chroma_url.strip():
        return current
    url = parse_chroma_url(chroma_url)
    if current.is_server and current.url == url:
        return current
    return StoreSpec.server(url, new_database_name())
