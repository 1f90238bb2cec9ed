"""Fit the two levels of a run: the top level's tree of sub-segments, with why that depth.

The top level is a fitted :class:`~tools.segment.clustering.SegmentModel`; this
module decides how far to split it (tools/segment/hierarchy.py) and records
the figures behind the choice for ``segments.json``:

- with a usable time split (tools/segment/outlook.py), the outlook model is
  fitted on every user's past; the past of a sample of at most
  ``SELECTION_USERS`` users is profiled and segmented exactly as the run was,
  the candidate depths are scored on what those users did after the cut (with
  outlook scores cross-fitted, so no one's own future shapes their split), and
  every top-level k is scored the same way (its held-out usefulness is reported
  beside its stability);
- without one, the depth is chosen by the held-out share of behaviour explained.

When the top level is not reproducible (no k reaches prediction strength 0.8,
``KChoice.reproducible``) and the outlook is usable, the splits are grown from
all users as one group instead, tried on the past the same way, and their
leaves are the run's segments (a one-level run, ``Tree.root``): sub-segments
nested in groups another sample would cut elsewhere must each re-split the
same range of outlook, so at equal count they predict less (Complete Journey,
best prediction strength 0.73: with 8 segments, held-out AUC 0.788 nested in
its k=5 against 0.835 cut from all users). A split of everyone that predicts no
better than no split keeps the top level as it is.

Every random draw of these checks uses ``VALIDATION_SEED``, not the run's
seed: the seed changes how the segments are fitted, never how deep they go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder
from tools.segment.clustering import SegmentModel
from tools.segment.features import BehaviourFeatures, compute_features
from tools.segment.hierarchy import (
    DepthChoice,
    Tree,
    build_root_tree,
    build_tree,
    choose_depth_by_outlook,
    choose_depth_by_profile,
)
from tools.segment.outlook import Outlook, choose_outlook, time_split
from tools.segment.profiles import Profiles, build_profiles
from tools.segment.usefulness import usefulness

SELECTION_USERS = 5000
OUTLOOK_USERS = 20000  # the outlook's ridge learns from at most this many users' past
VALIDATION_SEED = 0
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Levels:
    """The fitted hierarchy of a run and why it is that deep."""

    tree: Tree
    depth: DepthChoice | None  # None for a flat run
    split: dict | None  # the time split used (TimeSplit.as_dict)
    outlook: Outlook | None
    top_usefulness: dict[int, dict]  # top-level k -> held-out AUC / R² on the time split
    # The outlook space is the outlook's two predictions, centred and scaled by the fitted users' own.
    space_centre: np.ndarray | None = None
    space_scale: np.ndarray | None = None

    @property
    def space(self) -> str | None:
        return None if self.depth is None else self.depth.space

    @property
    def root(self) -> bool:
        """The segments were cut from all users (no reproducible top level): a one-level run."""
        return self.tree.root


def flat_levels(labels: np.ndarray) -> Levels:
    """A one-level run (``--k N``, text-only data, HDBSCAN): every segment is a top-level leaf."""
    return Levels(build_tree(labels, None, 0), None, None, None, {})


def _sample(n: int, cap: int = SELECTION_USERS) -> np.ndarray:
    """Sorted rows of at most ``cap`` of ``n`` users (the same for every run on the same users)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(VALIDATION_SEED).choice(n, size=cap, replace=False))


def _top_usefulness(model: SegmentModel, past: Profiles, active: np.ndarray, value: np.ndarray, ks: list[int]) -> dict[int, dict]:
    """Held-out AUC / R² of each top-level k, cut from one Ward tree of the past's smoothed profiles."""
    from scipy.cluster.hierarchy import fcluster, linkage

    xs = model.smoothed(past.fused)
    tree = linkage(xs.astype(np.float64), method="ward")
    out = {}
    for k in ks:
        if k >= len(xs):
            continue
        cut = fcluster(tree, k, criterion="maxclust") - 1
        u = usefulness(cut, active, value)
        out[k] = {"auc": round(u.auc, 4), "r2": round(u.r2, 4)}
    return out


def _rows(features: BehaviourFeatures, rows: np.ndarray) -> BehaviourFeatures:
    return replace(features, user_ids=features.user_ids[rows], raw=features.raw[rows], scaled=features.scaled[rows])


def _only(data: Dataset, user_ids: np.ndarray) -> Dataset:
    """``data`` restricted to ``user_ids`` and the items they touched (fewer texts to look up in the cache)."""
    events = data.events[data.events["user_id"].isin(pd.Index(user_ids))].reset_index(drop=True)
    items = data.items
    if items is not None:
        items = items[items["item_id"].isin(pd.Index(pd.unique(events["item_id"].dropna())))].reset_index(drop=True)
    return replace(data, events=events, items=items)


