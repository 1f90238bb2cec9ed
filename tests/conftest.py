"""Shared fixtures: every test runs with its own empty home, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the ONNX export of the bundled model, shared by the session's tests (built once, not per test)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    """Point all user state (config, data, caches, segscope's own home) at a temp dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SEGSCOPE_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("SEGSCOPE_HOME", ".segscope"),
    ):
        path = home / sub
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    # Nothing in the test suite may reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared datasets folder (MovieLens, banking77); skips the test when it is absent.

    Session-scoped so module-scoped fixtures can build on it; it only reads the path.
    """
    override = os.environ.get("SEGSCOPE_SHARED_DATA")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set SEGSCOPE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory):
    """A Chroma server on loopback: CI's (``SEGSCOPE_TEST_CHROMA_URL``, from .ci/run), else one started here and killed after.

    A given URL that does not answer is a failure. Without the `chroma` CLI the tests
    skip, except under ``CI=true``, where that is a failure too.
    """
    from tests.chroma_server import ChromaServer, answers, chroma_binary

    given = os.environ.get("SEGSCOPE_TEST_CHROMA_URL")
    if given:
        if not answers(given, timeout=10):
            pytest.fail(f"SEGSCOPE_TEST_CHROMA_URL={given} does not answer a Chroma heartbeat")
        yield given
        return
    binary = chroma_binary()
    if binary is None:
        reason = "no `chroma` CLI beside this Python or on PATH (it comes with the chromadb package)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Chroma server tests: {reason}")
        pytest.skip(reason)
    server = ChromaServer(binary, tmp_path_factory.mktemp("chroma-server"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def router_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample workspace (3,000 users, seed 7, like `make run`; the fast hashing embedder for the run), built once for the router tests."""
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.embed.embedding import HashingEmbedder
    from tools.pipeline import RunParams, segment_dataset

    root = tmp_path_factory.mktemp("router-shop")
    generate_sample(root / "data", seed=7)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(seed=7, embedder="hashing-64"), embedder=HashingEmbedder())
    return root / "ws"


@pytest.fixture(scope="session")
def minilm_embedder():
    from tools.embed.embedding import make_embedder

    return make_embedder("minilm")


@pytest.fixture(scope="session")
def router_harness(router_shop: Path, minilm_embedder):
    """The routing benchmark's harness (the router of a session, with MiniLM intents) over the sample workspace."""
    from bench.routing import Harness

    return Harness(router_shop, minilm_embedder)
