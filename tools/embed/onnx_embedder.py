"""Embedding with onnxruntime: the exported model (tools/embed/onnx_model.py), built and loaded on first use.

The texts are tokenised by the model's own fast tokenizer (``tokenizer.json``)
with the sentence-transformers sequence limit, so the model sees exactly the
tokens it sees under torch: the fp32 export gives the torch fp32 vectors to
cosine 1.00000. Texts whose tokens are the same (they differ only in case,
accents or spacing for an uncased model) are run once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tools.core.errors import SegscopeError
from tools.core.linalg import normalize_rows
from tools.embed.embedding import (
    DEFAULT_EMBEDDER,
    ProgressFn,
    cpu_cores,
    resolve_model_path,
)
from tools.embed.onnx_model import ModelSpec, ensure_onnx_model, read_spec

PLAN_TEXTS = 8192  # texts tokenized at a time when planning the model calls


def onnx_missing() -> str | None:
    """Why the ONNX backend cannot run here (a missing package), or None when it can."""
    import importlib.util

    for module, package in (("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("tokenizers", "tokenizers")):
        if importlib.util.find_spec(module) is None:
            return f"the {package} package is not installed"
    return None


class OnnxEmbedder:
    """A sentence-transformers model run by onnxruntime, exported from its local weights on first use.

    ``variant`` 'onnx' is the fp32 graph (the torch vectors); 'onnx-int8' has int8
    weights, faster on CPUs without AMX (bench/embed_backends.py measures speed,
    cosine to fp32 and clustering quality). ``name`` stays the model's name; the
    embedding cache and the run key use ``cache_name``, which tells int8 vectors
    apart from fp32 ones.
    """

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, variant: str = "onnx-int8", batch_size: int = 64) -> None:
        self.name = name_or_path
        self.variant = variant
        self.backend = variant
        self.batch_size = batch_size
        self.cache_name = name_or_path if variant == "onnx" else f"{name_or_path}@{variant}"
        self._spec: ModelSpec | None = None
        self._session = None
        self._tokenizer = None
        self._inputs: set[str] = set()
        self._dim: int | None = 384 if name_or_path == DEFAULT_EMBEDDER else None

    @property
    def spec(self) -> ModelSpec:
        if self._spec is None:
            self._spec = read_spec(resolve_model_path(self.name))
        return self._spec

    def load(self) -> None:
        """Build (first time only) and open the model and its tokenizer."""
        if self._session is not None:
            return
        import onnxruntime as ort
        from tokenizers import Tokenizer

        spec = self.spec
        path = ensure_onnx_model(spec, self.variant)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_cores()
        options.inter_op_num_threads = 1
        # Busy-waiting threads steal the core a neighbouring process (or our own tokenizer) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cache file: say where it is
            raise SegscopeError(
                f"cannot load the exported model {path}: {type(exc).__name__}: {exc}",
                f"delete {path.parent}: the next run builds it again",
            ) from exc
        self._inputs = {i.name for i in session.get_inputs()}
        self._tokenizer, self._session = self._load_tokenizer(), session
        self._dim = int(session.get_outputs()[0].shape[-1]) if isinstance(session.get_outputs()[0].shape[-1], int) else self._dim

    def _load_tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.spec.tokenizer_file))
            # sentence-transformers' limit, not the file's own; padding is done per batch in _run.
            tokenizer.enable_truncation(self.spec.max_seq_length)
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def _plan(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """(each text's unique token sequence, the unique sequences, the sequences of each model call)."""
        # Tokens first (fast, in parallel in Rust), unpadded: identical token sequences run once. A tokenizer's
        # Encoding holds tokens, offsets and masks besides the ids (KBs a text), so PLAN_TEXTS texts at a time,
        # and only the ids kept, as int32 arrays.
        tokenizer = self._load_tokenizer()
        first: dict[bytes, int] = {}
        source = np.empty(len(texts), dtype=np.int64)
        unique: list[np.ndarray] = []
        for start in range(0, len(texts), PLAN_TEXTS):
            for row, enc in enumerate(tokenizer.encode_batch(list(texts[start : start + PLAN_TEXTS])), start):
                ids = np.asarray(enc.ids, dtype=np.int32)
                source[row] = first.setdefault(ids.tobytes(), len(unique))
                if source[row] == len(unique):
                    unique.append(ids)
        # Longest first, batches of similar length: little padding.
        order = np.argsort([-len(ids) for ids in unique], kind="stable")
        return source, unique, [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def batch_plan(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The rows of ``texts`` that :meth:`encode` runs through the model together, call by call.

        int8 activations are quantized per call (one scale for the whole batch), so a text's vector
        depends on its batch-mates: whoever splits the work (tools/distributed/embed.py) keeps these
        groups whole, and each group encoded on its own gives the vectors of one big call.
        """
        source, _, batches = self._plan(texts)
        return [np.flatnonzero(np.isin(source, batch)) for batch in batches]

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        assert self._tokenizer is not None and self._session is not None
        source, unique, batches = self._plan(texts)
        vectors = np.empty((len(unique), self.dim), dtype=np.float32)
        done_texts = 0
        counts = np.bincount(source, minlength=len(unique))
        for batch in batches:
            vectors[batch] = self._run([unique[i] for i in batch])
            done_texts += int(counts[batch].sum())
            if progress is not None:
                progress(done_texts, len(texts))
        return normalize_rows(vectors, copy=False)[source]

    def _run(self, batch: list[np.ndarray]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        # Padding positions are masked out of attention and pooling, so their id does not matter.
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        assert self._session is not None
        return self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0].astype(np.float32, copy=False)

