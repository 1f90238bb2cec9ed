"""Which backend runs the model (torch or ONNX), its fallback, the cached export, and the ONNX vectors' quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tools.embed.embedding as embedding
import tools.embed.onnx_embedder as onnx_embedder
import tools.embed.onnx_model as onnx_model
from tools.core.errors import SegscopeError
from tools.embed.embedding import (
    HashingEmbedder,
    SentenceTransformerEmbedder,
    full_precision,
    make_embedder,
    resolve_backend,
    resolve_model_path,
    vectors_name,
)
from tools.embed.onnx_embedder import OnnxEmbedder, onnx_missing
from tools.embed.onnx_model import UnsupportedModel, ensure_onnx_model, read_spec

# --- choosing the backend -----------------------------------------------------------------


@pytest.fixture
def no_amx(monkeypatch):
    monkeypatch.delenv("SEGSCOPE_EMBED_BACKEND", raising=False)
    monkeypatch.setattr(embedding, "has_amx", lambda: False)
    monkeypatch.setattr(onnx_embedder, "onnx_missing", lambda: None)


def test_auto_is_int8_onnx_without_amx_and_torch_with_it(no_amx, monkeypatch):
    assert resolve_backend()[0] == "onnx-int8"
    emb = make_embedder()
    assert isinstance(emb, OnnxEmbedder) and emb.variant == "onnx-int8"
    assert emb._session is None and emb.dim == 384, "building the embedder loads nothing"
    monkeypatch.setattr(embedding, "has_amx", lambda: True)
    choice, why = resolve_backend()
    assert choice == "torch" and "AMX" in why
    assert isinstance(make_embedder(), SentenceTransformerEmbedder)


def test_auto_falls_back_to_torch_when_the_onnx_packages_are_missing(no_amx, monkeypatch):
    monkeypatch.setattr(onnx_embedder, "onnx_missing", lambda: "the onnx package is not installed")
    assert resolve_backend() == ("torch", "the onnx package is not installed")
    emb = make_embedder()
    assert isinstance(emb, SentenceTransformerEmbedder) and emb.backend == "torch"


def test_an_explicit_onnx_choice_without_its_packages_is_an_error(no_amx, monkeypatch):
    monkeypatch.setattr(onnx_embedder, "onnx_missing", lambda: "the onnxruntime package is not installed")
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "onnx-int8")
    with pytest.raises(SegscopeError, match="needs onnxruntime and onnx, but the onnxruntime package") as err:
        make_embedder()
    assert "SEGSCOPE_EMBED_BACKEND=torch" in err.value.hint


def test_backend_comes_from_the_environment_and_is_validated(no_amx, monkeypatch):
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", " Torch ")
    assert isinstance(make_embedder(), SentenceTransformerEmbedder)
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "onnx")
    emb = make_embedder()
    assert isinstance(emb, OnnxEmbedder) and emb.variant == "onnx"
    assert make_embedder(backend="torch").backend == "torch", "an argument wins over the environment"
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "tensorrt")
    with pytest.raises(SegscopeError, match="unknown embedding backend 'tensorrt'"):
        make_embedder()
    assert make_embedder("hashing-16").dim == 16, "the hashing embedder has no backend to choose"


def _model_copy(tmp_path: Path) -> Path:
    """The bundled model's small files (the export reads no weights in these tests)."""
    src = Path(resolve_model_path("minilm"))
    dst = tmp_path / "model"
    (dst / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json", "1_Pooling/config.json"):
        shutil.copy(src / name, dst / name)
    return dst


def test_a_model_the_export_cannot_reproduce_runs_on_torch(no_amx, tmp_path):
    model = _model_copy(tmp_path)
    spec = read_spec(model)
    assert (spec.pooling, spec.max_seq_length, spec.hidden_size) == ("mean", 256, 384)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    choice, why = resolve_backend(None, str(model))
    assert choice == "torch" and "Dense" in why
    assert isinstance(make_embedder(str(model)), SentenceTransformerEmbedder)
    with pytest.raises(UnsupportedModel, match="not Transformer"):
        make_embedder(str(model), backend="onnx")


def test_int8_vectors_are_cached_and_keyed_apart_from_fp32_ones(no_amx):
    from tools.pipeline import RunParams, run_key

    torch_emb, fp32, int8 = make_embedder(backend="torch"), make_embedder(backend="onnx"), make_embedder(backend="onnx-int8")
    assert vectors_name(torch_emb) == vectors_name(fp32) == "minilm"
    assert vectors_name(int8) == "minilm@onnx-int8"

    class Data:
        fingerprint = "f" * 16

    params = RunParams(seed=1)
    assert run_key(Data, params, vectors_name(torch_emb)) == run_key(Data, params)
    assert run_key(Data, params, vectors_name(int8)) != run_key(Data, params)


def test_the_router_embeds_at_full_precision_whatever_the_run_used(no_amx, tmp_path):
    """int8 intents routed fewer of the corpus's requests; the session's router takes the fp32 twin of its workspace's model."""
    from assistant.config import load_settings
    from assistant.session import Session

    twin = full_precision(make_embedder(backend="onnx-int8"))
    assert isinstance(twin, OnnxEmbedder) and twin.variant == "onnx" and twin.name == "minilm"
    fp32, hashing = make_embedder(backend="onnx"), HashingEmbedder()
    assert full_precision(fp32) is fp32 and full_precision(hashing) is hashing

    session = Session(tmp_path / "ws", load_settings(llm="extractive"))
    session.service._embedder = make_embedder(backend="onnx-int8")
    assert session.router is not None and session.intent_embedder.variant == "onnx"


# --- the cached export --------------------------------------------------------------------


@pytest.fixture
def fake_build(monkeypatch):
    """Export and quantisation that only write a marker, counting their calls."""
    calls = []

    def export(spec, out):
        calls.append("export")
        out.write_bytes(b"fp32")

    def quantise(fp32, out):
        calls.append("quantise")
        out.write_bytes(b"int8 of " + fp32.read_bytes())

    monkeypatch.setattr(onnx_model, "_export", export)
    monkeypatch.setattr(onnx_model, "_quantise", quantise)
    return calls


def test_the_export_is_built_once_and_again_when_the_model_changes(tmp_path, fake_build):
    model = _model_copy(tmp_path)
    root = tmp_path / "cache"
    first = ensure_onnx_model(read_spec(model), "onnx-int8", root)
    assert first.read_bytes() == b"int8 of fp32" and first.with_name("onnx.onnx").exists()
    assert ensure_onnx_model(read_spec(model), "onnx-int8", root) == first
    assert ensure_onnx_model(read_spec(model), "onnx", root) == first.with_name("onnx.onnx")
    assert fake_build == ["export", "quantise"], "built once"
    assert not list(first.parent.glob(".build-*")), "no temporary folder is left"
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    again = ensure_onnx_model(read_spec(model), "onnx-int8", root)
    assert again.parent != first.parent and fake_build[2:] == ["export", "quantise"]


def test_a_failed_build_leaves_nothing_half_written(tmp_path, monkeypatch, fake_build):
    model = _model_copy(tmp_path)
    root = tmp_path / "cache"

    def broken(fp32, out):
        out.write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(onnx_model, "_quantise", broken)
    with pytest.raises(RuntimeError):
        ensure_onnx_model(read_spec(model), "onnx-int8", root)
    folder = next(root.iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["onnx.onnx"], "only the finished fp32 step is kept"
    monkeypatch.setattr(onnx_model, "_quantise", lambda fp32, out: out.write_bytes(b"int8"))
    assert ensure_onnx_model(read_spec(model), "onnx-int8", root).read_bytes() == b"int8"
    assert fake_build == ["export"], "the next build starts from the finished fp32 step"


def test_an_unwritable_cache_says_where_and_what_to_do(tmp_path, fake_build):
    model = _model_copy(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SegscopeError, match="cannot write the exported model") as err:
        ensure_onnx_model(read_spec(model), "onnx", blocker / "cache")
    assert "SEGSCOPE_MODEL_CACHE" in err.value.hint


def test_the_cache_folder_is_the_users_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("SEGSCOPE_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_model.model_cache_root() == tmp_path / "xdg" / "segscope" / "models"
    monkeypatch.setenv("SEGSCOPE_MODEL_CACHE", str(tmp_path / "mine"))
    assert onnx_model.model_cache_root() == tmp_path / "mine"


# --- the real export: vectors against torch's ---------------------------------------------

TEXTS = [
    "Waterproof hiking boots with a grippy sole",
    "How do I reset my card PIN?",
    "HOW do   I reset my card pin?",  # the same tokens for this uncased model: run once
    "Loved it. Five stars.",
    "x",
    "Exceeded my expectations. I've been recommending it to everyone in my book club. " * 12,  # past 256 tokens
]


@pytest.mark.slow
def test_onnx_vectors_match_torch_fp32_vectors():
    missing = onnx_missing()
    if missing:
        pytest.skip(f"the ONNX backend cannot run: {missing}")
    reference = SentenceTransformerEmbedder(precision="fp32").encode(TEXTS)
    fp32 = OnnxEmbedder(variant="onnx").encode(TEXTS)
    calls = []
    int8 = OnnxEmbedder(variant="onnx-int8").encode(TEXTS, progress=lambda done, total: calls.append((done, total)))
    for vectors in (fp32, int8):
        assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert (fp32 * reference).sum(axis=1).min() > 0.9999
    assert (int8 * reference).sum(axis=1).min() >= 0.97
    assert np.median((int8 * reference).sum(axis=1)) >= 0.99
    np.testing.assert_array_equal(int8[1], int8[2])
    assert calls[-1] == (len(TEXTS), len(TEXTS))
    # Nearest neighbours agree: each text's closest other text is the same under both.
    sims_ref, sims_int8 = reference @ reference.T, int8 @ int8.T
    np.fill_diagonal(sims_ref, -1)
    np.fill_diagonal(sims_int8, -1)
    assert (sims_ref.argmax(axis=1) == sims_int8.argmax(axis=1)).all()


def test_the_config_file_chooses_the_backend_unless_the_environment_does(no_amx, monkeypatch, tmp_path):
    from assistant.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text('embed_backend = "torch"\n')
    monkeypatch.setenv("SEGSCOPE_CONFIG", str(config))
    assert load_settings().embed_backend == "torch"
    assert isinstance(make_embedder(), SentenceTransformerEmbedder)
    monkeypatch.setenv("SEGSCOPE_EMBED_BACKEND", "onnx")
    load_settings()
    assert isinstance(make_embedder(), OnnxEmbedder), "the environment wins over the file"
    monkeypatch.delenv("SEGSCOPE_EMBED_BACKEND")
    config.write_text('embed_backend = "cuda"\n')
    with pytest.raises(SegscopeError, match="embed_backend"):
        load_settings()
