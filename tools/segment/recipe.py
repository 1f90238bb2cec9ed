"""What a fitted run's profiles depend on beyond each user's own events, frozen so later users are profiled alike.

A profile (tools/segment/profiles.py) is mostly a user's own business: the items
they touched, what they wrote, their orders. A few steps look at everyone:

- the behaviour features' columns (which categories and event types) and their
  scaling (medians, means, standard deviations: tools/segment/features.py);
- the fusion's centring and unit total variance of each block (text, behaviour, and the
  order block of tools/segment/sequence.py, weighed on its own so that it adds the order
  of events without diluting the counts and shares);
- the top rating, which weighs ratings;
- without texts, the collaborative vectors' SVD of the user-item matrix.

A :class:`ProfileRecipe` records those steps as fitted on a run's users. The fit
applies it to its own users, and ``segscope assign`` / ``drift`` apply the same
recipe to new data, so a user with the same events gets the same profile bit for
bit, and a new user lands in the run's space rather than in one of its own making.
A recipe is derived from what every run saves (profiles.npz and events.parquet), so
runs made before it existed can assign too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tools.core.linalg import normalize_rows
from tools.segment.features import BehaviourFeatures, FeatureLayout, layout_of
from tools.segment.sequence import ORDER_WEIGHT, order_mask

COLLABORATIVE_DIM = 32
RATING_TYPES = ("rating", "review")


@dataclass(frozen=True)
class BlockScale:
    """Centre a block on the fitted users' mean and divide by the root of their mean squared norm."""

    mean: np.ndarray  # (1, d), the block's dtype
    total: float  # mean squared norm of the centred rows

    @classmethod
    def of(cls, block: np.ndarray, reference: np.ndarray | None = None) -> BlockScale:
        """Fitted on the ``reference`` rows (a mask; None: all): flagged outliers move neither figure."""
        rows = block if reference is None else block[np.asarray(reference, dtype=bool)]
        mean = rows.mean(axis=0, keepdims=True)
        # Each row's squared norm in float64, 8,192 rows at a time (the same sums as the whole block at once,
        # without a float64 copy of it), then their mean.
        norms = np.empty(len(rows))
        for start in range(0, len(rows), 8192):
            centred = (rows[start : start + 8192] - mean).astype(np.float64)
            norms[start : start + len(centred)] = (centred * centred).sum(axis=1)
        return cls(mean, float(norms.mean()))

    def apply(self, block: np.ndarray) -> np.ndarray:
        centred = block - self.mean
        return (centred / np.sqrt(self.total)).astype(np.float32) if self.total > 1e-12 else centred.astype(np.float32)


@dataclass(frozen=True)
class CollaborativeBasis:
    """TF-IDF weights of the fitted catalogue and the truncated SVD axes of its user-item matrix."""

    item_ids: np.ndarray  # str
    idf: np.ndarray
    components: np.ndarray  # (k, n_items); empty when there was nothing to factorise

    @classmethod
    def fit(cls, events: pd.DataFrame, user_ids: np.ndarray, dim: int = COLLABORATIVE_DIM,
            reference: np.ndarray | None = None) -> CollaborativeBasis:
        """The weights and axes of the ``reference`` users' rows (a mask over ``user_ids``; None: all)."""
        from sklearn.decomposition import TruncatedSVD

        items = np.asarray(pd.unique(events["item_id"].dropna().astype(str)), dtype=object)
        counts = _user_items(events, user_ids, items)
        if reference is not None:
            counts = counts[np.flatnonzero(np.asarray(reference, dtype=bool))]
        n_users, n_items = counts.shape
        idf = np.log((1 + n_users) / (1 + np.asarray((counts > 0).sum(axis=0)).ravel())) + 1
        k = min(dim, n_items - 1, n_users - 1)
        if k < 1:
            return cls(items, idf, np.zeros((0, n_items)))
        with warnings.catch_warnings():  # identical users make the explained variance 0/0; that is their answer
            warnings.simplefilter("ignore", RuntimeWarning)
            svd = TruncatedSVD(n_components=k, random_state=0).fit(counts @ sp.diags(idf))
        return cls(items, idf, svd.components_)

    def project(self, events: pd.DataFrame, user_ids: np.ndarray) -> np.ndarray:
        """Each user's row of the matrix (items outside the fitted catalogue ignored) on the axes, L2-normalised."""
        if not len(self.components):
            return np.zeros((len(user_ids), 1), dtype=np.float32)
        matrix = _user_items(events, user_ids, self.item_ids) @ sp.diags(self.idf)
        vectors = np.asarray(matrix @ self.components.T)
        return normalize_rows(np.nan_to_num(vectors).astype(np.float32))


