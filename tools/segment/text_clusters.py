"""Segment text-only data (one message per user) by intent.

The method, in the order it runs:

1. **Distinct texts.** Repeated messages are one point with a weight: a
   message sent 50 times is not 50 neighbours of itself.
2. **Centred projection.** Rows are centred on the reference mean, projected on
   its leading principal axes (256) and put back on the unit sphere. Sentence
   embeddings share a common direction that says nothing about intent; removing
   it makes cosine distances between messages more telling.
3. **Neighbour diffusion** (tools/segment/neighbour_graph.py): a locally
   scaled, shared-neighbour graph among the reference texts, and eight lazy
   steps along it.
4. **Ward, then KMeans.** One Ward tree over a sample of diffused vectors gives
   every candidate k; KMeans (weighted by repeats) refines the chosen k on the
   whole reference.
5. **Choosing k** (``k="auto"``): silhouette of the Ward cut at each candidate
   k, measured in the projected space *before* diffusion (diffusion would
   flatter any k), first on a coarse grid and then on every k next to the best
   coarse one; the smallest k within ``k_tolerance`` of the best wins.

Data larger than ``reference_size`` distinct texts builds its graph on a
sample; every other text is placed by its reference neighbours
(neighbour_graph.extend). ``predict`` does the same for new texts and returns
the nearest centroid; a text that is itself in the reference gets its own
diffused vector, so ``predict`` on the fitted data gives back ``labels_``.

Chosen on Banking77 and CLINC150 together (bench/segments.py): 8 neighbours,
self weight 0.3 and 8 rounds won on both at every one of three seeds; 5 or 10
neighbours, 0.5 self weight, 128 or 384 dimensions lost a little on one set.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tools.core.errors import ParameterError
from tools.segment.clustering import KCandidate, KChoice, nearest_centroid, quality_metrics, relabel_by_size
from tools.core.linalg import normalize_rows
from tools.segment.neighbour_graph import diffuse, diffusion_operator, extend

ProgressFn = Callable[[str, int, int], None]
CHUNK = 4096


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique rows (in first-seen order), the row each input maps to, and each unique row's count."""
    keys = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return x[first[order]], rank[inverse.ravel()], counts[order]


