"""TextSegmentModel and its neighbour graph: groups recovered, fit/predict agreement, repeats, small data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tools.core.errors import ParameterError
from tools.core.linalg import normalize_rows
from tools.segment.neighbour_graph import (
    diffuse,
    diffusion_operator,
    local_weights,
    shared_neighbour_share,
)
from tools.segment.text_clusters import TextSegmentModel


def sphere_groups(sizes, spreads, dim=24, seed=0):
    """Groups of unit vectors around random directions, each with its own spread (tight and broad intents)."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(size=(len(sizes), dim)))
    points, truth = [], []
    for g, (n, spread) in enumerate(zip(sizes, spreads)):
        points.append(normalize_rows(centres[g] + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim))))
        truth += [g] * n
    return np.vstack(points).astype(np.float32), np.asarray(truth), centres


@pytest.fixture(scope="module")
def groups():
    return sphere_groups([90, 80, 70, 60, 50, 60, 70, 80], [0.3, 0.3, 0.5, 0.5, 0.8, 0.8, 1.0, 1.0], seed=0)


# ---------------------------------------------------------------- the graph

def test_local_weights_put_the_nearest_at_one_and_sum_to_log2_m():
    rng = np.random.default_rng(1)
    dense = np.sort(rng.uniform(0.01, 0.05, size=(20, 8)), axis=1)
    sparse = np.sort(rng.uniform(0.5, 1.5, size=(20, 8)), axis=1)
    for dist in (dense, sparse):
        w = local_weights(dist)
        np.testing.assert_allclose(w[:, 0], 1.0)
        np.testing.assert_allclose(w.sum(axis=1), np.log2(8), rtol=1e-4)
        assert np.all(np.diff(w, axis=1) <= 1e-12)  # farther is never heavier
    np.testing.assert_array_equal(local_weights(dense[:, :2]), 1.0)  # two neighbours: nothing to calibrate


def test_shared_neighbour_share_counts_common_neighbours():
    # Each point with its two neighbours: {0,1,2}, {1,0,2}, {2,3,0}, {3,1,0}.
    idx = np.array([[1, 2], [0, 2], [3, 0], [1, 0]])
    share = shared_neighbour_share(idx)
    # {0,1,2} ∩ {1,0,2} = 3 of 3; {0,1,2} ∩ {2,3,0} = {0,2}: 2 of 3.
    np.testing.assert_allclose(share[0], [1.0, 2 / 3])
    # {2,3,0} ∩ {3,1,0} = {3,0}: 2 of 3; {2,3,0} ∩ {0,1,2} = {0,2}: 2 of 3.
    np.testing.assert_allclose(share[2], [2 / 3, 2 / 3])


def test_diffusion_operator_is_symmetric_in_support_and_row_stochastic(groups):
    from sklearn.neighbors import NearestNeighbors

    x, _, _ = groups
    dist, idx = NearestNeighbors(n_neighbors=8).fit(x).kneighbors()
    p = diffusion_operator(idx, dist)
    np.testing.assert_allclose(np.asarray(p.sum(axis=1)).ravel(), 1.0, rtol=1e-6)
    support = (p > 0).astype(int)
    assert (support != support.T).nnz == 0  # the fuzzy union keeps an edge either end chose
    assert p.diagonal().max() == 0


def test_diffusion_tightens_every_group_more_than_it_moves_groups_together(groups):
    from sklearn.neighbors import NearestNeighbors

    x, truth, _ = groups
    dist, idx = NearestNeighbors(n_neighbors=8).fit(x).kneighbors()
    y = diffuse(x, diffusion_operator(idx, dist), self_weight=0.3, rounds=8)

    def spread_and_gap(v):
        means = np.vstack([v[truth == g].mean(axis=0) for g in range(truth.max() + 1)])
        spread = np.mean([np.linalg.norm(v[truth == g] - means[g], axis=1).mean() for g in range(len(means))])
        gaps = np.linalg.norm(means[:, None] - means[None], axis=2)
        return spread, gaps[np.triu_indices(len(means), 1)].min()

    before, after = spread_and_gap(x), spread_and_gap(y)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-5)
    assert after[0] / after[1] < 0.7 * (before[0] / before[1])


# ---------------------------------------------------------------- the model

def test_recovers_groups_of_different_spread_with_k_given_and_auto(groups):
    x, truth, _ = groups
    given = TextSegmentModel(k=8, seed=0).fit(x)
    assert given.k_ == 8 and adjusted_rand_score(truth, given.labels_) >= 0.95
    auto = TextSegmentModel(seed=0, max_k=20).fit(x)
    assert auto.k_ == 8, auto.k_choice_.reason
    assert adjusted_rand_score(truth, auto.labels_) >= 0.95
    assert "silhouette" in auto.k_choice_.reason and "k=8" in auto.k_choice_.reason
    tried = [c.k for c in auto.k_choice_.candidates]
    assert tried == sorted(tried) and 8 in tried and len(tried) < 19  # a coarse grid, then the k next to it
    assert set(given.metrics_) == {"silhouette", "calinski_harabasz", "davies_bouldin"}


