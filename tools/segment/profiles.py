"""User profiles: a text vector from what users touched and wrote, fused with behaviour.

Text vector: the weighted mean of the embeddings of the items a user interacted
with (item text = title + category + description) and of the texts they wrote
(reviews, tags, messages), then L2-normalised. Weights grow with commitment
(view < cart < purchase; higher ratings weigh more) and decay with age relative
to the user's own latest event (half-life one year), so a profile leans towards
current taste.

Fusion: C = √α·ẑ ⊕ √(1−α)·x̂, where ẑ is the centred text block and x̂ the
standardised behaviour block, each scaled to unit total variance. The squared
distance between two users is then α·(text distance) + (1−α)·(behaviour
distance) with both on the same scale: α is the share of the segmentation that
text decides. Text-only data has no behaviour block: C = z. The order of events
(tools/segment/sequence.py), where the data has one, is a third block ô beside them,
C = √α·ẑ ⊕ √(1−α)·x̂ ⊕ √w·ô at unit total variance times its weight w: it adds the
order to the distances without diluting the counts and shares (``order=False``: none).

Whatever in these steps looks at all users (feature scaling, centring, the top
rating, the collaborative SVD) is a :class:`~tools.segment.recipe.ProfileRecipe`;
passing a fitted run's recipe profiles later data in that run's space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tools.core.dataset import Dataset
from tools.core.errors import ParameterError
from tools.core.linalg import normalize_rows
from tools.data.items import item_texts
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder
from tools.segment.features import BehaviourFeatures, compute_features
from tools.segment.recipe import BlockScale, CollaborativeBasis, ProfileRecipe, fit_recipe, rating_max

DEFAULT_ALPHA = 0.5
EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "cart": 2.0, "wishlist": 2.0, "purchase": 3.0, "rating": 2.0, "review": 2.0, "tag": 2.0}
TEXT_WEIGHT = 2.0
HALF_LIFE_DAYS = 365.0
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Profiles:
    user_ids: np.ndarray  # str
    text: np.ndarray  # (n_users, d) float32, L2-normalised (zero rows for users with no text)
    features: BehaviourFeatures | None
    fused: np.ndarray  # what clustering sees
    alpha: float
    item_ids: np.ndarray  # str, rows of item_vectors
    item_vectors: np.ndarray  # (n_items, d) float32
    n_texts_embedded: int  # distinct texts the embedder actually ran on this time
    n_texts_total: int  # distinct texts the profiles needed
    text_source: str = "embedder"  # "collaborative" when the data has no text, "none" when it has no items either
    recipe: ProfileRecipe | None = None  # what was fitted on all users (tools/segment/recipe.py)

    @property
    def feature_names(self) -> list[str]:
        return [] if self.features is None else self.features.names

    def rows(self, rows: np.ndarray) -> Profiles:
        """These profiles for the users in ``rows`` only (indices or a boolean mask), scaled as they are."""
        feats = self.features
        if feats is not None:
            feats = replace(feats, user_ids=feats.user_ids[rows], raw=feats.raw[rows], scaled=feats.scaled[rows])
        return replace(self, user_ids=self.user_ids[rows], text=self.text[rows], features=feats, fused=self.fused[rows])


def _unit_variance(block: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    return BlockScale.of(block, reference).apply(block)


def fuse(text: np.ndarray, behaviour: np.ndarray | None, alpha: float, reference: np.ndarray | None = None) -> np.ndarray:
    """C = √α·ẑ ⊕ √(1−α)·x̂, each block at unit total variance (see module docstring) over the ``reference`` rows."""
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be between 0 and 1, got {alpha}", "use e.g. --alpha 0.5")
    if behaviour is None or behaviour.shape[1] == 0:
        return text.astype(np.float32)
    z = _unit_variance(text, reference)
    x = _unit_variance(behaviour, reference)
    return np.hstack([np.sqrt(alpha) * z, np.sqrt(1.0 - alpha) * x]).astype(np.float32)


def _event_weights(ev: pd.DataFrame, top_rating: float | None = None) -> np.ndarray:
    """Each event's weight in its user's text vector; ratings weigh against ``top_rating`` (else the events' own top)."""
    etype = ev["event_type"].astype(str)
    w = etype.map(EVENT_WEIGHTS).fillna(1.0).to_numpy(dtype=np.float64, copy=True)
    value = ev["value"].to_numpy(dtype=np.float64)
    rated = etype.isin(["rating", "review"]).to_numpy() & np.isfinite(value)
    if rated.any():
        vmax = top_rating or rating_max(ev) or 1e-9
        # A 5-star rating weighs about 4x a 1-star one: liked items define taste.
        w[rated] *= 0.25 + (np.clip(value[rated], 0, None) / vmax) ** 2
    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    if np.isfinite(ts).any():
        last = ev.assign(_t=ts).groupby("user_id")["_t"].transform("max").to_numpy(dtype=np.float64)
        age_days = np.nan_to_num((last - ts) / 86400.0, nan=0.0)
        w *= 0.5 ** (np.clip(age_days, 0, None) / HALF_LIFE_DAYS)
    return w


def build_profiles(
    data: Dataset,
    embedder: Embedder,
    cache: EmbeddingCache,
    alpha: float = DEFAULT_ALPHA,
    progress: StageProgress | None = None,
    exclude: np.ndarray | None = None,
    recipe: ProfileRecipe | None = None,
    order: bool = True,
) -> Profiles:
    """Embed every distinct text once (through the cache) and build fused user profiles.

    Users in ``exclude`` (flagged outliers) get profiles too, but their values take no part
    in the scaling: profiles of everyone else are what they would be without them. With
    ``recipe`` (a fitted run's), the profiles are in that run's space and ``alpha`` is the recipe's.
    ``order`` False profiles without the order of events (order-blind; a recipe says for itself).
    """
    report = progress or (lambda stage, done, total: None)
    ev = data.events
    user_ids = np.asarray(pd.unique(ev["user_id"]), dtype=object)
    uidx = pd.Index(user_ids)
    population = None if exclude is None or not len(exclude) else ~uidx.isin(pd.Index(exclude))
    n_users = len(user_ids)
    misses_before = cache.misses

    item_ids, item_text_list = _catalogue_texts(data)
    written_pos, written_texts, distinct_written = _written_texts(ev)

    total = len(item_text_list) + len(distinct_written)
    # One call for both kinds of text: the embedder batches (and parallelises) across all of them.
    vectors = cache.embed(
        item_text_list + list(distinct_written), embedder, progress=lambda done, n: report("embedding texts", done, n)
    )
    cache.save()
    item_vectors, written_vectors = vectors[: len(item_text_list)], vectors[len(item_text_list) :]
    dim = vectors.shape[1] if len(vectors) else embedder.dim

    report("building profiles", 0, 1)
    rows = uidx.get_indexer(ev["user_id"])
    if recipe is not None:
        top_rating = recipe.rating_max
    else:  # the population's rating scale (flagged outliers' ratings do not set it)
        top_rating = rating_max(ev if population is None else ev[population[rows]])
    weights = _event_weights(ev, top_rating) if data.kind == "behaviour" else np.ones(len(ev))
    text_matrix = np.zeros((n_users, dim), dtype=np.float32)
    if len(item_ids):
        cols = pd.Index(item_ids).get_indexer(ev["item_id"])
        ok = cols >= 0
        w_items = sp.csr_matrix((weights[ok], (rows[ok], cols[ok])), shape=(n_users, len(item_ids)))
        text_matrix += (w_items @ item_vectors).astype(np.float32)
    if len(distinct_written):
        pos = written_pos
        cols = pd.Index(distinct_written).get_indexer(written_texts.to_numpy())
        w_text = sp.csr_matrix(
            (weights[pos] * (TEXT_WEIGHT if data.kind == "behaviour" else 1.0), (rows[pos], cols)),
            shape=(n_users, len(distinct_written)),
        )
        text_matrix += (w_text @ written_vectors).astype(np.float32)
    text_matrix = normalize_rows(text_matrix).astype(np.float32, copy=False)
    layout = None if recipe is None else recipe.features
    features = compute_features(data, user_ids, population, layout, order) if data.kind == "behaviour" else None
    if recipe is None:
        text_source = "embedder"
        if data.kind == "behaviour" and not len(item_ids) and not len(distinct_written):
            # No titles, descriptions or reviews: what users consumed is still telling; nothing (CDNOW): behaviour only.
            text_source, alpha = ("collaborative", alpha) if ev["item_id"].notna().any() else ("none", 0.0)
    else:
        text_source, alpha = recipe.text_source, recipe.alpha
    basis = None
    if text_source == "collaborative":
        basis = CollaborativeBasis.fit(ev, user_ids, reference=population) if recipe is None else recipe.collaborative
        text_matrix = basis.project(ev, user_ids)  # type: ignore[union-attr]
    elif text_source == "none":
        text_matrix = np.zeros((n_users, 1), dtype=np.float32)  # one empty column, not 384
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be between 0 and 1, got {alpha}", "use e.g. --alpha 0.5")
    if recipe is None:
        recipe = fit_recipe(ev, user_ids, text_matrix, features, alpha, text_source, basis, population)
    fused = recipe.fuse(text_matrix, None if features is None else features.scaled)
    report("building profiles", 1, 1)
    return Profiles(
        user_ids=user_ids,
        text=text_matrix,
        features=features,
        fused=fused,
        alpha=alpha if features is not None else 1.0,
        item_ids=item_ids,
        item_vectors=item_vectors,
        n_texts_embedded=cache.misses - misses_before,
        n_texts_total=total,
        text_source=text_source,
        recipe=recipe,
    )


def _catalogue_texts(data: Dataset) -> tuple[np.ndarray, list[str]]:
    """(item ids, their texts): the whole catalogue, so the recommender can score every item."""
    if data.items is None or not len(data.items):
        return np.asarray([], dtype=object), []
    texts = item_texts(data.items)
    has_text = texts.str.len().to_numpy() > 0
    return data.items["item_id"].to_numpy(dtype=object)[has_text], texts[has_text].tolist()


def _written_texts(ev: pd.DataFrame) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """(positions of the events with a text, their texts, the distinct texts) for the texts users wrote."""
    written_pos = np.flatnonzero(ev["text"].notna().to_numpy())
    written_texts = ev["text"].iloc[written_pos].astype(str)
    nonempty = written_texts.str.strip().str.len().to_numpy() > 0
    written_pos, written_texts = written_pos[nonempty], written_texts[nonempty]
    return written_pos, written_texts, pd.unique(written_texts.to_numpy())


def profile_texts(data: Dataset) -> list[str]:
    """Every distinct text :func:`build_profiles` embeds for ``data``: the catalogue's, then what users wrote.

    A run profiled in parts embeds these once, up front, so each part finds them all in the cache.
    """
    _, catalogue = _catalogue_texts(data)
    return catalogue + list(_written_texts(data.events)[2])


def collaborative_vectors(ev: pd.DataFrame, user_ids: np.ndarray, dim: int = 32, reference: np.ndarray | None = None) -> np.ndarray:
    """Low-rank user vectors from the user-item matrix (TF-IDF weighted, truncated SVD axes), L2-normalised.

    The weights and the axes are learned from the ``reference`` rows (all when None), then applied to everyone.
    """
    return CollaborativeBasis.fit(ev, user_ids, dim, reference).project(ev, user_ids)
