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