def fit_levels(
    data: Dataset,
    profiles: Profiles,
    model: SegmentModel,
    make_model: Callable[[int, int], SegmentModel],
    embedder: Embedder,
    cache: EmbeddingCache,
    max_leaves: int,
    progress: ProgressFn | None = None,
) -> Levels:
    """Split ``model``'s top level into sub-segments as deep as held-out usefulness says (module docstring)."""
    report = progress or (lambda stage, done, total: None)
    top = model.labels_
    k_top = int(model.k_)
    max_splits = max(0, max_leaves - k_top)
    if max_splits == 0 or profiles.features is None:
        return flat_levels(top)
    reproducible = model.k_choice_ is None or model.k_choice_.reproducible
    report("choosing depth", 0, 2)
    split = time_split(data)
    past = None
    if split is not None and len(split.user_ids) >= 10 * k_top:
        # The outlook learns from (at most OUTLOOK_USERS) users' past; the depth is tried on a sample of those.
        # The depth is chosen order-blind (the outlook and the past's profiles): with the order block the
        # sample's leaves grew from 10 to 12-16 (3,000 users; 7 to 11 of 600, named less distinctly: label
        # distinctiveness 0.80 -> 0.48) and their planted ARI fell from 0.64 to 0.43-0.53, for no gain at the top.
        past_features = compute_features(split.past, split.user_ids, order=False)
        learn = _sample(len(split.user_ids), OUTLOOK_USERS)
        outlook, crossed = choose_outlook(_rows(past_features, learn), split.active[learn], split.value[learn], VALIDATION_SEED)
        pick = _sample(len(learn))  # the depth is tried on some of the users the outlook was cross-fitted on
        chosen = split.user_ids[learn[pick]]
        past = build_profiles(_only(split.past, chosen), embedder, cache, alpha=profiles.alpha, order=False)
        order = pd.Index(chosen).get_indexer(past.user_ids)
        active, value = split.active[learn[pick]][order], split.value[learn[pick]][order]
        scores = crossed[pick][order]
    describe_by = None
    from_root = False
    if past is not None and past.features is not None:
        past_model = make_model(k_top, VALIDATION_SEED).fit(past.fused)
        if not reproducible:  # no top level worth nesting in: try cutting everyone along the outlook
            everyone = np.zeros(len(past_model.labels_), dtype=np.int64)
            depth = choose_depth_by_outlook(everyone, scores, active, value, max_leaves - 1, VALIDATION_SEED, base="no segments")
            from_root = depth.splits > 0
        if not from_root:
            depth = choose_depth_by_outlook(past_model.labels_, scores, active, value, max_splits, VALIDATION_SEED)
        ks = [c.k for c in model.k_choice_.candidates] if model.k_choice_ is not None else [k_top]
        top_useful = _top_usefulness(past_model, past, active, value, ks)
        pred = outlook.predict(profiles.features)
        centre, std = pred.mean(axis=0), pred.std(axis=0)
        scale = np.where(std > 1e-12, std, 1.0)
        space = ((pred - centre) / scale).astype(np.float32)  # outlook.scores(), with the figures kept
    else:
        centre = scale = None
        rows = _sample(len(profiles.user_ids))
        smoothed = model.smoothed(profiles.fused)
        depth = choose_depth_by_profile(top[rows], smoothed[rows], profiles.features.scaled[rows], max_splits, VALIDATION_SEED)
        space, outlook, top_useful, split = smoothed, None, {}, None
        describe_by = profiles.features.scaled  # profile splits must be describable (hierarchy.grow_splits)
    report("choosing depth", 1, 2)
    gain = "usefulness" if depth.space == "outlook" else "variance"
    tree = build_root_tree(space, depth.splits, gain) if from_root else build_tree(top, space, depth.splits, gain, describe_by)
    report("choosing depth", 2, 2)
    return Levels(tree, depth, None if split is None else split.as_dict(), outlook, top_useful, centre, scale)


def assign_levels(levels: Levels, model: SegmentModel, profiles: Profiles) -> tuple[np.ndarray, np.ndarray]:
    """(top-level, leaf) segments of users the run was not fitted on (flagged outliers), from the fitted model alone.

    The top level is the nearest centroid after the fit's smoothing (``model.predict``);
    the sub-segments follow the tree's splits in the space they were made in: the outlook
    scores standardised by the fitted users' figures, or the smoothed profiles. In a run
    cut from all users (``Levels.root``) there is no top level to nest in: everyone starts
    at the root, the splits alone make the segments, and each user's top is its leaf.
    """
    tree = levels.tree
    n = len(profiles.user_ids)
    top = np.zeros(n, dtype=np.int64) if tree.root else model.predict(profiles.fused)
    if not tree.splits:
        leaf = tree.predict(top, np.zeros((n, 0), dtype=np.float32))
    elif levels.space == "outlook" and levels.outlook is not None and profiles.features is not None:
        space = ((levels.outlook.predict(profiles.features) - levels.space_centre) / levels.space_scale).astype(np.float32)
        leaf = tree.predict(top, space)
    else:
        leaf = tree.predict(top, model.smoothed(profiles.fused))
    return (leaf if tree.root else top), leaf
