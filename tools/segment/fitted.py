"""A run's fitted segments loaded back from model.npz, to place users the way the fit placed its own.

What tools/pipeline.py ``save_model`` writes: the top level (a
:class:`~tools.segment.clustering.SegmentModel`'s centroids and smoothing
reference, or a :class:`~tools.segment.text_clusters.TextSegmentModel`'s
reference texts and centroids, its graph rebuilt), the sub-segment splits with
the space they cut (the outlook or the smoothed profiles) and the outlook model.
The outlook space is standardised over the fitted users; that standardisation is
recomputed from their saved features and kept, so later users are measured on
the fit's scale, never on their own.

Placing a user: the top level is the nearest centroid after smoothing (or
diffusion), the leaf follows the splits down. Distances are Euclidean, in the
space the top level assigns in (smoothed profiles, or diffused texts), to every
top-level centroid: the nearest is the user's own segment.

A run cut from all users (``root`` in model.npz, tools/segment/levels.py) has no
top level to assign to: everyone starts at internal leaf 0 and follows the splits
down, and the leaves are the top-level segments. Distances are then to each
segment's mean smoothed profile (``segment_centroids``), so the user's own segment
need not be the nearest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.core.errors import WorkspaceError
from tools.segment.clustering import SegmentModel, nearest_centroid
from tools.segment.features import BehaviourFeatures
from tools.segment.hierarchy import Split, apply_splits
from tools.segment.outlook import Outlook
from tools.segment.resmooth import Candidates
from tools.segment.text_clusters import TextSegmentModel


@dataclass(frozen=True)
class Placement:
    """Where each user lands: leaf and top-level ids, and distances to every top-level centroid."""

    leaf: np.ndarray  # int64, the segment a user is assigned to
    top: np.ndarray  # int64, its top-level segment
    distances: np.ndarray  # (n, k_top) float64
    space: np.ndarray  # (n, d) the users in the space the top level assigns in
    candidates: Candidates | None = None  # each user's smoothing candidates (tools/segment/resmooth.py); None: not kept
    searched: int | None = None  # users whose smoothing searched the whole reference (None: not counted)

    @property
    def own_distance(self) -> np.ndarray:
        return self.distances[np.arange(len(self.top)), self.top]

    def next_nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """(id, distance) of the nearest top-level segment other than the user's own (-1, nan with one segment)."""
        if self.distances.shape[1] < 2:
            return np.full(len(self.top), -1), np.full(len(self.top), np.nan)
        other = self.distances.copy()
        other[np.arange(len(self.top)), self.top] = np.inf
        nxt = np.argmin(other, axis=1)
        return nxt, other[np.arange(len(nxt)), nxt]


@dataclass(frozen=True)
class FittedSegments:
    """A run's top level, its sub-segment splits and the outlook they may be cut in."""

    top: SegmentModel | TextSegmentModel
    splits: tuple[Split, ...]
    leaf_map: dict[int, int]  # internal leaf id -> segment id
    split_by: str  # "outlook" | "profile" | "" (no splits)
    outlook: Outlook | None
    outlook_mean: np.ndarray | None  # the fitted users' outlook, to standardise later users' on
    outlook_std: np.ndarray | None
    centroids: np.ndarray  # (k_top, d) what distances are measured to: the top level's, or a root run's segment means
    root: bool = False  # cut from all users: everyone starts at internal leaf 0 (module docstring)

    @property
    def k_top(self) -> int:
        return len(self.centroids)

    def space(self, fused: np.ndarray) -> np.ndarray:
        """The space the top level assigns in: smoothed profiles, or diffused texts."""
        if isinstance(self.top, TextSegmentModel):
            return self.top.transform(fused)
        return self.top.smoothed(fused)

    def place(self, fused: np.ndarray, features: BehaviourFeatures | None,
              previous: tuple[np.ndarray, Candidates] | None = None) -> Placement:
        """Each user's leaf and top-level segment and their distances (module docstring).

        ``previous``: the same users' profiles before they changed and their saved smoothing candidates; the
        smoothing then skips the search where those prove its result (the same placement, bit for bit)."""
        candidates, searched = None, None
        if previous is not None and isinstance(self.top, SegmentModel):
            space, candidates, searched = self.top.resmoothed(fused, previous[0], previous[1])
        else:
            space = self.space(fused)
        start = np.zeros(len(space), dtype=np.int64) if self.root else nearest_centroid(space, self.top.centroids_)
        if self.splits:
            internal = apply_splits(start, self._split_space(space, features), self.splits)
            unknown = sorted({int(i) for i in np.unique(internal)} - set(self.leaf_map))
            if unknown:
                raise WorkspaceError(f"the run's sub-segment tree has no leaf {unknown[0]}", "run `segscope segment` again")
            leaf = np.asarray([self.leaf_map[int(i)] for i in internal], dtype=np.int64)
        else:
            leaf = np.asarray([self.leaf_map.get(int(t), int(t)) for t in start], dtype=np.int64)
        top = leaf if self.root else start  # a root run's leaves are its top level
        return Placement(leaf, top, _distances(space, self.centroids), space, candidates, searched)

    def _split_space(self, smoothed: np.ndarray, features: BehaviourFeatures | None) -> np.ndarray:
        if self.split_by == "profile":
            return smoothed
        if self.outlook is None or features is None or self.outlook_mean is None or self.outlook_std is None:
            raise WorkspaceError("the run's sub-segments are cut by outlook, but its outlook model is missing",
                                 "run `segscope segment` again")
        pred = self.outlook.predict(features)
        return ((pred - self.outlook_mean) / np.where(self.outlook_std > 1e-12, self.outlook_std, 1.0)).astype(np.float32)


