"""Cluster user profiles into segments, choosing k automatically when asked.

The method, in the order it runs:

1. **Neighbourhood smoothing.** Each profile is averaged with its nearest
   neighbours (among a reference sample). Behaviour data is noisy per user; the
   average of a user and the users most like them is a steadier estimate of the
   group they belong to. ``smooth_neighbours=0`` turns it off.
2. **Ward hierarchy on a sample.** One Ward linkage over a sample of smoothed
   profiles gives every candidate k at once, so automatic k costs one linkage
   plus one silhouette per candidate, not one clustering per candidate.
3. **Choosing k.** Two rules. ``k_rule="stability"`` (behaviour data, the top
   level of a hierarchy): the largest k in ``min_k..max_top_k`` whose
   prediction strength (tools/segment/stability.py) is within two standard
   errors (at least 0.05) of the most reproducible k's: the finest partition the data reproduces
   as well as its best one. When no k reaches prediction strength 0.8, the
   chosen k is still fitted but ``k_choice_.reproducible`` is False: the
   profiles hold no groups another sample would find again, and a hierarchy
   (tools/segment/levels.py) cuts its segments from all users instead.
   ``k_rule="silhouette"`` (text-only data): the
   smallest k whose silhouette, measured on the *unsmoothed* profiles
   (smoothing would flatter any k), is within ``k_tolerance`` (3%) of the best.
   Silhouette, Calinski–Harabasz and Davies–Bouldin are computed for every
   candidate and reported next to either choice.
4. **Refinement.** KMeans (MiniBatchKMeans above ``minibatch_threshold`` users)
   starts from the Ward centroids of the chosen k and refines them on all users.

``predict`` smooths a new profile the same way against the same reference
sample and returns the nearest centroid, so it agrees with ``labels_`` on the
data the model was fit on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tools.core.errors import ParameterError
from tools.core.linalg import normalize_rows
from tools.segment.resmooth import CANDIDATES, Candidates, average, kept, resmooth

Algorithm = Literal["kmeans", "hdbscan", "agglomerative"]
ALGORITHMS: tuple[str, ...] = ("kmeans", "hdbscan", "agglomerative")
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class KCandidate:
    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    prediction_strength: float | None = None  # with k_rule="stability"
    stability_ari: float | None = None

    def as_dict(self) -> dict:
        out = {"k": self.k, "silhouette": round(self.silhouette, 4), "calinski_harabasz": round(self.calinski_harabasz, 2),
               "davies_bouldin": round(self.davies_bouldin, 4)}
        if self.prediction_strength is not None:
            out["prediction_strength"] = round(self.prediction_strength, 4)
            out["stability_ari"] = None if self.stability_ari is None else round(self.stability_ari, 4)
        return out


@dataclass(frozen=True)
class KChoice:
    """Why a k was chosen: the rule, the figures, and every candidate tried."""

    k: int
    reason: str
    candidates: tuple[KCandidate, ...] = field(default=())
    # k_rule="stability": whether any k reached prediction strength 0.8 (tools/segment/stability.py);
    # when none did, a hierarchy cuts its segments from all users instead (tools/segment/levels.py).
    reproducible: bool = True


def quality_metrics(x: np.ndarray, labels: np.ndarray, metric: str, seed: int, sample: int = 5000) -> dict[str, float]:
    """Silhouette, Calinski–Harabasz and Davies–Bouldin on a sample of at most ``sample`` rows."""
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_score,
    )

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return {"silhouette": float("nan"), "calinski_harabasz": float("nan"), "davies_bouldin": float("nan")}
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    xs, ls = x[idx], labels[idx]
    if len(np.unique(ls)) < 2:
        xs, ls = x, labels
    return {
        "silhouette": float(silhouette_score(xs, ls, metric=metric)),
        "calinski_harabasz": float(calinski_harabasz_score(xs, ls)),
        "davies_bouldin": float(davies_bouldin_score(xs, ls)),
    }


class SegmentModel:
    """Segment users from a profile matrix; scikit-learn style (fit returns self).

    Parameters
    ----------
    algorithm: "kmeans" (default), "hdbscan" or "agglomerative".
    k: a number of segments, or "auto".
    seed: makes sampling and KMeans reproducible.
    metric: "euclidean" for fused profiles, "cosine" for text-only embeddings
        (rows are then kept on the unit sphere).
    min_k, max_k: the range searched when k is "auto" (``max_top_k`` caps it for k_rule="stability").
    k_rule: "silhouette" or "stability" (see the module docstring).
    smooth_neighbours: neighbours averaged into each profile (0 = off).
    sample_size: rows used for the Ward hierarchy and the k search.
    reference_size: rows that smoothing looks for neighbours among.
    minibatch_threshold: above this many users KMeans becomes MiniBatchKMeans.
    """

    def __init__(
        self,
        algorithm: str = "kmeans",
        k: int | str = "auto",
        seed: int = 0,
        metric: str = "euclidean",
        min_k: int = 2,
        max_k: int = 20,
        k_tolerance: float = 0.03,
        smooth_neighbours: int = 10,
        sample_size: int = 3000,
        reference_size: int = 10000,
        minibatch_threshold: int = 20000,
        min_cluster_size: int | None = None,
        k_rule: str = "silhouette",
        max_top_k: int = 8,
    ) -> None:
        self.algorithm = algorithm
        self.k = k
        self.seed = seed
        self.metric = metric
        self.min_k = min_k
        self.max_k = max_k
        self.k_tolerance = k_tolerance
        self.smooth_neighbours = smooth_neighbours
        self.sample_size = sample_size
        self.reference_size = reference_size
        self.minibatch_threshold = minibatch_threshold
        self.min_cluster_size = min_cluster_size
        self.k_rule = k_rule
        self.max_top_k = max_top_k

    # -- checks -----------------------------------------------------------
    def _check(self, n: int) -> int | None:
        if self.algorithm not in ALGORITHMS:
            raise ParameterError(
                f"unknown algorithm {self.algorithm!r}", f"use one of: {', '.join(ALGORITHMS)}"
            )
        if n < 3:
            raise ParameterError(
                f"only {n} user(s) in the data: segmenting needs at least 3", "add more users to the data"
            )
        if self.k == "auto" or self.algorithm == "hdbscan":
            return None
        try:
            k = int(self.k)
            if k != float(self.k):  # 2.5 is not a whole number: never truncate it silently
                raise ValueError(self.k)
        except (TypeError, ValueError):
            raise ParameterError(f"k must be a whole number or 'auto', got {self.k!r}", "use --k auto or e.g. --k 6") from None
        if k < 2:
            raise ParameterError(f"k={k} is too small: a segmentation needs at least 2 segments", "use --k 2 or more, or --k auto")
        if k >= n:
            raise ParameterError(
                f"k={k} is not less than the number of users ({n})", f"use --k {max(2, n // 2)} or less, or --k auto"
            )
        return k

    # -- smoothing ----------------------------------------------------------
    def _smooth(self, x: np.ndarray, is_fit: bool, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        out, candidates = self._search(x, is_fit, progress, keep=is_fit)
        if is_fit:  # the fitted rows' candidates: a run saves them so an update can skip the search (resmooth.py)
            self.fit_candidates_ = candidates
        return out

    def _neighbours(self) -> int:
        """How many reference rows smoothing averages into a profile (0: none)."""
        # Small data cannot afford to average away its groups: at most one neighbour per 20 users.
        return min(self.smooth_neighbours, len(self.reference_) // 20, len(self.reference_) - 1)

    def _search(self, x: np.ndarray, is_fit: bool, progress: Callable[[int, int], None] | None = None,
                keep: bool = False) -> tuple[np.ndarray, Candidates | None]:
        """``x`` smoothed (each row averaged with its ``m`` nearest reference rows), and with ``keep`` each row's
        candidates (None without: placing users keeps only their segments, and at a million users the
        candidates would be half a gigabyte)."""
        ref = self.reference_
        m = self._neighbours()
        if m <= 0:
            return x, None
        from sklearn.neighbors import NearestNeighbors

        # fit() builds a fresh index: one left from an earlier fit points into another reference.
        nn = self._nn_ if not is_fit and hasattr(self, "_nn_") else NearestNeighbors(n_neighbors=m + 1).fit(ref)
        self._nn_ = nn
        # As dear as m + 1: the cost is the distance to every row.
        width = max(m + 1, min(CANDIDATES, len(ref))) if keep else m + 1
        out = np.empty_like(x)
        candidates = Candidates.unknown(len(x), width) if keep else None
        for start in range(0, len(x), 4096):
            chunk = x[start : start + 4096]
            dist, idx = nn.kneighbors(chunk, n_neighbors=width)
            # A point that is itself in the reference finds itself first; drop that
            # hit, otherwise drop the farthest: every point averages itself + m others.
            out[start : start + len(chunk)] = average(chunk, ref, kept(dist, idx, m), m)
            if candidates is not None:
                rows = slice(start, start + len(chunk))
                candidates.ids[rows], candidates.dist[rows] = idx, dist
                candidates.bound[rows] = np.inf if width >= len(ref) else dist[:, -1]
            if progress is not None:
                progress(start + len(chunk), len(x))
        if self.metric == "cosine":
            out = normalize_rows(out)
        return out, candidates

    # -- fit --------------------------------------------------------------
    def fit(self, x: np.ndarray, progress: ProgressFn | None = None) -> SegmentModel:
        from scipy.cluster.hierarchy import fcluster, linkage

        report = progress or (lambda stage, done, total: None)
        x = np.asarray(x, dtype=np.float32)
        if self.metric == "cosine":
            x = normalize_rows(x)
        n = len(x)
        k_given = self._check(n)
        rng = np.random.default_rng(self.seed)

        ref_idx = np.sort(rng.choice(n, size=min(n, self.reference_size), replace=False))
        self.reference_ = x[ref_idx]
        xs = self._smooth(x, is_fit=True, progress=lambda done, total: report("smoothing", done, total))

        sample_idx = np.sort(rng.choice(n, size=min(n, self.sample_size), replace=False))
        self.k_choice_: KChoice | None = None
        self.noise_share_: float | None = None
        if self.algorithm == "hdbscan":
            labels = self._fit_hdbscan(xs, sample_idx)
        else:
            tree = linkage(xs[sample_idx].astype(np.float64), method="ward")
            if k_given is None:
                self.k_choice_ = self._choose_k(x[sample_idx], tree, report, xs)
                k = self.k_choice_.k
            else:
                k = k_given
            k = min(k, len(sample_idx) - 1)
            sample_labels = fcluster(tree, k, criterion="maxclust") - 1
            centroids = np.vstack([xs[sample_idx][sample_labels == c].mean(axis=0) for c in np.unique(sample_labels)])
            if self.algorithm == "agglomerative":
                labels = nearest_centroid(xs, centroids)
            else:
                report("clustering", 0, 1)
                labels = self._fit_kmeans(xs, centroids)
                report("clustering", 1, 1)
        # Centroids are the members' means and every user sits with the nearest
        # centroid, so predict() on the fitted data gives back exactly labels_.
        # Reassigning can empty or reorder a segment: compact, re-sort, repeat.
        for _ in range(10):
            labels = relabel_by_size(labels)
            centroids = np.vstack([xs[labels == c].mean(axis=0) for c in range(int(labels.max()) + 1)]).astype(np.float32)
            nearest = nearest_centroid(xs, centroids)
            if np.array_equal(nearest, labels):
                break
            labels = nearest
        self.centroids_ = centroids
        self.labels_ = nearest_centroid(xs, centroids)
        self.k_ = len(centroids)
        self.metrics_ = quality_metrics(x, self.labels_, "cosine" if self.metric == "cosine" else "euclidean", self.seed)
        return self

    def _fit_kmeans(self, xs: np.ndarray, init: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if len(xs) > self.minibatch_threshold:
            model = MiniBatchKMeans(
                n_clusters=len(init), init=init, n_init=1, batch_size=4096, random_state=self.seed, max_iter=50
            )
        else:
            model = KMeans(n_clusters=len(init), init=init, n_init=1, random_state=self.seed)
        return model.fit_predict(xs)

    def _fit_hdbscan(self, xs: np.ndarray, sample_idx: np.ndarray) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        min_size = self.min_cluster_size or max(5, len(sample_idx) // 50)
        sample_labels = HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(xs[sample_idx])
        found = [c for c in np.unique(sample_labels) if c >= 0]
        if len(found) < 2:
            raise ParameterError(
                f"HDBSCAN found {len(found)} dense group(s) in this data, not a segmentation",
                "use --algorithm kmeans, or a smaller min cluster size",
            )
        self.noise_share_ = float(np.mean(sample_labels < 0))
        centroids = np.vstack([xs[sample_idx][sample_labels == c].mean(axis=0) for c in found])
        # Points HDBSCAN calls noise still get the nearest segment: a marketer needs
        # every user placed. The noise share is reported with the run.
        return nearest_centroid(xs, centroids)

    def _choose_k(self, x_sample: np.ndarray, tree: np.ndarray, report: ProgressFn, smoothed: np.ndarray) -> KChoice:
        from scipy.cluster.hierarchy import fcluster
        from sklearn.metrics import (
            calinski_harabasz_score,
            davies_bouldin_score,
            pairwise_distances,
            silhouette_score,
        )

        metric = "cosine" if self.metric == "cosine" else "euclidean"
        dist = pairwise_distances(x_sample, metric=metric)
        hi = min(self.max_k, len(x_sample) - 1)
        if self.k_rule == "stability":
            hi = min(hi, self.max_top_k)
        lo = min(self.min_k, hi)
        candidates = []
        ks = range(lo, hi + 1)
        for i, k in enumerate(ks):
            labels = fcluster(tree, k, criterion="maxclust")
            if len(np.unique(labels)) < 2:
                continue
            candidates.append(
                KCandidate(
                    k=k,
                    silhouette=float(silhouette_score(dist, labels, metric="precomputed")),
                    calinski_harabasz=float(calinski_harabasz_score(x_sample, labels)),
                    davies_bouldin=float(davies_bouldin_score(x_sample, labels)),
                )
            )
            report("choosing k", i + 1, len(ks))
        if not candidates:
            raise ParameterError("could not find two distinct groups in this data", "check that users differ at all")
        if self.k_rule == "stability":
            return self._choose_k_by_stability(candidates, smoothed, lo, hi)
        best = max(candidates, key=lambda c: c.silhouette)
        floor = best.silhouette - self.k_tolerance * abs(best.silhouette)
        chosen = next(c for c in candidates if c.silhouette >= floor)
        best_ch = max(candidates, key=lambda c: c.calinski_harabasz)
        best_db = min(candidates, key=lambda c: c.davies_bouldin)
        reason = (
            f"k={chosen.k}: smallest k in {lo}..{hi} with silhouette within {self.k_tolerance:.0%} of the best "
            f"({chosen.silhouette:.3f} vs {best.silhouette:.3f} at k={best.k}); "
            f"Calinski–Harabasz {chosen.calinski_harabasz:.1f} (best {best_ch.calinski_harabasz:.1f} at k={best_ch.k}), "
            f"Davies–Bouldin {chosen.davies_bouldin:.3f} (best {best_db.davies_bouldin:.3f} at k={best_db.k})"
        )
        return KChoice(k=chosen.k, reason=reason, candidates=tuple(candidates))

    def _choose_k_by_stability(self, candidates: list[KCandidate], smoothed: np.ndarray, lo: int, hi: int) -> KChoice:
        from dataclasses import replace

        from tools.segment.stability import (
            most_stable_k,
            partition_stability,
            reproducible,
            tolerance,
        )

        # Fixed halvings: the seed changes how segments are fitted, not which k is judged most reproducible.
        found = {s.k: s for s in partition_stability(smoothed, [c.k for c in candidates], seed=0)}
        candidates = [replace(c, prediction_strength=found[c.k].prediction_strength, stability_ari=found[c.k].ari)
                      for c in candidates if c.k in found]
        if not candidates:
            raise ParameterError("too few users to measure how stable any segmentation is", "use --k N")
        chosen = most_stable_k([found[c.k] for c in candidates])
        best = max(found.values(), key=lambda s: (s.prediction_strength, -s.k))
        reason = (
            f"top level k={chosen.k}: the largest k in {lo}..{hi} whose prediction strength (the share of each segment's "
            f"member pairs that a segmentation of other users also puts together) is within {tolerance(best):.3f} of the "
            f"most reproducible k's ({chosen.prediction_strength:.3f} vs {best.prediction_strength:.3f} "
            f"± {best.prediction_strength_se:.3f} at k={best.k}); ARI between halves {chosen.ari:.3f}"
        )
        return KChoice(k=chosen.k, reason=reason, candidates=tuple(candidates), reproducible=reproducible(list(found.values())))

    # -- predict ----------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Assign new profiles to the fitted segments (nearest centroid after smoothing)."""
        if not hasattr(self, "centroids_"):
            raise ParameterError("the segment model is not fitted yet", "run segment first")
        return nearest_centroid(self.smoothed(x), self.centroids_)

    def smoothed(self, x: np.ndarray) -> np.ndarray:
        """Profiles as the fitted model sees them: averaged with their neighbours in the reference sample."""
        if not hasattr(self, "reference_"):
            raise ParameterError("the segment model is not fitted yet", "run segment first")
        x = np.asarray(x, dtype=np.float32)
        if self.metric == "cosine":
            x = normalize_rows(x)
        return self._smooth(x, is_fit=False)

    def resmoothed(self, x: np.ndarray, previous: np.ndarray, candidates: Candidates) -> tuple[np.ndarray, Candidates | None, int]:
        """``smoothed(x)``, with each row's search skipped where ``candidates`` (found for ``previous``, the same rows
        before they changed) prove its result (tools/segment/resmooth.py); also every row's candidates now, and
        how many rows were searched."""
        if not hasattr(self, "reference_"):
            raise ParameterError("the segment model is not fitted yet", "run segment first")
        x = np.asarray(x, dtype=np.float32)
        m = self._neighbours()
        if self.metric == "cosine" or m <= 0:  # cosine rows are renormalised after the average: always searched
            out, found = self._search(normalize_rows(x) if self.metric == "cosine" else x, is_fit=False, keep=True)
            return out, found, len(x)
        return resmooth(x, previous, candidates, self.reference_, m, lambda rows: self._search(rows, is_fit=False, keep=True))  # type: ignore[return-value]


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for every row of ``x`` (squared distance), 8,192 rows at a time."""
    out = np.empty(len(x), dtype=np.int64)
    c_sq = (centroids**2).sum(axis=1)
    for start in range(0, len(x), 8192):
        chunk = x[start : start + 8192]
        out[start : start + len(chunk)] = np.argmin(c_sq[None, :] - 2.0 * chunk @ centroids.T, axis=1)
    return out


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Segment 0 is the largest; ties broken by old label, so ids are stable for a seed."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = np.empty(ids.max() + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    return mapping[labels]
