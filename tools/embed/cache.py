"""A content-addressed cache of text embeddings, one file per model.

Keys are hashes of (model name, text), so a text that has not changed is never
embedded again, whichever item or user it belongs to, across runs. The file is
rewritten atomically (temp file, then rename): a crash leaves the old cache, and
the temp file a killed save left is removed the next time the cache is opened.
A cache folder has one writer at a time: a run holds the workspace lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tools.core.workspace import atomic_file, temp_name_pattern
from tools.embed.embedding import Embedder, ProgressFn, text_key

# The temp files of saves before the workspace's atomic_file was used (tmpXXXX.npz.tmp).
_OLD_TEMP_PATTERN = "tmp*.npz.tmp"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-80:] or "model"


class EmbeddingCache:
    """Vectors for texts, looked up by content hash; ``path=None`` keeps them in memory only."""

    def __init__(self, directory: str | Path | None, embedder_name: str) -> None:
        self.embedder_name = embedder_name
        self.path = None if directory is None else Path(directory) / f"embeddings-{_slug(embedder_name)}.npz"
        self._index: dict[bytes, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._pending_keys: list[bytes] = []
        self._pending: list[np.ndarray] = []
        self.hits = 0
        self.misses = 0
        self.removed_temp_files = self._remove_stale_temp_files()
        if self.path is not None and self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    keys = data["keys"]
                    self._vectors = data["vectors"]
                self._index = {bytes(k): i for i, k in enumerate(keys)}
            except (OSError, ValueError, KeyError):
                # A damaged cache only costs re-embedding; never fail a run for it.
                self._index, self._vectors = {}, np.zeros((0, 0), dtype=np.float32)

    def _remove_stale_temp_files(self) -> int:
        """Delete what a save killed mid-write left beside the cache file; returns how many."""
        if self.path is None or not self.path.parent.is_dir():
            return 0
        removed = 0
        for pattern in (temp_name_pattern(self.path), _OLD_TEMP_PATTERN):
            for leftover in self.path.parent.glob(pattern):
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)
                    removed += 1
        return removed

    def __len__(self) -> int:
        return len(self._index) + len(self._pending_keys)

    def embed(self, texts: Sequence[str], embedder: Embedder, progress: ProgressFn | None = None) -> np.ndarray:
        """Vectors for ``texts`` (rows aligned), embedding only those not cached."""
        keys = [text_key(self.embedder_name, t).encode() for t in texts]
        pending_index = {k: i for i, k in enumerate(self._pending_keys)}
        missing = [i for i, k in enumerate(keys) if k not in self._index and k not in pending_index]
        # The same new text twice in one call is embedded once.
        unique_missing: dict[bytes, int] = {}
        for i in missing:
            unique_missing.setdefault(keys[i], i)
        self.misses += len(unique_missing)
        self.hits += len(texts) - len(unique_missing)  # a repeat of a new text is served, not embedded
        if unique_missing:
            new_vectors = embedder.encode([texts[i] for i in unique_missing.values()], progress=progress)
            for key, vec in zip(unique_missing, new_vectors):
                pending_index[key] = len(self._pending_keys)
                self._pending_keys.append(key)
                self._pending.append(vec)
        elif progress is not None:
            progress(len(texts), len(texts))
        if not texts:
            return np.zeros((0, self._dim(embedder)), dtype=np.float32)
        out = np.empty((len(texts), self._dim(embedder)), dtype=np.float32)
        for row, key in enumerate(keys):
            i = self._index.get(key)
            out[row] = self._vectors[i] if i is not None else self._pending[pending_index[key]]
        return out

    def _dim(self, embedder: Embedder) -> int:
        if self._vectors.size:
            return self._vectors.shape[1]
        if self._pending:
            return len(self._pending[0])
        return embedder.dim

    def save(self) -> None:
        """Write new vectors to disk (atomically); a no-op when nothing is new."""
        if not self._pending_keys:
            return
        new = np.vstack(self._pending).astype(np.float32)
        vectors = new if self._vectors.size == 0 else np.vstack([self._vectors, new])
        keys = list(self._index) + self._pending_keys
        self._index = {k: i for i, k in enumerate(keys)}
        self._vectors = vectors
        self._pending_keys, self._pending = [], []
        if self.path is None:
            return
        with atomic_file(self.path) as fh:
            np.savez(fh, keys=np.array(keys, dtype="S32"), vectors=vectors)