class TextSegmentModel:
    """Segment text-only users from their unit-length text vectors; scikit-learn style.

    Parameters
    ----------
    k: a number of segments, or "auto".
    seed: makes sampling and KMeans reproducible.
    min_k, max_k: the range searched when k is "auto".
    neighbours: graph neighbours per text (fewer on small data).
    self_weight, rounds: how far diffusion pulls each text towards its neighbourhood.
    dims: principal axes kept after centring.
    reference_size: distinct texts the graph is built on (a sample above it).
    sample_size: texts in the Ward tree and the silhouette of the k search.
    """

    metric = "cosine"
    noise_share_: float | None = None

    def __init__(
        self,
        k: int | str = "auto",
        seed: int = 0,
        min_k: int = 2,
        max_k: int = 150,
        k_tolerance: float = 0.03,
        neighbours: int = 8,
        self_weight: float = 0.3,
        rounds: int = 8,
        dims: int = 256,
        reference_size: int = 10000,
        sample_size: int = 3000,
    ) -> None:
        self.k = k
        self.seed = seed
        self.min_k = min_k
        self.max_k = max_k
        self.k_tolerance = k_tolerance
        self.neighbours = neighbours
        self.self_weight = self_weight
        self.rounds = rounds
        self.dims = dims
        self.reference_size = reference_size
        self.sample_size = sample_size

    @property
    def smooth_neighbours(self) -> int:
        """The neighbours each text is diffused over (saved with a run, like SegmentModel's)."""
        return self.neighbours

    # -- checks -----------------------------------------------------------
    def _check(self, n: int, n_distinct: int) -> int | None:
        if n < 3:
            raise ParameterError(f"only {n} user(s) in the data: segmenting needs at least 3", "add more users to the data")
        if self.k == "auto":
            return None
        try:
            k = int(self.k)
            if k != float(self.k):
                raise ValueError(self.k)
        except (TypeError, ValueError):
            raise ParameterError(f"k must be a whole number or 'auto', got {self.k!r}", "use --k auto or e.g. --k 6") from None
        if k < 2:
            raise ParameterError(f"k={k} is too small: a segmentation needs at least 2 segments", "use --k 2 or more, or --k auto")
        if k >= n:
            raise ParameterError(f"k={k} is not less than the number of users ({n})", f"use --k {max(2, n // 2)} or less, or --k auto")
        if k > n_distinct:
            raise ParameterError(
                f"k={k} is more than the {n_distinct} distinct texts in the data", f"use --k {n_distinct} or less, or --k auto"
            )
        return k

    # -- the space clustering sees ----------------------------------------------
    def _project(self, x: np.ndarray) -> np.ndarray:
        return normalize_rows((x - self.mean_) @ self.axes_.T).astype(np.float32)

    def transform(self, x: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The space segments live in: each text's diffused vector.

        A reference text gets its own (from the graph), any other text one extended
        from its reference neighbours.
        """
        x = normalize_rows(np.asarray(x, dtype=np.float32)).astype(np.float32)
        out = np.empty((len(x), self.y_ref_.shape[1]), dtype=np.float32)
        for start in range(0, len(x), CHUNK):
            chunk = x[start : start + CHUNK]
            zq = self._project(chunk)
            dist, idx = self._index_.kneighbors(zq, n_neighbors=self.m_ + 1)
            # A text that is in the reference finds itself first: the same vector to float
            # rounding (renormalising a unit row may move its last bit), not merely a close one.
            is_ref = np.abs(chunk - self.reference_[idx[:, 0]]).max(axis=1) <= 1e-6
            y = zq if self.m_ == 0 else extend(zq, dist[:, : self.m_], idx[:, : self.m_], self.y_ref_, self.self_weight)
            y[is_ref] = self.y_ref_[idx[is_ref, 0]]
            out[start : start + len(chunk)] = y
            if progress is not None:
                progress(start + len(chunk), len(x))
        return out

    def _build_graph(self, report: ProgressFn) -> np.ndarray:
        """From ``reference_``: the projection, the neighbour index and the diffused reference (fit and restore share it)."""
        from sklearn.neighbors import NearestNeighbors

        self.mean_ = self.reference_.mean(axis=0)
        n_axes = max(1, min(self.dims, self.reference_.shape[1], len(self.reference_) - 1))
        _, _, vt = np.linalg.svd(self.reference_ - self.mean_, full_matrices=False)
        self.axes_ = vt[:n_axes].astype(np.float32)
        z_ref = self._project(self.reference_)

        # Small data cannot afford to average away its groups: at most one neighbour per 20 texts.
        self.m_ = min(self.neighbours, len(z_ref) // 20, len(z_ref) - 1)
        self._index_ = NearestNeighbors().fit(z_ref)
        if self.m_ > 0:
            report("smoothing", 0, 1)
            dist, idx = self._index_.kneighbors(n_neighbors=self.m_)
            self.y_ref_ = diffuse(z_ref, diffusion_operator(idx, dist), self.self_weight, self.rounds)
            report("smoothing", 1, 1)
        else:
            self.y_ref_ = z_ref
        return z_ref

    @classmethod
    def restore(cls, reference: np.ndarray, centroids: np.ndarray, neighbours: int = 8, self_weight: float = 0.3,
                rounds: int = 8, dims: int = 256) -> TextSegmentModel:
        """A fitted model back from what a run saves (its reference texts and centroids): ``predict`` as at the fit."""
        model = cls(neighbours=neighbours, self_weight=self_weight, rounds=rounds, dims=dims)
        model.reference_ = np.asarray(reference, dtype=np.float32)
        model.centroids_ = np.asarray(centroids, dtype=np.float32)
        model.k_ = len(model.centroids_)
        model._build_graph(lambda stage, done, total: None)
        return model

    # -- fit --------------------------------------------------------------
    def fit(self, x: np.ndarray, progress: ProgressFn | None = None) -> TextSegmentModel:
        from scipy.cluster.hierarchy import fcluster, linkage

        report = progress or (lambda stage, done, total: None)
        x = normalize_rows(np.asarray(x, dtype=np.float32)).astype(np.float32)
        distinct, _, counts = _distinct_rows(x)
        k_given = self._check(len(x), len(distinct))
        rng = np.random.default_rng(self.seed)

        ref_pos = np.sort(rng.choice(len(distinct), size=min(len(distinct), self.reference_size), replace=False))
        self.reference_ = distinct[ref_pos]
        weights = counts[ref_pos].astype(np.float64)
        z_ref = self._build_graph(report)

        sample = np.sort(rng.choice(len(z_ref), size=min(len(z_ref), self.sample_size), replace=False))
        tree = linkage(self.y_ref_[sample].astype(np.float64), method="ward")
        self.k_choice_: KChoice | None = None
        if k_given is None:
            self.k_choice_ = self._choose_k(z_ref[sample], tree, report)
            k = self.k_choice_.k
        else:
            k = min(k_given, len(sample))
        cut = fcluster(tree, k, criterion="maxclust") - 1
        init = np.vstack([self.y_ref_[sample][cut == c].mean(axis=0) for c in np.unique(cut)])
        labels = self._kmeans(self.y_ref_, init, weights, report)

        # Every fitted row is placed the way predict() places it, then the centroids are
        # the members' means and each row sits with the nearest: compact, re-sort, repeat.
        y = self.transform(x, progress=lambda done, total: report("assigning", done, total))
        centroids = np.vstack([self.y_ref_[labels == c].mean(axis=0) for c in np.unique(labels)])
        labels = nearest_centroid(y, centroids)
        for _ in range(10):
            labels = relabel_by_size(labels)
            centroids = np.vstack([y[labels == c].mean(axis=0) for c in range(int(labels.max()) + 1)]).astype(np.float32)
            nearest = nearest_centroid(y, centroids)
            if np.array_equal(nearest, labels):
                break
            labels = nearest
        self.centroids_ = centroids
        self.labels_ = nearest_centroid(y, centroids)
        self.k_ = len(centroids)
        self.metrics_ = quality_metrics(x, self.labels_, "cosine", self.seed)
        return self

    def _kmeans(self, y: np.ndarray, init: np.ndarray, weights: np.ndarray, report: ProgressFn) -> np.ndarray:
        from sklearn.cluster import KMeans

        report("clustering", 0, 1)
        model = KMeans(n_clusters=len(init), init=init, n_init=1, random_state=self.seed)
        labels = model.fit_predict(y, sample_weight=weights)
        report("clustering", 1, 1)
        return labels

    def _choose_k(self, z_sample: np.ndarray, tree: np.ndarray, report: ProgressFn) -> KChoice:
        from scipy.cluster.hierarchy import fcluster
        from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, pairwise_distances, silhouette_score

        dist = pairwise_distances(z_sample, metric="cosine")
        hi = min(self.max_k, len(z_sample) - 1)
        lo = min(self.min_k, hi)
        scored: dict[int, KCandidate] = {}

        def score(ks: list[int]) -> None:
            for k in ks:
                if k in scored:
                    continue
                labels = fcluster(tree, k, criterion="maxclust")
                if len(np.unique(labels)) < 2:
                    continue
                scored[k] = KCandidate(
                    k=k,
                    silhouette=float(silhouette_score(dist, labels, metric="precomputed")),
                    calinski_harabasz=float(calinski_harabasz_score(z_sample, labels)),
                    davies_bouldin=float(davies_bouldin_score(z_sample, labels)),
                )

        # A coarse geometric grid finds where the silhouette levels off; every k just
        # below the first coarse k within tolerance is then tried, so the answer is exact.
        coarse = sorted({int(round(v)) for v in np.geomspace(lo, hi, num=min(24, hi - lo + 1))} | {lo, hi})
        score(coarse)
        report("choosing k", 1, 2)
        if not scored:
            raise ParameterError("could not find two distinct groups in this data", "check that users differ at all")
        first = self._within_tolerance(scored)
        below = [k for k in coarse if k < first.k]
        score(list(range((below[-1] + 1) if below else lo, first.k)))
        report("choosing k", 2, 2)
        candidates = tuple(scored[k] for k in sorted(scored))
        chosen = self._within_tolerance(scored)
        best = max(candidates, key=lambda c: c.silhouette)
        best_ch = max(candidates, key=lambda c: c.calinski_harabasz)
        best_db = min(candidates, key=lambda c: c.davies_bouldin)
        reason = (
            f"k={chosen.k}: smallest k in {lo}..{hi} with silhouette within {self.k_tolerance:.0%} of the best "
            f"({chosen.silhouette:.3f} vs {best.silhouette:.3f} at k={best.k}; {len(candidates)} k tried, "
            f"on texts before neighbour smoothing); "
            f"Calinski–Harabasz {chosen.calinski_harabasz:.1f} (best {best_ch.calinski_harabasz:.1f} at k={best_ch.k}), "
            f"Davies–Bouldin {chosen.davies_bouldin:.3f} (best {best_db.davies_bouldin:.3f} at k={best_db.k})"
        )
        return KChoice(k=chosen.k, reason=reason, candidates=candidates)

    def _within_tolerance(self, scored: dict[int, KCandidate]) -> KCandidate:
        best = max(scored.values(), key=lambda c: c.silhouette)
        floor = best.silhouette - self.k_tolerance * abs(best.silhouette)
        return next(scored[k] for k in sorted(scored) if scored[k].silhouette >= floor)

    # -- predict ----------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Assign new texts to the fitted segments (nearest centroid after diffusion)."""
        if not hasattr(self, "centroids_"):
            raise ParameterError("the segment model is not fitted yet", "run segment first")
        return nearest_centroid(self.transform(x), self.centroids_)
