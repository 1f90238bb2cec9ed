"""Where the per-user work of a run happens: this process, or a cluster (tools/distributed).

An engine builds every user's profile and places the users the model was not fitted on. Both
engines call the same functions (tools/segment/profiles.py, tools/segment/levels.py), so an
engine changes where the work runs, never what it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tools.core.dataset import Dataset
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder
from tools.segment.clustering import SegmentModel
from tools.segment.levels import Levels, assign_levels
from tools.segment.parts import ProfileParts
from tools.segment.profiles import Profiles, build_profiles
from tools.segment.recipe import ProfileRecipe

StageProgress = Callable[[str, int, int], None]


class Engine(Protocol):
    """Where the per-user work of a run happens: this process (:class:`LocalEngine`) or a cluster (tools/distributed).

    Both build profiles with tools/segment/profiles.py and place users with tools/segment/levels.py, so an
    engine changes where the work runs, never what it computes. ``fit_users`` caps how many users the
    model is fitted on (None: all of them; past the cap a seeded sample, and the engine places the rest).
    """

    name: str
    fit_users: int | None
    stats: dict[str, float]  # the engine's own stage seconds and volumes of the last run, added to its timings.json

    def build_profiles(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, alpha: float,
                       progress: StageProgress, exclude: np.ndarray | None, order: bool = True,
                       scratch: Path | None = None) -> Profiles | ProfileParts:
        """Every user's profile; an engine may keep them as parts in a folder of ``scratch`` (tools/segment/parts.py)."""
        ...

    def place_parts(self, levels: Levels, model: SegmentModel, parts: ProfileParts, placed: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(top, leaf) of the ``placed`` rows (a mask) of profiles this engine kept in parts; -1 elsewhere."""
        ...

    def assign_levels(self, levels: Levels, model: SegmentModel, profiles: Profiles) -> tuple[np.ndarray, np.ndarray]: ...

    def profiles_like(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, recipe: ProfileRecipe,
                      progress: StageProgress | None = None) -> Profiles:
        """Every user's profile in a fitted run's space (``recipe``: its scaling and layout, nothing re-fitted)."""
        ...

    def top_k(self, recommender: Any, k: int) -> Any:
        """Every user's top-``k`` of a fitted ``HybridRecommender`` (tools/recommend), as its ``top_k(None, k)``."""
        ...


class LocalEngine:
    """Everything in this process: the default."""

    name = "local"
    fit_users: int | None = None

    @property
    def stats(self) -> dict[str, float]:
        return {}  # its stages are the pipeline's own

    def build_profiles(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, alpha: float,
                       progress: StageProgress, exclude: np.ndarray | None, order: bool = True,
                       scratch: Path | None = None) -> Profiles:
        return build_profiles(data, embedder, cache, alpha=alpha, progress=progress, exclude=exclude, order=order)

    def assign_levels(self, levels: Levels, model: SegmentModel, profiles: Profiles) -> tuple[np.ndarray, np.ndarray]:
        return assign_levels(levels, model, profiles)

    def profiles_like(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, recipe: ProfileRecipe,
                      progress: StageProgress | None = None) -> Profiles:
        return build_profiles(data, embedder, cache, progress=progress, recipe=recipe)

    def place_parts(self, levels: Levels, model: SegmentModel, parts: ProfileParts, placed: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        top, leaf = np.full(len(placed), -1, dtype=np.int64), np.full(len(placed), -1, dtype=np.int64)
        for i, rows in enumerate(parts.rows_of):
            inside = np.flatnonzero(placed[rows])
            if len(inside):
                top[rows[inside]], leaf[rows[inside]] = assign_levels(levels, model, parts.part(i).rows(inside))
        return top, leaf

    def top_k(self, recommender: Any, k: int) -> Any:
        return recommender.top_k(None, k=k)


LOCAL = LocalEngine()


def fit_sample(fitted: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """The rows the model is fitted on: every ``fitted`` row, or a seeded sample of ``cap`` of them past the cap."""
    rows = np.flatnonzero(fitted)
    if cap is None or len(rows) <= cap:
        return fitted
    chosen = np.zeros(len(fitted), dtype=bool)
    chosen[np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))] = True
    return chosen
