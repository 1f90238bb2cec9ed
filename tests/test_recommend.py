"""Recommendation: the leave-last-out split, ranking metrics, the baselines' maths, and the hybrid recommender."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tools.core.errors import DataError, ParameterError
from tools.data.interactions import (
    InteractionMatrix,
    holdout_last,
    leave_last_out_split,
    ordered_ids,
)
from tools.recommend.baselines import EaseSolver, cosine_item_similarity, tune_ease_l2
from tools.recommend.evaluate import HYBRID_METHOD, evaluate
from tools.recommend.hybrid import HybridRecommender, align_rows
from tools.recommend.ranking import (
    hit_rate,
    ndcg,
    rankable_mask,
    target_ranks,
    top_k,
    zscore_rows,
)


def _events(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(event_type="rating", value=np.nan, text=None)


def _sequences(n_users: int = 150, seed: int = 0) -> pd.DataFrame:
    """Three segments, each walking along its own block of 15 items in order, plus some noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        seg = u % 3
        start = int(rng.integers(0, 8))
        t = float(rng.integers(0, 1000))
        for step in range(int(rng.integers(4, 8))):
            rows.append((f"u{u:03d}", f"i{seg * 15 + start + step:02d}", t))
            t += float(rng.integers(1, 50))
        for _ in range(2):
            rows.append((f"u{u:03d}", f"i{int(rng.integers(0, 45)):02d}", float(rng.integers(0, 1000))))
    return _events(rows)


# --------------------------------------------------------------- the split
def test_split_takes_latest_breaks_ties_by_numeric_id_and_drops_unseen_items():
    events = _events(
        [
            ("a", "1", 1), ("a", "2", 2), ("a", "10", 2),  # tie at t=2: numerically 10 > 2 (as strings "2" > "10")
            ("b", "1", 1), ("b", "99", 5),  # 99 never appears in training -> dropped
            ("c", "2", 1), ("c", "1", 5), ("c", "2", 9),  # repeated pair keeps its latest time, 9
            ("d", "10", 3), ("d", "1", 4),
        ]
    )
    split = leave_last_out_split(events)
    assert dict(zip(split.test["user_id"], split.test["item_id"])) == {"a": "10", "c": "2", "d": "1"}
    assert split.n_test_users == 3 and split.dropped_unseen_items == 1
    assert len(split.train) == 5  # a:1,2  b:1  c:1  d:10 ; every pair once
    assert not split.train.duplicated(["user_id", "item_id"]).any()


def test_split_string_ids_unknown_times_and_no_times():
    assert list(ordered_ids(["b", "10", "a", "2"])) == ["10", "2", "a", "b"]
    assert list(ordered_ids(["10", "2", "1"])) == ["1", "2", "10"]
    events = _events([("a", "x", np.nan), ("a", "y", 1.0), ("b", "x", 2.0), ("b", "y", np.nan)])
    split = leave_last_out_split(events)  # unknown times count as oldest
    assert dict(zip(split.test["user_id"], split.test["item_id"])) == {"a": "y", "b": "x"}
    with pytest.raises(DataError):
        leave_last_out_split(_events([("a", "x", np.nan), ("a", "y", np.nan)]))


def test_holdout_last_keeps_the_index():
    matrix = InteractionMatrix.from_events(_events([("a", "1", 1), ("a", "2", 2), ("b", "2", 1), ("b", "1", 3)]))
    train, users, targets = holdout_last(matrix)
    assert list(train.user_ids) == ["a", "b"] and list(train.item_ids) == ["1", "2"]
    assert users.tolist() == [0, 1] and targets.tolist() == [1, 0]
    assert train.csr.toarray().tolist() == [[1, 0], [0, 1]]


# ------------------------------------------------------- ranking and metrics
def test_metrics_on_hand_computed_ranks():
    ranks = np.array([0, 1, 9, 10])
    assert hit_rate(ranks, 10) == 0.75
    assert ndcg(ranks, 10) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11)) / 4)


def test_target_ranks_skip_seen_items_and_break_ties_by_column():
    scores = np.array([[5.0, 3.0, 3.0, 9.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]))
    rankable = rankable_mask(seen)
    # row 0: item 3 (9.0) is seen; item 2 ties with item 1, which comes first -> rank 2
    assert target_ranks(scores, rankable, np.array([2, 3])).tolist() == [2, 3]
    cols, vals = top_k(scores, rankable, 3)
    assert cols.tolist() == [[0, 1, 2], [0, 1, 2]]
    cols, _ = top_k(scores, rankable_mask(sp.csr_matrix(np.array([[1, 1, 1, 0, 1], [0] * 5]))), 2)
    assert cols[0].tolist() == [3, -1]


def test_zscore_ignores_excluded_items():
    scores = np.array([[1.0, 2.0, 3.0, 100.0]], dtype=np.float32)
    z = zscore_rows(scores, np.array([[True, True, True, False]]))
    assert z[0, :3] == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)], rel=1e-5) and z[0, 3] == 0.0