def _distances(space: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each row's distance to every centroid, in float64, 8,192 rows at a time (a row's figures do not depend on
    the others: the same bits as all at once, without a float64 copy of every profile)."""
    c = centroids.astype(np.float64)
    c_sq = (c**2).sum(axis=1)[None, :]
    out = np.empty((len(space), len(c)))
    for start in range(0, len(space), 8192):
        wide = space[start : start + 8192].astype(np.float64)
        sq = (wide**2).sum(axis=1)[:, None] - 2.0 * wide @ c.T
        sq += c_sq
        out[start : start + len(wide)] = np.sqrt(np.clip(sq, 0.0, None))
    return out


def load_fitted(run_dir: Path, fit_features: BehaviourFeatures | None, text_model: bool) -> FittedSegments:
    """The fitted segments of the run in ``run_dir``; ``fit_features`` are its users' (for the outlook's scale).

    ``text_model`` says whether the top level is a TextSegmentModel, for runs saved before model.npz said so.
    """
    path = run_dir / "model.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path}: the run's model cannot be read ({exc})", "run `segscope segment` again") from exc
    kind = str(arrays["model_kind"]) if "model_kind" in arrays else ("text" if text_model else "centroid")
    top: SegmentModel | TextSegmentModel
    if kind == "text":
        diffusion = arrays.get("text_diffusion", np.zeros(0))
        extra = {} if len(diffusion) != 3 else {"self_weight": float(diffusion[0]), "rounds": int(diffusion[1]), "dims": int(diffusion[2])}
        top = TextSegmentModel.restore(arrays["reference"], arrays["centroids"], int(arrays["smooth_neighbours"]), **extra)
    else:
        top = SegmentModel(metric=str(arrays["metric"]), smooth_neighbours=int(arrays["smooth_neighbours"]))
        top.centroids_ = arrays["centroids"].astype(np.float32)
        top.reference_ = arrays["reference"].astype(np.float32)
        top.k_ = len(top.centroids_)
    split_leaf = arrays.get("split_leaf", np.zeros(0, dtype=np.int64))
    splits = tuple(Split(int(leaf), (int(kids[0]), int(kids[1])), centres, float("nan"))
                   for leaf, kids, centres in zip(split_leaf, arrays["split_children"], arrays["split_centres"]))
    leaf_map = {int(a): int(b) for a, b in arrays.get("leaf_map", np.zeros((0, 2), dtype=np.int64))}
    split_by = str(arrays.get("split_by", ""))
    outlook, mean, std = _outlook(arrays, fit_features)
    root = bool(arrays.get("root", False))
    if root and "segment_centroids" not in arrays:
        raise WorkspaceError(f"{path}: the run was cut from all users but its model has no segment centroids",
                             "run `segscope segment` again")
    centroids = arrays.get("segment_centroids", top.centroids_).astype(np.float32)
    return FittedSegments(top, splits, leaf_map or {t: t for t in range(len(top.centroids_))}, split_by, outlook, mean, std,
                          centroids, root)


def _outlook(arrays: dict, fit_features: BehaviourFeatures | None) -> tuple[Outlook | None, np.ndarray | None, np.ndarray | None]:
    names = tuple(str(n) for n in arrays.get("outlook_features", np.zeros(0, dtype=str)))
    if not names:
        return None, None, None
    basis = str(arrays["outlook_basis"])
    transformer = None
    if basis == "spline":
        from scipy.interpolate import BSpline
        from sklearn.preprocessing import SplineTransformer

        knots = arrays["outlook_knots"]  # (n_features, n_knots + 6): each feature's full knot vector
        n_features, n_splines = knots.shape[0], knots.shape[1] - 4
        # Fitted on stand-in knots for its attributes, then given the run's splines (a constant feature's
        # knots repeat, which SplineTransformer accepts from its own fit but not as given knots).
        stand_in = np.tile(np.arange(n_splines - 2, dtype=np.float64)[:, None], (1, n_features))
        transformer = SplineTransformer(knots=stand_in, degree=3, extrapolation="linear").fit(stand_in)
        transformer.bsplines_ = [BSpline.construct_fast(knots[i], np.eye(n_splines), 3, extrapolate=False) for i in range(n_features)]
    outlook = Outlook(names, arrays["outlook_coef"], arrays["outlook_intercept"], basis, transformer)
    centre, scale = arrays.get("outlook_centre", np.zeros(0)), arrays.get("outlook_scale", np.zeros(0))
    if len(centre) and len(centre) == len(scale):  # the fitted users' figures, as saved (outliers took no part)
        return outlook, centre.astype(np.float64), scale.astype(np.float64)
    if fit_features is None:
        return outlook, None, None
    pred = outlook.predict(fit_features)
    return outlook, pred.mean(axis=0), pred.std(axis=0)
