"""Profiles kept as part files (tools/segment/parts.py): read back, they are the profiles built in one process.

The parts are written here from profiles built locally, split the way the Ray engine splits users (a hash
of the id, each part in the order its users first appear); tests/test_ray_engine.py runs the engine itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.segment.parts import ProfileParts, fused_rows, part_path, write_part
from tools.segment.profiles import build_profiles

N_PARTS = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    generate_sample(root / "data", n_users=300, seed=3)
    data = load_dataset(root / "data")
    embedder = HashingEmbedder()
    profiles = build_profiles(data, embedder, EmbeddingCache(root / "cache", embedder.name))
    return root, profiles


def _split(root, profiles, name: str = "split") -> ProfileParts:
    folder = root / name
    folder.mkdir()
    part = pd.util.hash_pandas_object(pd.Series(profiles.user_ids, dtype=object), index=False).to_numpy() % N_PARTS
    rows_of = []
    for number in range(N_PARTS):
        rows = np.flatnonzero(part == number)
        write_part(folder, number, profiles.user_ids[rows], profiles.text[rows], profiles.features.raw[rows])
        rows_of.append(rows)
    return ProfileParts(folder, tuple(range(N_PARTS)), tuple(rows_of), profiles.user_ids, tuple(profiles.features.specs),
                        profiles.features.currency, profiles.alpha, profiles.item_ids, profiles.item_vectors,
                        profiles.n_texts_embedded, profiles.n_texts_total, profiles.text_source, profiles.recipe)


def test_rows_read_back_from_the_parts_are_the_profiles_built_in_one_process(built):
    root, profiles = built
    parts = _split(root, profiles)
    chosen = np.random.default_rng(0).random(len(profiles.user_ids)) < 0.4
    got = parts.rows(chosen)
    assert list(got.user_ids) == list(profiles.user_ids[chosen])
    np.testing.assert_array_equal(got.text, profiles.text[chosen])
    np.testing.assert_array_equal(got.features.raw, profiles.features.raw[chosen])
    np.testing.assert_array_equal(got.features.scaled, profiles.features.scaled[chosen])
    np.testing.assert_array_equal(got.fused, profiles.fused[chosen])  # the recipe applied to the rows: the same bits
    np.testing.assert_array_equal(fused_rows(parts, chosen), fused_rows(profiles, chosen))
    one = parts.part(2)
    np.testing.assert_array_equal(one.fused, profiles.fused[parts.rows_of[2]])


def test_profiles_npz_streamed_from_the_parts_is_the_one_written_in_one_process(built):
    root, profiles = built
    parts = _split(root, profiles, "npz")
    fixed = {"user_ids": profiles.user_ids.astype(str), "labels": np.arange(len(profiles.user_ids)) % 3,
             "feature_names": np.asarray(profiles.feature_names, dtype=str), "item_vectors": profiles.item_vectors}
    streamed = {"text": None, "fused": None, "feature_raw": None}
    parts.save_npz(root / "parts.npz", fixed | streamed, block_rows=64)  # several blocks, each a slice of every part
    np.savez(root / "whole.npz", **fixed, text=profiles.text, fused=profiles.fused, feature_raw=profiles.features.raw)
    a, b = np.load(root / "whole.npz"), np.load(root / "parts.npz")
    assert set(a.files) == set(b.files)
    for name in a.files:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_part_that_does_not_hold_its_users_is_refused(built):
    root, profiles = built
    parts = _split(root, profiles, "wrong")
    rows = parts.rows_of[1]
    write_part(parts.folder, 1, profiles.user_ids[rows][::-1], profiles.text[rows], profiles.features.raw[rows])
    with pytest.raises(RuntimeError, match="does not hold the users"):
        parts.part(1)
    with pytest.raises(RuntimeError, match="not in the order"):
        ProfileParts(parts.folder, parts.parts, (parts.rows_of[0][::-1], *parts.rows_of[1:]), *_rest(parts))


def test_discard_removes_the_parts(built):
    root, profiles = built
    parts = _split(root, profiles, "gone")
    assert part_path(parts.folder, 0, "text").is_file()
    parts.discard()
    assert not parts.folder.exists()


def _rest(parts: ProfileParts) -> tuple:
    return (parts.user_ids, parts.specs, parts.currency, parts.alpha, parts.item_ids, parts.item_vectors,
            parts.n_texts_embedded, parts.n_texts_total, parts.text_source, parts.recipe)


def test_neighbours_npz_of_a_run_fitted_on_a_sample_is_written_in_blocks_as_it_was_whole(built, tmp_path, monkeypatch):
    """save_candidates writes the unknown rows (users outside the fit) a block at a time: what the whole arrays held."""
    import tools.pipeline as pipeline
    from tools.segment.clustering import SegmentModel
    from tools.segment.resmooth import NEIGHBOURS_FILE, Candidates

    _, profiles = built
    fitted = np.random.default_rng(1).random(len(profiles.user_ids)) < 0.6
    model = SegmentModel(k=3, seed=0, smooth_neighbours=10).fit(profiles.fused[fitted])
    found = model.fit_candidates_
    assert found is not None and len(found.bound) == fitted.sum()
    monkeypatch.setattr(pipeline, "CANDIDATE_BLOCK", 37)  # many blocks, none aligned with the fitted rows
    pipeline.save_candidates(tmp_path, model, fitted)
    whole = Candidates.unknown(len(fitted), found.ids.shape[1]).put(fitted, found)
    with np.load(tmp_path / NEIGHBOURS_FILE) as got:
        for name in ("ids", "dist", "bound"):
            np.testing.assert_array_equal(got[name], getattr(whole, name), err_msg=name)
            assert got[name].dtype == getattr(whole, name).dtype


def test_an_array_written_in_blocks_must_get_the_rows_it_promised(tmp_path):
    from tools.core.npz import Blocks, save_npz

    whole = np.arange(12, dtype=np.float32).reshape(6, 2)
    save_npz(tmp_path / "ok.npz", {"a": Blocks((6, 2), np.dtype(np.float32), lambda: iter([whole[:4], whole[4:]])), "b": whole})
    with np.load(tmp_path / "ok.npz") as got:
        np.testing.assert_array_equal(got["a"], whole)
        np.testing.assert_array_equal(got["b"], whole)
    with pytest.raises(ValueError, match="held 4 rows, not 6"):
        save_npz(tmp_path / "short.npz", {"a": Blocks((6, 2), np.dtype(np.float32), lambda: iter([whole[:4]]))})
    with pytest.raises(ValueError, match="a block of shape"):
        save_npz(tmp_path / "wide.npz", {"a": Blocks((6, 3), np.dtype(np.float32), lambda: iter([whole]))})


def test_the_text_scaling_summed_part_by_part_is_the_gathered_blocks_bit_for_bit(built):
    from tools.distributed.engine import _text_scale
    from tools.segment.recipe import BlockScale

    root, profiles = built
    parts = _split(root, profiles, "scale")
    population = np.random.default_rng(2).random(len(profiles.user_ids)) < 0.9
    for pop in (None, population):
        got, want = _text_scale(parts, pop, block_rows=37), BlockScale.of(profiles.text, pop)
        np.testing.assert_array_equal(got.mean, want.mean)
        assert got.mean.dtype == want.mean.dtype and got.total == want.total
