"""Embedding distinct texts with a pool of embedder actors: each actor loads the model once.

:class:`PoolEmbedder` is an :class:`~tools.embed.embedding.Embedder`, so the workspace's content-hash
cache (tools/embed/cache.py) drives it as it drives the local model: only texts the cache lacks reach
the pool, and their vectors land in the same cache file under the same name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tools.embed.embedding import Embedder, ProgressFn, make_embedder, vectors_name

BATCH_TEXTS = 256


class _EncodeTexts:
    """One actor of the pool: the model is made (and loaded on first use) once per actor.

    The model is named by a subclass's ``SPEC`` (name, precision, backend) rather than constructor
    arguments, which Ray keeps in its object store and warns about for restartable actors.
    """

    SPEC: tuple[str, str | None, str | None] = ("hashing", None, None)

    def __init__(self) -> None:
        name, precision, backend = self.SPEC
        self.embedder = make_embedder(name, precision=precision, backend=backend)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Each row is one of the local model's own calls (its batch plan), encoded on its own.
        rows = [np.asarray(r, dtype=np.int64) for r in batch["rows"]]
        vectors = [self.embedder.encode([str(t) for t in texts]) for texts in batch["texts"]]
        return {"row": np.concatenate(rows), "vector": np.vstack(vectors).astype(np.float32)}


class PoolEmbedder:
    """``local``'s model run by ``actors`` Ray actors; its name, dimension and cache name are ``local``'s."""

    def __init__(self, local: Embedder, actors: int = 2, batch_size: int = BATCH_TEXTS) -> None:
        self.local = local
        self.name = local.name
        self.cache_name = vectors_name(local)
        self.backend = getattr(local, "backend", None)
        self.actors = max(1, actors)
        self.batch_size = batch_size
        self.calls = 0  # how many times the pool ran (a test checks the cache spares it)

    @property
    def dim(self) -> int:
        return self.local.dim

    def _spec(self) -> tuple[str, str | None, str | None]:
        precision = getattr(self.local, "precision", None)
        backend = getattr(self.local, "backend", None)
        return self.local.name, precision, backend

    def batch_plan(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The local model's own groups (its ``batch_plan``: int8 vectors depend on batch-mates), else slices."""
        plan = getattr(self.local, "batch_plan", None)
        if plan is not None:
            return plan(texts)
        return [np.arange(start, min(start + self.batch_size, len(texts))) for start in range(0, len(texts), self.batch_size)]

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        import ray.data

        self.calls += 1
        plan = self.batch_plan(texts)
        frame = pd.DataFrame({"rows": [rows.tolist() for rows in plan], "texts": [[texts[i] for i in rows] for rows in plan]})
        actors = min(self.actors, len(plan))
        # Blocks made here, not by a repartition task: the pool's actors may hold every CPU of a small cluster.
        per_block = max(1, -(-len(plan) // (4 * actors)))
        blocks = [frame.iloc[i : i + per_block] for i in range(0, len(frame), per_block)]
        encoder = type("EncodeTexts", (_EncodeTexts,), {"SPEC": self._spec()})
        vectors = (
            ray.data.from_pandas(blocks)
            .map_batches(encoder, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors))
        )
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
            out[batch["row"]] = np.asarray(batch["vector"], dtype=np.float32)
            done += len(batch["row"])
            if progress is not None:
                progress(done, len(texts))
        return out