# ------------------------------------------------------------- baselines
def _naive_ease(x: np.ndarray, l2: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("shape", [(12, 6), (4, 10)])  # more users than items (primal), fewer (dual)
def test_ease_matches_the_closed_form(shape):
    rng = np.random.default_rng(1)
    x = (rng.random(shape) < 0.4).astype(float)
    x[0, :] = 1.0  # every item interacted
    solver = EaseSolver(sp.csr_matrix(x))
    assert solver.dual == (shape[0] < shape[1])
    weights = solver.weights(3.0)
    naive = _naive_ease(x, 3.0)
    assert weights.score(sp.csr_matrix(x)) == pytest.approx(x @ naive, abs=1e-4)
    assert weights.column(2) == pytest.approx(naive[:, 2], abs=1e-4)


def test_ease_item_cap_covers_the_most_interacted_items():
    x = np.array([[1, 1, 0, 1], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=float)
    weights = EaseSolver(sp.csr_matrix(x), max_items=2).weights(1.0)
    assert weights.head.tolist() == [0, 1]
    scores = weights.score(sp.csr_matrix(x))
    assert scores[:, [0, 1]] == pytest.approx(x[:, :2] @ _naive_ease(x[:, :2], 1.0), abs=1e-5)
    assert (scores[:, 2:] <= scores[:, :2].min(axis=1, keepdims=True) + 1e-6).all()
    with pytest.raises(ParameterError):
        EaseSolver(sp.csr_matrix(x)).weights(0.0)


def test_cosine_similarity_matches_numpy():
    x = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=float)
    norms = np.sqrt(x.sum(axis=0))
    expected = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(expected, 0.0)
    sim = cosine_item_similarity(sp.csr_matrix(x))
    assert np.asarray(sim.toarray() if sp.issparse(sim) else sim) == pytest.approx(expected, abs=1e-6)


def test_lambda_search_reports_every_value():
    matrix = InteractionMatrix.from_events(_sequences(60))
    train, users, targets = holdout_last(matrix)
    best, results = tune_ease_l2(EaseSolver(train.csr), train.csr, users, targets, None, (50.0, 5.0))
    assert set(results) == {5.0, 50.0} and best.l2 in results
    assert results[best.l2][::-1] == max(r[::-1] for r in results.values())


# ------------------------------------------------------------- the hybrid
@pytest.fixture(scope="module")
def fitted() -> tuple[HybridRecommender, InteractionMatrix]:
    matrix = InteractionMatrix.from_events(_sequences())
    labels = pd.Series({u: f"s{int(u[1:]) % 3}" for u in matrix.user_ids})
    return HybridRecommender(l2_grid=(5.0, 50.0)).fit(matrix, segment_labels=labels), matrix


def _drifting(n_users: int = 400, seed: int = 1, n_segments: int = 4, per_segment: int = 24, periods: int = 8) -> pd.DataFrame:
    """Each segment has its own items, and which of them are in fashion drifts with time (3 per period).

    A user's next item is mostly one in fashion in their segment at their latest time: history,
    segment and time each narrow it down, so a good blend beats every signal alone.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        seg = u % n_segments
        t = float(rng.uniform(0, periods - 1))
        for _ in range(int(rng.integers(5, 10))):
            j = (int(t) * 3 + int(rng.integers(0, 3))) % per_segment if rng.random() < 0.75 else int(rng.integers(0, per_segment))
            rows.append((f"u{u:03d}", f"i{seg * per_segment + j:03d}", t * 1000))
            t = min(t + float(rng.uniform(0.05, 0.4)), periods - 0.001)
    return _events(rows)


def test_hybrid_blend_beats_each_component_and_an_untuned_blend_on_held_out_users():
    # The weights are tuned on a validation split of the training data; here they are judged on each
    # user's held-out latest item, which tuning never saw.
    events = _drifting()
    split = leave_last_out_split(events)
    train = InteractionMatrix.from_pairs(split.train, user_ids=ordered_ids(split.train["user_id"]),
                                         item_ids=ordered_ids(split.train["item_id"]))
    users = pd.Index(train.user_ids).get_indexer(split.test["user_id"]).astype(np.int64)
    targets = pd.Index(train.item_ids).get_indexer(split.test["item_id"]).astype(np.int64)
    labels = pd.Series({u: f"s{int(u[1:]) % 4}" for u in train.user_ids})
    model = HybridRecommender(l2_grid=(5.0, 50.0)).fit(train, segment_labels=labels)
    assert model.l2_ in (5.0, 50.0) and model.half_life_ in model.half_life_grid

    def held_out(weights: dict[str, float]) -> tuple[float, float]:
        probe = copy.copy(model)
        probe.weights_ = weights
        ranks = target_ranks(probe.blended_scores(users), rankable_mask(train.csr[users]), targets)
        return hit_rate(ranks, 10), ndcg(ranks, 10)

    blend = held_out(model.weights_)
    single = {name: held_out({name: 1.0}) for name in model.weights_}
    assert set(single) == {"ease", "similar_items", "segment_popularity", "trending"} and len(users) > 350
    best = max(nd for _, nd in single.values())
    assert blend[1] >= best + 0.03, (blend, single)  # the signals complement each other here
    assert all(blend[0] >= hr for hr, _ in single.values()), (blend, single)
    untuned = held_out(dict.fromkeys(model.weights_, 1.0))
    assert blend[1] > untuned[1], (blend, untuned)


def test_hybrid_excludes_seen_items_and_explains_scores(fitted):
    model, matrix = fitted
    user = "u004"
    seen = set(matrix.item_ids[matrix.csr[matrix.user_index(user)[0]].indices])
    recs = model.recommend(user, k=5)
    assert len(recs) == 5 and not seen & {r.item_id for r in recs}
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    for rec in recs:
        assert sum(rec.components.values()) == pytest.approx(rec.score, abs=1e-4)
    batch = model.top_k(None, k=5)
    row = list(batch.user_ids).index(user)
    assert list(batch.item_ids[row]) == [r.item_id for r in recs]
    assert all(item in seen for item, _ in model.because(user, recs[0].item_id))


def test_hybrid_is_deterministic(fitted):
    model, matrix = fitted
    labels = pd.Series({u: f"s{int(u[1:]) % 3}" for u in matrix.user_ids})
    again = HybridRecommender(l2_grid=(5.0, 50.0)).fit(matrix, segment_labels=labels)
    assert again.weights_ == model.weights_ and again.half_life_ == model.half_life_
    assert (again.top_k(k=10).item_ids == model.top_k(k=10).item_ids).all()


def test_hybrid_uses_content_and_rejects_bad_input():
    events = _sequences(90)
    items = ordered_ids(events["item_id"])
    vectors = np.eye(3)[[int(i[1:]) // 15 for i in items]]  # each item's segment block as its "text"
    model = HybridRecommender(l2_grid=(50.0,), half_life_grid=(None, 2.0)).fit(
        events, item_vectors=pd.DataFrame(vectors, index=items)
    )
    assert "content" in model.tuning_.single
    with pytest.raises(DataError):
        model.recommend("nobody")
    with pytest.raises(ParameterError):
        HybridRecommender().top_k()
    with pytest.raises(DataError):
        align_rows(np.zeros((2, 3)), np.array(["a", "b", "c"]))


def test_hybrid_fits_without_timestamps():
    events = _sequences(60).assign(timestamp=np.nan)
    model = HybridRecommender(l2_grid=(50.0,), half_life_grid=(None, 2.0)).fit(events)
    assert "trending" not in model.weights_ and len(model.recommend("u001", k=3)) == 3
    with pytest.raises(DataError):
        evaluate(events)  # the benchmark protocol itself needs times


def test_align_rows_accepts_frames_mappings_and_arrays():
    ids = np.array(["b", "a", "z"], dtype=object)
    assert align_rows(pd.Series({"a": 1, "b": 2}), ids).tolist()[:2] == [2, 1]
    assert align_rows({"a": [1.0, 0.0]}, ids)[1].tolist() == [1.0, 0.0]
    assert np.isnan(align_rows(np.array([[1.0], [2.0]]), ids, np.array(["a", "b"]))[2, 0])


def test_evaluate_scores_every_method_on_one_split():
    report = evaluate(_sequences(120), recommender=HybridRecommender(l2_grid=(5.0, 50.0)))
    assert [r.method for r in report.rows] == ["Pop", "ItemKNN", "EASE", HYBRID_METHOD]
    assert report.n_test_users > 100 and all(0.0 <= r.ndcg <= r.hr <= 1.0 for r in report.rows)
    assert report.as_dict()["methods"][2]["params"]["l2"] in (5.0, 50.0)


# ------------------------------------------------------- MovieLens benchmark
@pytest.mark.slow
def test_movielens_small_reproduces_the_baselines_and_the_hybrid_beats_ease(shared_data):
    path = shared_data / "ml-latest-small" / "ratings.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    ratings = pd.read_csv(path, dtype={"userId": str, "movieId": str})
    events = ratings.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "value"})
    report = evaluate(events.assign(event_type="rating", text=None))
    assert report.n_test_users == 587
    expected = {"Pop": (0.0443, 0.0202), "ItemKNN": (0.0596, 0.0271), "EASE": (0.0886, 0.0427)}
    for method, (hr, nd) in expected.items():
        row = report.row(method)
        assert row.hr == pytest.approx(hr, abs=0.003) and row.ndcg == pytest.approx(nd, abs=0.003), method
    assert report.row("EASE").params["l2"] == 50.0
    ease, hybrid = report.row("EASE"), report.row(HYBRID_METHOD)
    assert hybrid.hr >= ease.hr and hybrid.ndcg >= ease.ndcg
