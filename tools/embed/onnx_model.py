"""The local sentence-transformers model exported to ONNX, built once and cached.

Nothing is downloaded: the export reads the bundled weights (or any local
sentence-transformers folder of the usual shape: Transformer, then mean or CLS
pooling, then optionally Normalize), writes an ONNX graph with the pooling
inside it, and for ``onnx-int8`` quantises every matrix product's weights to
int8 (onnxruntime's dynamic quantisation; activations are quantised per call).

The result lives in the user's cache folder (``$SEGSCOPE_MODEL_CACHE``, else
``$XDG_CACHE_HOME/segscope/models``, else ``~/.cache/segscope/models``), in a
folder named by a hash of the model's files and of this recipe, so changed
weights or a changed recipe build a new one. Each file is built in a temporary
folder beside it and renamed into place: a killed build leaves no half file,
and two processes building at once both end with the same complete model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.core.errors import SegscopeError

VARIANTS = ("onnx", "onnx-int8")
# Bump when the export steps change, so caches built by older steps are not reused.
RECIPE = "1"
OPSET = 17
_HASHED_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json", "1_Pooling/config.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_STALE_BUILD_SECONDS = 3600.0


class UnsupportedModel(SegscopeError):
    """A model folder the ONNX export cannot reproduce faithfully (the torch backend still runs it)."""


@dataclass(frozen=True)
class ModelSpec:
    """What a sentence-transformers folder says about how it turns tokens into a vector."""

    path: Path
    pooling: str  # "mean" or "cls"
    max_seq_length: int
    tokenizer_file: Path
    hidden_size: int
    num_heads: int
    model_type: str


def model_cache_root() -> Path:
    """Where exported models are kept: $SEGSCOPE_MODEL_CACHE, else the user's cache folder."""
    env = os.environ.get("SEGSCOPE_MODEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "segscope" / "models"


def read_spec(model_path: str | Path) -> ModelSpec:
    """The model's pooling, sequence limit and shape; UnsupportedModel for anything the export would change."""
    path = Path(model_path)
    hint = "use SEGSCOPE_EMBED_BACKEND=torch for this model"

    def load(name: str) -> dict:
        try:
            return json.loads((path / name).read_text())
        except (OSError, ValueError) as exc:
            raise UnsupportedModel(f"{path}: cannot read {name} for the ONNX export ({exc})", hint) from exc

    modules = [m.get("type", "") for m in load("modules.json")]
    kinds = [m.rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"{path}: modules {kinds} are not Transformer + Pooling [+ Normalize]", hint)
    pooling_cfg = load("1_Pooling/config.json")
    modes = [k for k, v in pooling_cfg.items() if k.startswith("pooling_mode_") and v]
    pooling = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0]) if len(modes) == 1 else None
    if pooling is None:
        raise UnsupportedModel(f"{path}: pooling {modes} is neither mean nor CLS alone", hint)
    tokenizer = path / "tokenizer.json"
    if not tokenizer.exists():
        raise UnsupportedModel(f"{path}: no tokenizer.json (a fast tokenizer file) beside the model", hint)
    config = load("config.json")
    st_config = load("sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
    max_len = int(st_config.get("max_seq_length") or config.get("max_position_embeddings", 512))
    return ModelSpec(
        path=path,
        pooling=pooling,
        max_seq_length=min(max_len, int(config.get("max_position_embeddings", max_len))),
        tokenizer_file=tokenizer,
        hidden_size=int(config.get("hidden_size", 0)),
        num_heads=int(config.get("num_attention_heads", 0)),
        model_type=str(config.get("model_type", "")),
    )


def model_digest(spec: ModelSpec) -> str:
    """A hash of the files the export reads and of the recipe: the name of the cache folder.

    The small files are hashed whole; the weights by path, size and modification
    time (hashing 90 MB on every run would cost more than a cached run takes), which
    any reinstall or edit changes.
    """
    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"recipe={RECIPE};opset={OPSET};pooling={spec.pooling};max={spec.max_seq_length}".encode())
    for name in _HASHED_FILES:
        file = spec.path / name
        if file.exists():
            digest.update(name.encode() + b"\x00" + file.read_bytes())
    for name in _WEIGHT_FILES:
        file = spec.path / name
        if file.exists():
            stat = file.stat()
            digest.update(f"{file.resolve()}\x00{stat.st_size}\x00{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def ensure_onnx_model(spec: ModelSpec, variant: str, root: Path | None = None) -> Path:
    """The path of the exported model ``variant`` ('onnx' or 'onnx-int8'), building it first if needed."""
    if variant not in VARIANTS:
        raise SegscopeError(f"unknown ONNX variant {variant!r}", f"use one of {', '.join(VARIANTS)}")
    folder = (root or model_cache_root()) / f"{spec.path.name[:40]}-{model_digest(spec)}"
    target = folder / f"{variant}.onnx"
    if target.exists():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(folder)
        build = Path(tempfile.mkdtemp(dir=folder, prefix=".build-"))
    except OSError as exc:
        raise SegscopeError(
            f"cannot write the exported model under {folder}: {exc}",
            "set SEGSCOPE_MODEL_CACHE to a writable folder, or SEGSCOPE_EMBED_BACKEND=torch",
        ) from exc
    try:
        fp32 = folder / "onnx.onnx"
        if not fp32.exists():
            _export(spec, build / "onnx.onnx")
            os.replace(build / "onnx.onnx", fp32)
        if variant == "onnx-int8":
            _quantise(fp32, build / "onnx-int8.onnx")
            os.replace(build / "onnx-int8.onnx", target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def _remove_stale_builds(folder: Path) -> None:
    """Temporary folders of builds that were killed (old enough that no build is still writing them)."""
    now = time.time()
    for leftover in folder.glob(".build-*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_BUILD_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def _export(spec: ModelSpec, out: Path) -> None:
    """Transformer + pooling as one fp32 ONNX graph with dynamic batch and sequence axes."""
    import inspect

    import torch
    from transformers import AutoModel

    from tools.embed.embedding import quiet_transformers

    quiet_transformers(spec.path)
    # Eager attention exports as plain matrix products that onnxruntime fuses into its own kernels.
    model = AutoModel.from_pretrained(str(spec.path), attn_implementation="eager").eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    pooling = spec.pooling

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {"token_type_ids": token_type_ids} if takes_types else {}
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            if pooling == "cls":
                return hidden[:, 0]
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["sentence_embedding"] = {0: "batch"}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on traced shapes are not for users
        torch.onnx.export(
            Pooled(model), example, str(out), input_names=names, output_names=["sentence_embedding"],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )


def _quantise(fp32: Path, out: Path) -> None:
    """int8 weights for every matrix product, per output channel; activations quantised per call."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    quantize_dynamic(
        str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