def _user_items(events: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix:
    from tools.data.interactions import InteractionMatrix, interaction_pairs

    if not events["item_id"].notna().any():
        return sp.csr_matrix((len(user_ids), len(item_ids)), dtype=np.float32)
    # Pairs outside the fitted catalogue are dropped: a new item has no axis to load on.
    return InteractionMatrix.from_pairs(interaction_pairs(events), user_ids=user_ids, item_ids=item_ids).csr


@dataclass(frozen=True)
class ProfileRecipe:
    """Everything population-wide a run's profiles used (module docstring)."""

    alpha: float  # the share of the fusion text decides (0 when the data has no text to decide with)
    text_source: str  # "embedder" | "collaborative" | "none"
    rating_max: float | None
    features: FeatureLayout | None
    text_scale: BlockScale | None  # None when there is no behaviour block (profiles are the text vectors)
    behaviour_scale: BlockScale | None
    collaborative: CollaborativeBasis | None = None
    order_scale: BlockScale | None = None  # the order block's (None: the features have none)
    order_weight: float = 0.0  # its total variance in the fused profile

    def fuse(self, text: np.ndarray, behaviour: np.ndarray | None) -> np.ndarray:
        """C = √α·ẑ ⊕ √(1−α)·x̂ ⊕ √w·ô with the fitted centring and scaling (tools/segment/profiles.py);
        ô, the order block, only when the features have one."""
        if behaviour is None or behaviour.shape[1] == 0 or self.text_scale is None or self.behaviour_scale is None:
            return text.astype(np.float32)
        z = self.text_scale.apply(text)
        return np.hstack([np.sqrt(self.alpha) * z, *self._behaviour_blocks(behaviour)]).astype(np.float32)

    @property
    def text_width(self) -> int:
        """How many leading columns of a fused profile are its text block."""
        return 0 if self.text_scale is None else int(self.text_scale.mean.shape[1])

    def behaviour_columns(self, behaviour: np.ndarray) -> np.ndarray:
        """The fused profile's columns after ``text_width``, from ``behaviour``: what ``fuse`` puts there, bit for
        bit (each block is cast on its own either way). An update whose data's end moved changes only everyone's
        recency: it rewrites these columns and keeps the text block as the run saved it."""
        return np.hstack([b.astype(np.float32) for b in self._behaviour_blocks(behaviour)])

    def _behaviour_blocks(self, behaviour: np.ndarray) -> list[np.ndarray]:
        """√(1−α)·x̂ and, when the features have one, √w·ô, before the cast to float32."""
        ordered = self.order_columns(behaviour.shape[1])
        x = self.behaviour_scale.apply(_columns(behaviour, ~ordered))  # type: ignore[union-attr]
        blocks = [np.sqrt(1.0 - self.alpha) * x]
        if self.order_scale is not None and ordered.any():
            blocks.append(np.sqrt(self.order_weight) * self.order_scale.apply(_columns(behaviour, ordered)))
        return blocks

    def order_columns(self, n_columns: int) -> np.ndarray:
        """Which behaviour columns are the order block (none without a layout that names any)."""
        if self.features is None or self.order_scale is None:
            return np.zeros(n_columns, dtype=bool)
        return order_mask(self.features.names)


def _columns(block: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ``mask`` columns of ``block``, row-major: a column selection can come out column-major, and a mean
    summed in another memory order differs in the last bit (a fit and its re-assign must agree bit for bit)."""
    return np.ascontiguousarray(block[:, mask])


def rating_max(events: pd.DataFrame) -> float | None:
    """The top rating in ``events`` (what a rating is weighed against), None without ratings."""
    value = events["value"].to_numpy(dtype=np.float64)
    rated = events["event_type"].astype(str).isin(RATING_TYPES).to_numpy() & np.isfinite(value)
    return max(float(np.nanmax(value[rated])), 1e-9) if rated.any() else None


def fit_recipe(
    events: pd.DataFrame,
    user_ids: np.ndarray,
    text: np.ndarray | None,
    features: BehaviourFeatures | None,
    alpha: float,
    text_source: str,
    collaborative: CollaborativeBasis | None = None,
    population: np.ndarray | None = None,
    order_weight: float = ORDER_WEIGHT,
    text_scale: BlockScale | None = None,
) -> ProfileRecipe:
    """The recipe of profiles fitted on ``events``: ``text`` and ``features`` are its users' blocks, before fusion.

    ``population`` (a mask over ``user_ids``; None: all) names the users it is fitted on: a run
    leaves its flagged outliers out (RunState.fitted), and so does the recipe derived from it.
    ``text_scale``, when given, is the text block's scaling as already fitted on those users (profiles kept
    in parts sum it part by part: tools/distributed/engine.py); ``text`` is then not read and may be None.
    """
    has_behaviour = features is not None and features.raw.shape[1] > 0
    ordered = order_mask(features.names) if has_behaviour else np.zeros(0, dtype=bool)  # type: ignore[union-attr]
    has_behaviour = has_behaviour and not ordered.all()  # an order block beside nothing else is no behaviour block
    if text_source == "collaborative" and collaborative is None:
        collaborative = CollaborativeBasis.fit(events, user_ids, reference=population)
    fitted_events = events
    if population is not None:  # only what rating_max reads: the whole table would be copied for two columns
        kept = events["user_id"].isin(pd.Index(np.asarray(user_ids)[np.asarray(population, dtype=bool)])).to_numpy()
        fitted_events = events.loc[kept, ["event_type", "value"]]
    return ProfileRecipe(
        alpha=alpha,
        text_source=text_source,
        rating_max=rating_max(fitted_events) or rating_max(events),
        features=None if features is None else layout_of(features, events, population),
        text_scale=(text_scale or BlockScale.of(text, population)) if has_behaviour else None,
        behaviour_scale=BlockScale.of(_columns(features.scaled, ~ordered), population) if has_behaviour else None,  # type: ignore[union-attr]
        collaborative=collaborative if text_source == "collaborative" else None,
        order_scale=BlockScale.of(_columns(features.scaled, ordered), population) if has_behaviour and ordered.any() else None,  # type: ignore[union-attr]
        order_weight=order_weight if has_behaviour and ordered.any() else 0.0,
    )
