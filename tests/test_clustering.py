"""SegmentModel: automatic k, the three algorithms, fit/predict agreement, validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from tools.core.errors import ParameterError
from tools.segment.clustering import SegmentModel, quality_metrics


def blobs(sizes=(60, 60, 60), n_features=6, seed=0, std=0.6):
    x, y, centres = make_blobs(
        n_samples=list(sizes), n_features=n_features, cluster_std=std, center_box=(-15, 15), random_state=seed, return_centers=True
    )
    return x.astype(np.float32), y, centres


@pytest.fixture(scope="module")
def five_blobs():
    return blobs(sizes=(80, 70, 60, 50, 40), seed=3)


def test_auto_k_recovers_five_well_separated_blobs(five_blobs):
    x, y, _ = five_blobs
    model = SegmentModel(seed=0).fit(x)
    assert model.k_ == 5
    assert adjusted_rand_score(y, model.labels_) == 1.0
    choice = model.k_choice_
    assert choice is not None and choice.k == 5
    assert "silhouette" in choice.reason and "k=5" in choice.reason
    assert [c.k for c in choice.candidates] == list(range(2, 21))
    best = max(choice.candidates, key=lambda c: c.silhouette)
    assert next(c for c in choice.candidates if c.k == 5).silhouette >= best.silhouette * 0.97
    assert model.metrics_["silhouette"] > 0.7
    assert set(model.metrics_) == {"silhouette", "calinski_harabasz", "davies_bouldin"}


def test_labels_are_sorted_so_segment_0_is_largest(five_blobs):
    x, y, _ = five_blobs
    model = SegmentModel(k=5, seed=0).fit(x)
    counts = np.bincount(model.labels_)
    assert list(counts) == [80, 70, 60, 50, 40]
    # Blob 0 is the biggest (80 points): it must be segment 0.
    assert set(model.labels_[y == 0]) == {0}


def test_predict_agrees_with_labels_on_the_fitted_data(five_blobs):
    x, _, _ = five_blobs
    model = SegmentModel(k=5, seed=0).fit(x)
    np.testing.assert_array_equal(model.predict(x), model.labels_)
    assert model.centroids_.shape == (5, x.shape[1])


def test_predict_puts_new_points_near_a_blob_centre_in_that_blob(five_blobs):
    x, y, centres = five_blobs
    model = SegmentModel(seed=0).fit(x)
    segment_of_blob = {b: int(np.bincount(model.labels_[y == b]).argmax()) for b in range(len(centres))}
    rng = np.random.default_rng(9)
    new = np.repeat(centres, 3, axis=0) + rng.normal(scale=0.3, size=(len(centres) * 3, x.shape[1]))
    expected = [segment_of_blob[b] for b in range(len(centres)) for _ in range(3)]
    np.testing.assert_array_equal(model.predict(new), expected)


def test_fit_is_reproducible_for_a_seed():
    x, _, _ = blobs(sizes=(120, 90, 60), seed=4, std=2.5)  # overlapping: sampling matters
    kwargs = dict(seed=7, sample_size=100, reference_size=150)
    a, b = SegmentModel(**kwargs).fit(x), SegmentModel(**kwargs).fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    assert a.k_choice_.reason == b.k_choice_.reason


def test_agreement_holds_when_only_a_sample_is_the_reference():
    x, _, _ = blobs(sizes=(150, 100, 50), seed=5, std=1.5)
    model = SegmentModel(k=3, seed=1, reference_size=80, sample_size=120).fit(x)
    assert len(model.reference_) == 80
    np.testing.assert_array_equal(model.predict(x), model.labels_)


def test_refit_on_other_data_forgets_the_old_neighbourhood():
    """A second fit must smooth against its own data, exactly like a fresh model."""
    x1, _, _ = blobs(sizes=(40, 40, 40), seed=1)
    x2, _, _ = blobs(sizes=(90, 60, 30), seed=2)
    reused = SegmentModel(k=3, seed=0).fit(x1).fit(x2)
    fresh = SegmentModel(k=3, seed=0).fit(x2)
    np.testing.assert_array_equal(reused.labels_, fresh.labels_)
    np.testing.assert_allclose(reused.centroids_, fresh.centroids_)
    np.testing.assert_array_equal(reused.predict(x2), fresh.labels_)


def test_minibatch_kmeans_is_used_above_the_threshold(monkeypatch):
    import sklearn.cluster

    used = []

    class SpyMiniBatch(sklearn.cluster.MiniBatchKMeans):
        def fit_predict(self, *args, **kwargs):
            used.append(self.n_clusters)
            return super().fit_predict(*args, **kwargs)

    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", SpyMiniBatch)
    x, y, _ = blobs(sizes=(100, 80, 60), seed=6)
    model = SegmentModel(k=3, seed=0, minibatch_threshold=100).fit(x)
    assert used == [3]
    assert adjusted_rand_score(y, model.labels_) == 1.0
    np.testing.assert_array_equal(model.predict(x), model.labels_)

    used.clear()
    SegmentModel(k=3, seed=0).fit(x)  # default threshold: plain KMeans
    assert used == []


def test_agglomerative_path():
    x, y, _ = blobs(sizes=(70, 50, 30), seed=8)
    model = SegmentModel(algorithm="agglomerative", k=3, seed=0).fit(x)
    assert model.k_ == 3 and adjusted_rand_score(y, model.labels_) == 1.0
    assert list(np.bincount(model.labels_)) == [70, 50, 30]
    np.testing.assert_array_equal(model.predict(x), model.labels_)


def test_hdbscan_path_finds_the_blobs_and_reports_noise():
    x, y, _ = blobs(sizes=(80, 60, 40), seed=10, std=0.5)
    model = SegmentModel(algorithm="hdbscan", seed=0, min_cluster_size=10).fit(x)
    assert model.k_ == 3 and adjusted_rand_score(y, model.labels_) == 1.0
    assert model.k_choice_ is None
    assert 0.0 <= model.noise_share_ < 0.2
    assert (model.labels_ >= 0).all(), "noise points still get a segment"
    np.testing.assert_array_equal(model.predict(x), model.labels_)


def test_hdbscan_on_one_dense_group_is_a_parameter_error():
    x = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    with pytest.raises(ParameterError, match="HDBSCAN"):
        SegmentModel(algorithm="hdbscan", min_cluster_size=60).fit(x)


def test_cosine_metric_keeps_rows_on_the_sphere_and_agrees():
    x, y, _ = blobs(sizes=(50, 50, 50), seed=11)
    x = x - x.mean(axis=0)
    model = SegmentModel(k=3, seed=0, metric="cosine").fit(x * 7.0)
    np.testing.assert_allclose(np.linalg.norm(model.reference_, axis=1), 1.0, rtol=1e-5)
    # Fitted on x * 7, predicted on x: under cosine the scale must not matter.
    np.testing.assert_array_equal(model.predict(x), model.labels_)
    assert adjusted_rand_score(y, model.labels_) == 1.0


@pytest.mark.parametrize(
    "k, match",
    [(30, "not less than the number of users"), (50, "not less than"), (1, "too small"), (0, "too small"),
     ("six", "whole number"), (2.5, "whole number"), (None, "whole number")],
)  # fmt: skip
def test_invalid_k_is_a_parameter_error(k, match):
    x, _, _ = blobs(sizes=(10, 10, 10))
    with pytest.raises(ParameterError, match=match) as info:
        SegmentModel(k=k).fit(x)
    assert info.value.hint


def test_k_given_as_a_whole_number_string_or_float_is_accepted():
    x, _, _ = blobs(sizes=(20, 20, 20))
    assert SegmentModel(k="3").fit(x).k_ == 3
    assert SegmentModel(k=3.0).fit(x).k_ == 3


def test_other_invalid_inputs():
    x, _, _ = blobs(sizes=(10, 10, 10))
    with pytest.raises(ParameterError, match="unknown algorithm"):
        SegmentModel(algorithm="dbscan").fit(x)
    with pytest.raises(ParameterError, match="at least 3"):
        SegmentModel().fit(x[:2])
    with pytest.raises(ParameterError, match="not fitted"):
        SegmentModel().predict(x)


def test_quality_metrics_are_nan_for_a_single_segment():
    x, _, _ = blobs(sizes=(10, 10))
    got = quality_metrics(x, np.zeros(len(x), dtype=int), "euclidean", seed=0)
    assert all(np.isnan(v) for v in got.values())