def test_labels_are_sorted_so_segment_0_is_largest(groups):
    x, truth, _ = groups
    model = TextSegmentModel(k=8, seed=0).fit(x)
    counts = np.bincount(model.labels_)
    assert list(counts) == sorted(counts, reverse=True)


def test_predict_agrees_with_labels_on_the_fitted_data(groups):
    x, _, _ = groups
    model = TextSegmentModel(k=8, seed=0).fit(x)
    np.testing.assert_array_equal(model.predict(x), model.labels_)
    np.testing.assert_array_equal(model.predict(x[::-1]), model.labels_[::-1])  # order and batch do not matter
    assert model.centroids_.shape == (8, model.axes_.shape[0])


def test_agreement_and_quality_hold_when_the_graph_is_a_sample(groups):
    x, truth, _ = groups
    model = TextSegmentModel(k=8, seed=3, reference_size=300).fit(x)
    assert len(model.reference_) == 300
    np.testing.assert_array_equal(model.predict(x), model.labels_)
    assert adjusted_rand_score(truth, model.labels_) >= 0.95


def test_agreement_holds_where_diffusion_moves_texts_across_segments():
    x, _, _ = sphere_groups([150, 100, 50], [1.2, 1.2, 1.2], seed=5)  # overlapping groups
    model = TextSegmentModel(k=3, seed=1, reference_size=120).fit(x)
    undiffused = np.argmax(model._project(x) @ model.centroids_.T, axis=1)
    assert (undiffused != model.labels_).sum() >= 5  # the check below is not vacuous
    np.testing.assert_array_equal(model.predict(x), model.labels_)


def test_reference_texts_keep_their_own_diffused_vectors(groups):
    x, _, _ = groups
    model = TextSegmentModel(k=8, seed=0, reference_size=300).fit(x)
    np.testing.assert_array_equal(model.transform(model.reference_), model.y_ref_)
    others = model.transform(x[:50])
    assert np.all(np.isfinite(others)) and others.shape == (50, model.y_ref_.shape[1])


def test_new_texts_near_a_group_centre_join_that_group(groups):
    x, truth, centres = groups
    model = TextSegmentModel(k=8, seed=0).fit(x)
    segment_of = {g: int(np.bincount(model.labels_[truth == g]).argmax()) for g in range(len(centres))}
    rng = np.random.default_rng(9)
    new = normalize_rows(np.repeat(centres, 3, axis=0) + rng.normal(scale=0.05, size=(len(centres) * 3, x.shape[1])))
    np.testing.assert_array_equal(model.predict(new.astype(np.float32)), [segment_of[g] for g in range(len(centres)) for _ in range(3)])


def test_repeated_texts_are_one_point_and_share_a_segment(groups):
    x, truth, _ = groups
    repeated = np.vstack([x, np.repeat(x[:1], 40, axis=0)])  # one message sent 41 times
    model = TextSegmentModel(k=8, seed=0).fit(repeated)
    assert len(model.reference_) == len(x)
    assert len(set(model.labels_[len(x) :].tolist()) | {model.labels_[0]}) == 1
    assert adjusted_rand_score(truth, model.labels_[: len(x)]) >= 0.95
    np.testing.assert_array_equal(model.predict(repeated), model.labels_)


def test_fit_is_reproducible_for_a_seed():
    x, _, _ = sphere_groups([120, 90, 60], [1.2, 1.2, 1.2], seed=4)  # overlapping: sampling matters
    kwargs = dict(seed=7, sample_size=100, reference_size=150, max_k=10)
    a, b = TextSegmentModel(**kwargs).fit(x), TextSegmentModel(**kwargs).fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    assert a.k_choice_.reason == b.k_choice_.reason


def test_small_data_without_diffusion_still_segments():
    x, truth, _ = sphere_groups([5, 5, 5], [0.2, 0.2, 0.2], seed=2)  # 15 texts: no neighbour averaging
    model = TextSegmentModel(k=3, seed=0).fit(x)
    assert model.m_ == 0
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    np.testing.assert_array_equal(model.predict(x), model.labels_)


@pytest.mark.parametrize(
    ("k", "match"),
    [(1, "too small"), (300, "not less than"), ("many", "whole number"), (2.5, "whole number")],
)
def test_invalid_k_is_a_parameter_error(groups, k, match):
    x, _, _ = groups
    with pytest.raises(ParameterError, match=match):
        TextSegmentModel(k=k).fit(x[:200])


def test_more_segments_than_distinct_texts_is_a_parameter_error():
    x = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)  # 20 users, 4 distinct texts
    with pytest.raises(ParameterError, match="4 distinct texts"):
        TextSegmentModel(k=6).fit(x)
    with pytest.raises(ParameterError, match="at least 3"):
        TextSegmentModel(k=2).fit(x[:2])
    with pytest.raises(ParameterError, match="not fitted"):
        TextSegmentModel().predict(x)
