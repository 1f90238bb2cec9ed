"""One piece of code for each job: row normalisation, number formatting, atomic writes, feature labels."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_dataset

import tools
from tools.core.linalg import normalize_rows, row_norms
from tools.core.workspace import atomic_file, atomic_folder
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.explain import wording

TOOLS = Path(tools.__file__).parent


# -- row L2-normalisation ------------------------------------------------------
def test_normalize_rows_gives_unit_rows_keeps_zero_rows_and_the_dtype():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    out = normalize_rows(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]], rtol=1e-6)
    assert x[0, 0] == 3.0, "copy=True leaves the input alone"
    normalize_rows(x, copy=False)
    assert x[0, 0] == pytest.approx(0.6)


def test_normalize_rows_passes_arrays_without_rows_or_columns():
    assert normalize_rows(np.zeros((0, 8), dtype=np.float32)).shape == (0, 8)
    assert normalize_rows(np.zeros((3, 0))).shape == (3, 0)


def test_row_norms_of_rows_a_single_vector_and_no_rows():
    np.testing.assert_allclose(row_norms(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)), [5.0, 0.0])
    np.testing.assert_allclose(row_norms(np.array([1.0, 2.0, 2.0])), [3.0])
    assert row_norms(np.zeros((0, 4))).shape == (0,)


def test_the_embedders_normalise_through_sklearn(monkeypatch):
    import sklearn.preprocessing

    calls = []
    real = sklearn.preprocessing.normalize

    def spy(x, *args, **kwargs):
        calls.append(x.shape)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(sklearn.preprocessing, "normalize", spy)
    out = HashingEmbedder(dim=16).encode(["red shoes", "blue shoes", ""])
    assert calls == [(3, 16)]
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=1), 1.0, rtol=1e-6)
    assert not out[2].any()


def test_no_stage_keeps_its_own_row_normalisation():
    """Row norms are computed in tools/core/linalg.py only (via sklearn); a private copy elsewhere drifts."""
    offenders = [
        str(path.relative_to(TOOLS))
        for path in TOOLS.rglob("*.py")
        if path.name != "linalg.py" and re.search(r"linalg\.norm\(|np\.sqrt\(\(?\w+ \*\* 2\)?\.sum\(axis=1", path.read_text())
    ]
    assert offenders == []


# -- one formatter ---------------------------------------------------------------
TRAIT = {"feature": "category_Garden", "label": "share of activity in Garden", "unit": "share",
         "segment_value": 0.62, "population_value": 0.045, "lift": 13.6, "effect": 1.0}


@pytest.mark.parametrize("lift", [13.6, 3.13, 0.047])
def test_cli_toolbox_and_tui_print_a_lift_the_way_the_wording_does(lift):
    from assistant.render import format_trait
    from assistant.toolbox import _trait_line
    from tui.detail import _traits

    trait = {**TRAIT, "lift": lift}
    shown = wording.fmt_lift(lift)
    assert f"({shown} overall)" in format_trait(trait)
    assert f", {shown} overall" in _trait_line(trait)
    assert str(_traits([trait])[1]).rstrip().endswith(shown)
    assert wording.fmt_compact(0.62, "share") in format_trait(trait) and "62%" in _trait_line(trait)


# -- one atomic-write helper -----------------------------------------------------------
def test_atomic_file_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with atomic_file(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_folder_replaces_or_merges(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    (out / "events.csv").write_text("old")
    with atomic_folder(out, merge=True) as tmp:
        (tmp / "events.csv").write_text("new")
    assert (out / "events.csv").read_text() == "new" and (out / "notes.txt").exists()
    with pytest.raises(RuntimeError):
        with atomic_folder(out, merge=True) as tmp:
            (tmp / "events.csv").write_text("newer")
            raise RuntimeError("killed")
    assert (out / "events.csv").read_text() == "new"
    with atomic_folder(out) as tmp:  # without merge, the folder is replaced whole
        (tmp / "items.csv").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["items.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "no temp folder is left"


def test_a_failed_sample_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from tools.data.sample import generate_sample

    out = tmp_path / "shop"
    generate_sample(out, n_users=50, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written = []

    def to_csv(self, path, *args, **kwargs):
        if written:
            raise OSError("disk full")
        written.append(path)
        Path(path).write_text("partial")

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    with pytest.raises(OSError):
        generate_sample(out, n_users=60, seed=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]


def test_the_cache_removes_temp_files_a_killed_save_left(tmp_path):
    cache = EmbeddingCache(tmp_path, "hashing-8")
    cache.embed(["one", "two"], HashingEmbedder(dim=8))
    cache.save()
    # What a save killed mid-write leaves: atomic_file's temp name beside the cache file,
    # and the name older versions used.
    fd, leftover = tempfile.mkstemp(dir=tmp_path, prefix=f".{cache.path.name}.", suffix=".tmp")
    os.write(fd, b"half a cache")
    os.close(fd)
    (tmp_path / "tmpab12cd.npz.tmp").write_bytes(b"older half")
    (tmp_path / "notes.tmp").write_text("not ours")

    reopened = EmbeddingCache(tmp_path, "hashing-8")
    assert reopened.removed_temp_files == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cache.path.name, "notes.tmp"])
    assert len(reopened) == 2 and not Path(leftover).exists()


# -- feature labels defined once ---------------------------------------------------------
def test_feature_labels_come_from_one_table(tmp_path, monkeypatch):
    from tools.core.run_state import RunState
    from tools.explain.describe import _feature_meta
    from tools.segment import features
    from tools.segment.features import FEATURE_LABELS, compute_features, feature_label

    data, _ = make_dataset(tmp_path)
    specs = compute_features(data, np.asarray(pd.unique(data.events["user_id"]))).specs
    assert all((s.label, s.unit) == feature_label(s.name) for s in specs)
    assert {"frequency", "recency_days"} <= {s.name for s in specs}

    monkeypatch.setitem(FEATURE_LABELS, "frequency", ("activity count", "count"))
    relabelled = {s.name: s.label for s in features.compute_features(data, np.asarray(pd.unique(data.events["user_id"]))).specs}
    assert relabelled["frequency"] == "activity count"

    # describe names a feature the run's traits do not mention from the same table
    run = RunState.__new__(RunState)
    object.__setattr__(run, "summary", {"segments": [{"traits": []}]})
    meta = _feature_meta(run)
    assert meta("frequency") == ("activity count", "count")
    assert meta("category_Garden") == ("share of activity in Garden", "share")
