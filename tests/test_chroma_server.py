"""A Chroma server as the vector store (`--chroma-url`): the sample through the embedded store and through the
server gives the same answers; run-named collections, a killed run's tidy-up and moving between stores work the
same there; an unreachable server is one line, exit 2, and the workspace as it was.

The server is CI's (``SEGSCOPE_TEST_CHROMA_URL``, started by .ci/run) or one the ``chroma_url`` fixture starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.jobs import Cancelled, run_segment_job
from assistant.service import WorkspaceService
from assistant.toolbox import Toolbox
from tests.chroma_server import ChromaServer, chroma_binary, free_port
from tools.core.errors import ParameterError, StoreError
from tools.core.workspace import Workspace
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.search import locator, store as store_module
from tools.search.locator import StoreSpec, choose_store, parse_chroma_url, recorded_store
from tools.search.store import VectorStore

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "segscope"
PARAMS = RunParams(seed=5, embedder="hashing-64")
QUERIES = ("users who love gardening", "watch collectors who buy chronographs", "horror movie fans")


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def _toolbox(ws: Path, **settings) -> Toolbox:
    return Toolbox(WorkspaceService(ws, load_settings(embedder="hashing-64", **settings), embedder=HashingEmbedder()))


def _collections(spec: StoreSpec) -> dict[str, int]:
    store = VectorStore(spec)
    return {name: store.count(name) for name in sorted(store.collection_names())}


def _databases(url: str) -> set[str]:
    import chromadb

    admin = chromadb.AdminClient(VectorStore(StoreSpec.server(url, "x"))._server_settings())
    return {d["name"] for d in admin.list_databases()}


def _same_answers(a: list[dict], b: list[dict], key: str = "user_id") -> None:
    """Both stores hold the same vectors and metadata, but Chroma's HNSW index is approximate and is not
    built the same way twice (two builds of the embedded store also differ now and then): so most of the
    answers are the same users, every user both return has the same similarity and segment in both,
    and each list is ranked by similarity."""
    assert len(a) == len(b)
    ids_a, ids_b = {u[key] for u in a}, {u[key] for u in b}
    assert len(ids_a & ids_b) >= 0.8 * len(a), (a, b)
    by_b = {u[key]: u for u in b}
    for x in a:
        y = by_b.get(x[key])
        if y is not None:
            assert x["similarity"] == y["similarity"] and x.get("segment_id") == y.get("segment_id"), (x, y)
    for answer in (a, b):
        sims = [u["similarity"] for u in answer]
        assert sims == sorted(sims, reverse=True)


def _files(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted(ws.rglob("*")) if p.is_file() and p.name != "lock"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chroma-data") / "data"
    generate_sample(root, n_users=400, seed=5)
    return root


@pytest.fixture(scope="module")
def embedded_ws(data, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("embedded") / "ws"
    segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder())
    return ws


@pytest.fixture(scope="module")
def server_ws(data, chroma_url, tmp_path_factory) -> Path:
    """The sample segmented through the real CLI with --chroma-url."""
    ws = tmp_path_factory.mktemp("server") / "ws"
    done = _cli("segment", "--data", str(data), "--workspace", str(ws), "--embedder", "hashing-64", "--seed", "5", "--chroma-url", chroma_url)
    assert done.returncode == 0, done.stderr
    assert "vectors on the Chroma server at" in done.stdout
    return ws


# -- the same answers through both stores ------------------------------------------------------


def test_the_sample_through_the_server_gives_the_same_run_and_search_answers(embedded_ws, server_ws, chroma_url):
    local, remote = json.loads((embedded_ws / "segments.json").read_text()), json.loads((server_ws / "segments.json").read_text())
    assert remote == local, "the store changes nothing about the segmentation"
    record = Workspace(server_ws).store_record()
    assert record is not None and record["store"] == "chroma-server" and record["url"] == parse_chroma_url(chroma_url)
    assert not Workspace(server_ws).chroma_dir.exists(), "nothing went to an embedded store"
    spec = recorded_store(server_ws)
    key, fingerprint = remote["run_key"], remote["data"]["fingerprint"]
    assert _collections(spec) == _collections(StoreSpec.embedded(Workspace(embedded_ws).chroma_dir))
    assert set(_collections(spec)) == {f"users-{key}", f"segments-{key}", f"items-{fingerprint[:24]}"}

    near, far = _toolbox(embedded_ws), _toolbox(server_ws)
    for query in QUERIES:
        a, b = near.find_users(query, n=10).artifact, far.find_users(query, n=10).artifact
        assert b["notice"] is None, "the server's collections answered, nothing was rebuilt"
        _same_answers(a["users"], b["users"])
        assert len(b["users"]) == 10
    filtered = far.find_users("users who love gardening", segment_id=0, active_within_days=60, n=10).artifact
    _same_answers(near.find_users("users who love gardening", segment_id=0, active_within_days=60, n=10).artifact["users"], filtered["users"])
    assert all(u["segment_id"] == 0 and u["recency_days"] <= 60 for u in filtered["users"])
    _same_answers(near.find_items("garden tools", n=5).artifact["items"], far.find_items("garden tools", n=5).artifact["items"], key="item_id")
    assert not Workspace(server_ws).chroma_dir.exists()


def test_ask_find_users_answers_from_the_servers_collections(embedded_ws, server_ws):
    done = _cli("ask", "--workspace", str(server_ws), "find users who love gardening", "--json")
    assert done.returncode == 0, done.stderr
    calls = [c for c in json.loads(done.stdout)["tool_calls"] if c["name"] == "find_users"]
    assert calls and calls[0]["ok"], done.stdout
    users = calls[0]["result"]["users"]
    expected = _toolbox(embedded_ws).find_users(calls[0]["args"]["description"], n=len(users)).artifact["users"]
    _same_answers(expected, users)
    assert len(users) == 10
    assert not Workspace(server_ws).chroma_dir.exists(), "ask read the server: it opened no embedded store"


# -- run-named collections, cached runs, killed runs ---------------------------------------------


def test_only_the_live_runs_collections_stay_in_the_workspaces_database(data, tmp_path, chroma_url):
    ws = tmp_path / "ws"
    spec = choose_store(ws, chroma_url)
    first = segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder(), store=spec)
    fp = first.summary["data"]["fingerprint"][:24]
    as_first = _collections(spec)
    assert as_first[f"users-{first.key}"] == first.summary["data"]["n_users"] and as_first[f"items-{fp}"] > 0
    second = segment_dataset(load_dataset(data), ws, RunParams(k=4, seed=5, embedder="hashing-64"), embedder=HashingEmbedder())
    assert recorded_store(ws) == spec, "with no --chroma-url a run keeps to the store the workspace uses"
    assert set(_collections(spec)) == {f"users-{second.key}", f"segments-{second.key}", f"items-{fp}"}
    back = segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder())  # the first run, from its folder
    assert back.cached and back.key == first.key
    assert _collections(spec) == as_first, "its collections are rebuilt in the server from the run folder"
    # Another workspace on the same server has a database of its own: neither touches the other's collections.
    other = tmp_path / "other"
    other_spec = choose_store(other, chroma_url)
    segment_dataset(load_dataset(data), other, RunParams(k=3, seed=5, embedder="hashing-64"), embedder=HashingEmbedder(), store=other_spec)
    assert other_spec.database != spec.database
    assert f"users-{first.key}" in _collections(spec), "the other workspace's run left this one's collections alone"


def test_a_job_killed_while_storing_on_the_server_leaves_the_workspace_and_database_as_they_were(data, tmp_path, chroma_url):
    ws = tmp_path / "ws"
    spec = choose_store(ws, chroma_url)
    first = segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder(), store=spec)
    files, vectors = _files(ws), _collections(spec)
    assert f"users-{first.key}" in vectors

    stop = threading.Event()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "storing users":
            stop.set()

    with pytest.raises(Cancelled):
        run_segment_job(data, ws, RunParams(k=4, seed=9, embedder="hashing-64").as_dict(), progress, stop.is_set, store=choose_store(ws, None).record())
    assert _files(ws) == files and _collections(spec) == vectors, "files and the server's collections are the previous run's"


def test_a_killed_first_run_on_a_server_leaves_no_workspace_and_no_database(data, tmp_path, chroma_url):
    ws = tmp_path / "fresh"
    spec = choose_store(ws, chroma_url)
    stop = threading.Event()
    with pytest.raises(Cancelled):
        run_segment_job(data, ws, PARAMS.as_dict(), lambda stage, d, t: stop.set() if stage == "storing users" else None, stop.is_set,
                        store=spec.record())  # fmt: skip
    assert not ws.exists()
    assert spec.database not in _databases(chroma_url)


def test_a_killed_move_to_a_server_keeps_the_embedded_run_and_drops_the_new_database(data, tmp_path, chroma_url):
    ws = tmp_path / "ws"
    segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder())
    files = _files(ws)  # the embedded Chroma folder included, byte for byte
    spec = choose_store(ws, chroma_url)
    stop = threading.Event()
    with pytest.raises(Cancelled):
        run_segment_job(data, ws, RunParams(k=4, seed=9, embedder="hashing-64").as_dict(),
                        lambda stage, d, t: stop.set() if stage == "storing users" else None, stop.is_set, store=spec.record())  # fmt: skip
    assert recorded_store(ws) == StoreSpec.embedded(Workspace(ws).chroma_dir)
    assert spec.database not in _databases(chroma_url)
    assert _files(ws) == files


# -- moving between stores, from the assistant too --------------------------------------------------


def test_the_assistant_segments_into_the_configured_server_and_local_moves_the_vectors_back(data, tmp_path, chroma_url):
    ws = tmp_path / "ws"
    toolbox = Toolbox(WorkspaceService(ws, load_settings(embedder="hashing-64", chroma_url=chroma_url)), data_path=data)
    toolbox.segment_users(seed=5)  # in a child process (assistant.jobs), as the TUI does
    spec = recorded_store(ws)
    assert spec.is_server and spec.url == parse_chroma_url(chroma_url) and not Workspace(ws).chroma_dir.exists()
    on_server = toolbox.find_users("users who love gardening").artifact
    assert on_server["notice"] is None and len(on_server["users"]) == 10

    back = segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder(), store=choose_store(ws, "local"))
    assert back.cached and back.notices == ()
    assert recorded_store(ws) == StoreSpec.embedded(Workspace(ws).chroma_dir)
    assert spec.database not in _databases(chroma_url), "the database the workspace left is dropped"
    here = toolbox.find_users("users who love gardening").artifact  # the same service: it follows the record
    assert here["notice"] is None and here["users"] == on_server["users"]


# -- bad input: a server that is not there, or goes away -------------------------------------------


def _closed_port() -> int:
    return free_port()  # bound and released at once: nothing listens there


def test_an_unreachable_chroma_url_is_one_line_exit_2_and_writes_nothing(data, embedded_ws, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    fresh = tmp_path / "fresh"
    done = _cli("segment", "--data", str(data), "--workspace", str(fresh), "--embedder", "hashing-64", "--chroma-url", url)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and url in line and "chroma run --path" in line and f"--port {url.rsplit(':', 1)[1]}" in line, line
    assert "pip install -e '.[cluster]'" in line, "the hint is printed as written, not eaten as console markup"
    assert not fresh.exists()

    before = _files(embedded_ws)
    done = _cli("segment", "--data", str(data), "--workspace", str(embedded_ws), "--embedder", "hashing-64", "--k", "3", "--chroma-url", url)
    assert done.returncode == 2 and url in done.stderr
    assert _files(embedded_ws) == before, "the workspace is exactly as it was"

    done = _cli("segment", "--data", str(data), "--workspace", str(fresh), "--chroma-url", "ftp://nowhere")
    assert done.returncode == 2 and "--chroma-url must look like http://HOST:PORT" in done.stderr and "\n" not in done.stderr.strip()
    assert not fresh.exists()


def test_a_server_that_went_away_is_one_line_for_searches_and_new_runs(data, tmp_path):
    binary = chroma_binary()
    if binary is None:
        pytest.skip("no `chroma` CLI") if os.environ.get("CI") != "true" else pytest.fail("CI must have the `chroma` CLI")
    server = ChromaServer(binary, tmp_path / "server")
    ws = tmp_path / "ws"
    try:
        segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder(), store=choose_store(ws, server.url))
        toolbox = _toolbox(ws)
        assert len(toolbox.find_users("users who love gardening").artifact["users"]) == 10
    finally:
        server.stop()
    with pytest.raises(StoreError) as gone:
        toolbox.find_users("users who love gardening")  # the open client's next request
    line = gone.value.one_line()
    assert "\n" not in line and server.url in line and f"chroma run --path DIR --port {server.port}" in line, line
    with pytest.raises(StoreError):
        _toolbox(ws).find_users("users who love gardening")  # a fresh process: the probe says it
    done = _cli("ask", "--workspace", str(ws), "find users who love gardening")
    assert done.returncode == 2 and server.url in done.stderr and "chroma run --path" in done.stderr
    before = _files(ws)
    with pytest.raises(StoreError):  # a new run on the recorded server
        segment_dataset(load_dataset(data), ws, RunParams(k=3, seed=5, embedder="hashing-64"), embedder=HashingEmbedder())
    assert _files(ws) == before
    # The way out the line names: the same run, its vectors rebuilt into the workspace; the lost server is said.
    moved = segment_dataset(load_dataset(data), ws, PARAMS, embedder=HashingEmbedder(), store=choose_store(ws, "local"))
    assert moved.cached and len(moved.notices) == 1 and server.url in moved.notices[0] and "stay on" in moved.notices[0]
    found = _toolbox(ws).find_users("users who love gardening").artifact
    assert found["notice"] is None and len(found["users"]) == 10


def test_a_server_that_accepts_but_never_answers_fails_within_the_timeouts(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts connections; nobody ever reads or answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setattr(locator, "PROBE_TIMEOUT_S", 0.5)
    try:
        with pytest.raises(StoreError) as silent:
            VectorStore(StoreSpec.server(url, "segscope-test")).collection_names()
        assert "no answer within 0.5 s" in silent.value.one_line()
    finally:
        listener.close()


def test_a_server_that_answers_its_heartbeat_then_hangs_fails_within_the_request_timeout(monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Hanging(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.endswith("/heartbeat"):
                body = b'{"nanosecond heartbeat": 1}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            release.wait(30)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(store_module, "SERVER_TIMEOUT_S", 1.0)
    try:
        with pytest.raises(StoreError) as hung:
            VectorStore(StoreSpec.server(f"http://127.0.0.1:{server.server_port}", "segscope-test")).collection_names()
        assert "no answer within 1 s" in hung.value.one_line()
    finally:
        release.set()
        server.shutdown()


# -- the setting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("http://127.0.0.1:8000", "http://127.0.0.1:8000"), ("http://LocalHost:9000/", "http://localhost:9000"),
     ("https://chroma.example.com", "https://chroma.example.com:8000"), ("http://[::1]:8001", "http://[::1]:8001")],
)  # fmt: skip
def test_chroma_urls_are_read_in_one_spelling(given, canonical):
    assert parse_chroma_url(given) == canonical


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://host:1", "http://host:notaport", "http://host:8000/api", "http://", "http://u:p@host:1"])
def test_a_malformed_chroma_url_is_one_line(bad):
    with pytest.raises(ParameterError) as err:
        parse_chroma_url(bad)
    assert "\n" not in err.value.one_line() and "http://HOST:PORT" in err.value.one_line()


def test_the_setting_comes_from_flags_env_and_the_config_file(tmp_path, monkeypatch):
    assert load_settings().chroma_url is None
    config = tmp_path / "config.toml"
    config.write_text('chroma_url = "http://127.0.0.1:7001"\n')
    monkeypatch.setenv("SEGSCOPE_CONFIG", str(config))
    assert load_settings().chroma_url == "http://127.0.0.1:7001"
    monkeypatch.setenv("SEGSCOPE_CHROMA_URL", "http://127.0.0.1:7002")
    assert load_settings().chroma_url == "http://127.0.0.1:7002"
    assert load_settings(chroma_url="LOCAL").chroma_url == "local"
    with pytest.raises(ParameterError):
        load_settings(chroma_url="nowhere")


def test_choose_store_keeps_the_workspaces_database_for_its_server_and_writes_nothing(tmp_path):
    ws = tmp_path / "ws"
    assert choose_store(ws, None) == StoreSpec.embedded(Workspace(ws).chroma_dir)
    first = choose_store(ws, "http://127.0.0.1:7003")
    assert first.is_server and first.database.startswith("segscope-") and not ws.exists()
    Workspace(ws).state.mkdir(parents=True)
    Workspace(ws).store_json.write_text(json.dumps(first.record()))
    assert choose_store(ws, None) == first == choose_store(ws, "http://127.0.0.1:7003/")
    assert choose_store(ws, "http://127.0.0.1:7004").database != first.database
    assert choose_store(ws, "local") == StoreSpec.embedded(Workspace(ws).chroma_dir)
