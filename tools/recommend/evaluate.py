"""Recommendation quality, leave-last-out with full ranking: HR@k and NDCG@k.

Pop, ItemKNN, EASE and segscope's hybrid are scored on the same split in the
same run. Every item the user has not interacted with in training is ranked;
of two equal scores the earlier item (numeric id order) ranks first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tools.data.interactions import InteractionMatrix, leave_last_out_split, ordered_ids
from tools.recommend.baselines import apply_similarity, evaluate_scorer, popularity
from tools.recommend.hybrid import HybridRecommender, align_rows

HYBRID_METHOD = "segscope hybrid"


@dataclass(frozen=True)
class MethodScore:
    """One method's figures on the test split."""

    method: str
    hr: float
    ndcg: float
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # fitting and scoring time


@dataclass(frozen=True)
class EvaluationReport:
    """HR@k / NDCG@k per method on one leave-last-out split."""

    k: int
    n_test_users: int
    n_users: int
    n_items: int
    dropped_unseen_items: int
    rows: tuple[MethodScore, ...]

    def row(self, method: str) -> MethodScore:
        """The row of ``method`` (e.g. "EASE", "segscope hybrid")."""
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(method)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (bench/results/recommend.json)."""
        return {
            "k": self.k,
            "n_test_users": self.n_test_users,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dropped_unseen_items": self.dropped_unseen_items,
            "methods": [
                {"method": r.method, "hr": r.hr, "ndcg": r.ndcg, "params": r.params, "seconds": round(r.seconds, 2)}
                for r in self.rows
            ],
        }

    def table(self) -> str:
        """A markdown table of the figures."""
        lines = [f"| method | HR@{self.k} | NDCG@{self.k} |", "|---|---|---|"]
        lines += [f"| {r.method} | {r.hr:.4f} | {r.ndcg:.4f} |" for r in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class EvaluationSplit:
    """The leave-last-out split as matrices: the training interactions, and each test user's row and held-out column."""

    train: InteractionMatrix  # every user of the events is a row (a user with one interaction has an empty row)
    users: np.ndarray  # int64: the training row of each test user
    targets: np.ndarray  # int64: the column of each test user's held-out item
    dropped_unseen_items: int


def evaluation_split(events: pd.DataFrame) -> EvaluationSplit:
    """The protocol's split of ``events``: each user's latest interaction is the test item (see the module docstring)."""
    split = leave_last_out_split(events)
    pairs = pd.concat([split.train, split.test], ignore_index=True)
    all_users = ordered_ids(pairs["user_id"])
    train = InteractionMatrix.from_pairs(split.train, user_ids=all_users, item_ids=ordered_ids(split.train["item_id"]))
    users = pd.Index(train.user_ids).get_indexer(split.test["user_id"]).astype(np.int64)
    targets = pd.Index(train.item_ids).get_indexer(split.test["item_id"]).astype(np.int64)
    return EvaluationSplit(train, users, targets, split.dropped_unseen_items)


def evaluate(
    events: pd.DataFrame,
    k: int = 10,
    user_vectors: Any = None,
    item_vectors: Any = None,
    segment_labels: Any = None,
    recommender: HybridRecommender | None = None,
) -> EvaluationReport:
    """Score Pop, ItemKNN, EASE and the hybrid on the leave-last-out split of ``events``.

    Optional inputs are indexed by id (pandas objects or mappings), or arrays
    aligned with ``ordered_ids`` of the events' users / items. They must come
    from training data only. The EASE row is the hybrid's own EASE component
    scored with plain (unweighted) rows: its λ is chosen by the same validation
    protocol, so fitting it twice would only repeat the work; likewise ItemKNN
    reuses the hybrid's item similarity. ``seconds`` is scoring time, plus
    fitting for the hybrid.
    """
    split = evaluation_split(events)
    train, users, targets, csr = split.train, split.users, split.targets, split.train.csr

    def aligned(values: Any, ids: np.ndarray, source: pd.Series) -> Any:
        if values is None or isinstance(values, (pd.Series, pd.DataFrame, dict)):
            return values
        return align_rows(values, ids, ordered_ids(source))

    start = time.perf_counter()
    model = recommender if recommender is not None else HybridRecommender(k=k)
    model.fit(
        train,
        user_vectors=aligned(user_vectors, train.user_ids, events["user_id"]),
        item_vectors=aligned(item_vectors, train.item_ids, events["item_id"]),
        segment_labels=aligned(segment_labels, train.user_ids, events["user_id"]),
    )
    fit_seconds = time.perf_counter() - start
    rows: list[MethodScore] = []

    start = time.perf_counter()
    counts = popularity(csr).astype(np.float32)
    hr, nd, _ = evaluate_scorer(lambda u, _r: np.tile(counts, (len(u), 1)), csr, users, targets, None, k)
    rows.append(MethodScore("Pop", hr, nd, {}, time.perf_counter() - start))

    # The hybrid's similar-items component is exactly ItemKNN's similarity on this training matrix.
    start = time.perf_counter()
    sim = model.signals_.item_sim
    hr, nd, _ = evaluate_scorer(lambda _u, r: apply_similarity(r, sim), csr, users, targets, None, k)
    rows.append(MethodScore("ItemKNN", hr, nd, {"neighbours": "all"}, time.perf_counter() - start))

    start = time.perf_counter()
    hr, nd, _ = evaluate_scorer(lambda _u, r: model.ease_.score(r), csr, users, targets, None, k)
    ease_params = {"l2": model.l2_, "items_covered": int(len(model.ease_.head))}
    rows.append(MethodScore("EASE", hr, nd, ease_params, time.perf_counter() - start))

    start = time.perf_counter()

    def hybrid(u: np.ndarray, _r) -> np.ndarray:
        return model.blended_scores(u)

    hr, nd, _ = evaluate_scorer(hybrid, csr, users, targets, None, k)
    params = {
        "l2": model.l2_,
        "half_life": model.half_life_,
        "floor": model.floor,
        "weights": dict(model.weights_),
        "validation": {"hr": model.tuning_.blend[0], "ndcg": model.tuning_.blend[1], "users": model.tuning_.n_users},
    }
    rows.append(MethodScore(HYBRID_METHOD, hr, nd, params, fit_seconds + time.perf_counter() - start))

    return EvaluationReport(
        k=k,
        n_test_users=len(users),
        n_users=csr.shape[0],
        n_items=csr.shape[1],
        dropped_unseen_items=split.dropped_unseen_items,
        rows=tuple(rows),
    )
