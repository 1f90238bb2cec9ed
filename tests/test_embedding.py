"""Embedders and the content-hash embedding cache (no real model is loaded here)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CountingEmbedder, files_matching

import tools.embed.embedding as embedding
from tools.core.errors import SegscopeError
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import (
    HashingEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
    resolve_precision,
    text_key,
)

# --- text_key ------------------------------------------------------------------


def test_text_key_is_a_stable_hash_of_model_and_text():
    key = text_key("hashing-64", "red shoes")
    assert key == text_key("hashing-64", "red shoes")
    assert len(key) == 32 and int(key, 16) >= 0
    assert key != text_key("hashing-64", "red shoes ")
    assert key != text_key("minilm", "red shoes")


def test_text_key_separates_model_name_from_text():
    # Without the separator, ("ab", "c") and ("a", "bc") would hash the same bytes.
    assert text_key("ab", "c") != text_key("a", "bc")


def test_text_key_accepts_lone_surrogates():
    # Text decoded with surrogateescape must still get a key rather than crash.
    assert len(text_key("m", "bad \udcff byte")) == 32


# --- HashingEmbedder --------------------------------------------------------------


def test_hashing_embedder_is_deterministic_and_normalised():
    emb = HashingEmbedder(dim=32)
    texts = ["Garden tulip bulbs", "Sapphire chronograph watch", ""]
    a, b = emb.encode(texts), HashingEmbedder(dim=32).encode(texts)
    assert a.shape == (3, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1.0, rtol=1e-6)
    assert not a[2].any(), "an empty text has no direction"


def test_hashing_embedder_puts_texts_sharing_words_closer():
    v = HashingEmbedder(dim=256).encode(["tulip compost trowel", "compost trowel rake", "sapphire bezel chronograph"])
    assert v[0] @ v[1] > v[0] @ v[2]
    # Case is ignored.
    np.testing.assert_array_equal(*HashingEmbedder().encode(["Tulip", "tulip"]))


def test_hashing_embedder_reports_progress_and_handles_no_texts():
    calls = []
    out = HashingEmbedder(dim=8).encode(["a", "b"], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2, 2) and out.shape == (2, 8)
    assert HashingEmbedder(dim=8).encode([]).shape == (0, 8)


# --- make_embedder ------------------------------------------------------------------


def test_make_embedder_builds_hashing_embedders_by_name():
    default, sized = make_embedder("hashing"), make_embedder("hashing-32")
    assert isinstance(default, HashingEmbedder) and default.dim == 64 and default.name == "hashing-64"
    assert isinstance(sized, HashingEmbedder) and sized.dim == 32 and sized.name == "hashing-32"


def test_make_embedder_default_is_lazy(monkeypatch):
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "torch")
    emb = make_embedder()
    assert isinstance(emb, SentenceTransformerEmbedder)
    # Building it, and asking its dimension, must not load torch or the model.
    assert emb.dim == 384 and emb._model is None


# --- precision ------------------------------------------------------------------------


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.delenv("SEGSCOPE_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embedding, "native_bf16", lambda: True)
    assert resolve_precision(None) == "bf16"
    assert resolve_precision("auto", device="cuda") == "fp32"
    monkeypatch.setattr(embedding, "native_bf16", lambda: False)
    assert resolve_precision(None) == "fp32"
    assert resolve_precision("bf16") == "bf16", "an explicit choice wins"


def test_precision_comes_from_the_environment_and_is_validated(monkeypatch):
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "torch")  # precision is torch's setting
    monkeypatch.setenv("SEGSCOPE_EMBED_PRECISION", "FP32")
    monkeypatch.setattr(embedding, "native_bf16", lambda: True)
    assert make_embedder().precision == "fp32"
    monkeypatch.setenv("SEGSCOPE_EMBED_PRECISION", "fp8")
    with pytest.raises(SegscopeError, match="unknown embedding precision 'fp8'"):
        make_embedder()


@pytest.mark.slow
def test_bf16_vectors_match_fp32_vectors():
    texts = ["Waterproof hiking boots with a grippy sole", "How do I reset my card PIN?", "Loved it. Five stars.", "x"]
    fp32 = SentenceTransformerEmbedder(precision="fp32").encode(texts)
    bf16 = SentenceTransformerEmbedder(precision="bf16").encode(texts)
    assert bf16.dtype == np.float32 and bf16.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, rtol=1e-5)
    assert (fp32 * bf16).sum(axis=1).min() > 0.999


@pytest.mark.slow
def test_parallel_encoding_matches_one_call_and_restores_torch_threads(monkeypatch):
    import torch

    texts = [f"{w} {i} with a grippy sole and a soft lining" for i, w in enumerate(["boots", "sandals", "tulips", "pins"] * 75)]
    emb = SentenceTransformerEmbedder(precision="fp32")
    monkeypatch.setattr(emb, "_workers", lambda n: 1)
    serial_calls = []
    serial = emb.encode(texts, progress=lambda done, total: serial_calls.append((done, total)))
    done = [d for d, _ in serial_calls]
    assert len(serial_calls) == 3 and done == sorted(done) and serial_calls[-1] == (300, 300), serial_calls  # one report a chunk
    monkeypatch.setattr(emb, "_workers", lambda n: 2)
    threads = torch.get_num_threads()
    calls = []
    parallel = emb.encode(texts, progress=lambda done, total: calls.append((done, total)))
    assert torch.get_num_threads() == threads
    assert calls[-1] == (300, 300) and len(calls) == 3  # one report per chunk of two batches
    assert (serial * parallel).sum(axis=1).min() > 0.99999  # same rows, same order


# --- EmbeddingCache -------------------------------------------------------------------


def test_cache_counts_hits_and_misses_and_embeds_repeats_once(tmp_path):
    emb = CountingEmbedder(HashingEmbedder(dim=16))
    cache = EmbeddingCache(tmp_path, emb.name)
    out = cache.embed(["a b", "c d", "a b"], emb)
    assert emb.texts == ["a b", "c d"], "a repeated new text is embedded once"
    assert (cache.misses, cache.hits) == (2, 1)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_allclose(out, HashingEmbedder(dim=16).encode(["a b", "c d", "a b"]))

    # Pending (unsaved) vectors are reused too.
    cache.embed(["c d", "e f"], emb)
    assert emb.texts == ["a b", "c d", "e f"]
    assert (cache.misses, cache.hits) == (3, 2)
    assert len(cache) == 3


def test_cache_survives_a_restart_without_embedding_again(tmp_path):
    texts = ["tulip bulbs", "rose pruner", "zombie film"]
    first = EmbeddingCache(tmp_path, "hashing-16")
    expected = first.embed(texts, HashingEmbedder(dim=16))
    first.save()
    assert first.path is not None and first.path.exists()
    assert files_matching(tmp_path, "*.tmp") == [], "the atomic save leaves no temp file"

    emb = CountingEmbedder(HashingEmbedder(dim=16))
    second = EmbeddingCache(tmp_path, "hashing-16")
    got = second.embed(list(reversed(texts)), emb)
    assert emb.calls == 0
    assert (second.hits, second.misses) == (3, 0)
    np.testing.assert_array_equal(got, expected[::-1])

    # A new text is appended to the saved file, the old ones kept.
    second.embed(["new text"], emb)
    second.save()
    third = EmbeddingCache(tmp_path, "hashing-16")
    assert len(third) == 4


def test_cache_files_are_per_model(tmp_path):
    a = EmbeddingCache(tmp_path, "hashing-16")
    b = EmbeddingCache(tmp_path, "/models/My Model v2")
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path
    assert " " not in b.path.name and "/" not in b.path.name


def test_save_without_new_vectors_writes_nothing(tmp_path):
    cache = EmbeddingCache(tmp_path, "hashing-8")
    cache.save()
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_cache_and_no_temp_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "hashing-8")
    cache.embed(["one"], HashingEmbedder(dim=8))
    cache.save()
    before = cache.path.read_bytes()

    cache.embed(["two"], HashingEmbedder(dim=8))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tools.core.workspace.os.replace", crash)
    with pytest.raises(OSError):
        cache.save()
    assert cache.path.read_bytes() == before
    assert files_matching(tmp_path, "*.tmp") == []


def test_damaged_cache_file_only_costs_re_embedding(tmp_path):
    cache = EmbeddingCache(tmp_path, "hashing-8")
    cache.path.write_bytes(b"not an npz file")
    reopened = EmbeddingCache(tmp_path, "hashing-8")
    assert len(reopened) == 0
    out = reopened.embed(["x"], HashingEmbedder(dim=8))
    assert out.shape == (1, 8) and reopened.misses == 1


def test_in_memory_cache_and_empty_input():
    cache = EmbeddingCache(None, "hashing-8")
    assert cache.path is None
    assert cache.embed([], HashingEmbedder(dim=8)).shape == (0, 8)
    cache.embed(["x"], HashingEmbedder(dim=8))
    cache.save()  # nowhere to write: must simply keep the vectors
    emb = CountingEmbedder(HashingEmbedder(dim=8))
    cache.embed(["x"], emb)
    assert emb.calls == 0
