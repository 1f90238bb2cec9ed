"""Recommendation quality and popularity exposure per group of a user attribute.

Quality follows the evaluation protocol of tools/recommend/evaluate.py: the
leave-last-out split, segscope's hybrid fitted on the training part exactly as
`segscope evaluate` fits it (events only), every unseen item ranked, HR@k and
NDCG@k per test user, averaged within each group.

Exposure: the share of a user's top-k recommendation slots (from that same fitted
model) that go to the most popular ``HEAD_SHARE`` of items, popularity being the
number of training users per item. Each group's figure is set beside the head's share
of its own training history, so a group that watches popular films and is shown
them is told apart from one pushed towards them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

HEAD_SHARE = 0.10  # the most popular 10% of items are "the head"


@dataclass(frozen=True, eq=False)
class RecommendationFit:
    """Per-user figures from one fitted model, shared by every attribute of an audit."""

    k: int
    user_ids: np.ndarray  # str: every user of the training matrix
    exposure: np.ndarray  # share of each user's top-k slots on head items (NaN when nothing could be ranked)
    history_head: np.ndarray  # share of each user's training items that are head items (NaN with no history)
    test_user_ids: np.ndarray  # str: users with a held-out item
    hit: np.ndarray  # 1.0 when the held-out item ranked within the top k
    gain: np.ndarray  # 1/log2(rank+2) within the top k, else 0
    n_items: int
    n_head_items: int
    seconds: float

    @property
    def hr(self) -> float:
        return float(self.hit.mean()) if len(self.hit) else float("nan")

    @property
    def ndcg(self) -> float:
        return float(self.gain.mean()) if len(self.gain) else float("nan")


def consumption_events(events: pd.DataFrame) -> pd.DataFrame:
    """What the protocol scores: tags (MovieLens tags.csv) annotate items a user already has, so they are left out."""
    return events[events["event_type"] != "tag"]


def fit_recommendations(events: pd.DataFrame, k: int = 10) -> RecommendationFit:
    """Fit the hybrid on the leave-last-out training split; per-user hits, gains, exposure and history head share."""
    from tools.recommend.baselines import evaluate_scorer, popularity
    from tools.recommend.evaluate import evaluation_split
    from tools.recommend.hybrid import HybridRecommender

    start = time.perf_counter()
    split = evaluation_split(consumption_events(events))
    train = split.train
    model = HybridRecommender(k=k).fit(train)
    _, _, ranks = evaluate_scorer(lambda u, _r: model.blended_scores(u), train.csr, split.users, split.targets, None, k)
    counts = popularity(train.csr)
    n_items = train.csr.shape[1]
    n_head = max(1, int(np.ceil(HEAD_SHARE * n_items)))
    head = np.zeros(n_items, dtype=bool)
    head[np.argsort(-counts, kind="stable")[:n_head]] = True  # ties: the earlier item, as in every ranking

    top = model.top_k(None, k=k)
    columns = pd.Index(train.item_ids).get_indexer(top.item_ids.ravel()).reshape(top.item_ids.shape)  # padding (None): -1
    shown = columns >= 0
    on_head = (shown & head[np.maximum(columns, 0)]).sum(axis=1)
    n_shown = shown.sum(axis=1)
    exposure = np.where(n_shown > 0, on_head / np.maximum(n_shown, 1), np.nan)

    csr = train.csr
    per_user = np.diff(csr.indptr)
    history = np.add.reduceat(head[csr.indices].astype(np.float64), csr.indptr[:-1]) if csr.nnz else np.zeros(csr.shape[0])
    history = np.where(per_user > 0, history / np.maximum(per_user, 1), np.nan)

    gains = np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)
    return RecommendationFit(
        k=k, user_ids=np.asarray(train.user_ids, dtype=str), exposure=exposure.astype(np.float64), history_head=history,
        test_user_ids=np.asarray(train.user_ids, dtype=str)[split.users], hit=(ranks < k).astype(np.float64), gain=gains,
        n_items=int(n_items), n_head_items=n_head, seconds=time.perf_counter() - start,
    )  # fmt: skip


@dataclass(frozen=True)
class GroupQuality:
    """One group's recommendation figures; comparisons are with everyone else in the attribute."""

    value: str
    n_test_users: int
    hr: float | None
    ndcg: float | None
    ndcg_gap: float | None  # this group's NDCG@k minus the others'
    ndcg_p: float | None  # permutation p of that gap, Holm-adjusted over the attribute's groups
    n_users: int  # users with recommendations
    exposure: float | None
    exposure_gap: float | None  # this group's head share of slots minus the others'
    exposure_p: float | None
    history_head_share: float | None
    too_few: bool  # fewer than the audit's minimum of users: figures shown, no verdict
    flags: tuple[str, ...] = ()


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def group_quality(
    fit: RecommendationFit, group_of: pd.Series, order: list[str], *, min_users: int, alpha: float,
    quality_gap: float, exposure_gap: float, permutations: int, rng: np.random.Generator,
) -> tuple[GroupQuality, ...]:
    """Per group (``order``): HR, NDCG, exposure and their gaps against the others, with Holm-adjusted permutation p-values.

    ``group_of`` maps user id → group label (missing users are left out). A group is
    flagged when it has at least ``min_users`` users and a gap is both significant
    (adjusted p < ``alpha``) and large: NDCG@k off by ``quality_gap`` of the others'
    value or more, or ``exposure_gap`` (a share) or more of head slots.
    """
    from tools.explain.audit_stats import group_difference_p, holm

    index = {g: i for i, g in enumerate(order)}

    def codes_for(user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = group_of.reindex(pd.Index(user_ids)).to_numpy(dtype=object)
        keep = np.array([label is not None and not pd.isna(label) and label in index for label in labels], dtype=bool)
        return keep, np.array([index[label] for label in labels[keep]], dtype=np.int64)

    n_groups = len(order)
    test_keep, test_codes = codes_for(fit.test_user_ids)
    gains, hits = fit.gain[test_keep], fit.hit[test_keep]
    ndcg_gap, ndcg_p = group_difference_p(gains, test_codes, n_groups, permutations, rng)
    user_keep, user_codes = codes_for(fit.user_ids)
    exposure = fit.exposure[user_keep]
    finite = np.isfinite(exposure)
    exp_gap, exp_p = group_difference_p(exposure[finite], user_codes[finite], n_groups, permutations, rng)
    history = fit.history_head[user_keep]
    n_test = np.bincount(test_codes, minlength=n_groups)
    n_users = np.bincount(user_codes[finite], minlength=n_groups)
    # Two groups make one comparison (each against the other), so only three or more are a family to adjust.
    adjust = holm if n_groups > 2 else (lambda p: p)
    testable = np.flatnonzero((n_test >= min_users) & (n_test < n_test.sum()))
    ndcg_adj = np.full(n_groups, np.nan)
    ndcg_adj[testable] = adjust(ndcg_p[testable])
    shown = np.flatnonzero((n_users >= min_users) & (n_users < n_users.sum()))
    exp_adj = np.full(n_groups, np.nan)
    exp_adj[shown] = adjust(exp_p[shown])

    out = []
    for g, value in enumerate(order):
        mine = test_codes == g
        hr = float(hits[mine].mean()) if mine.any() else None
        nd = float(gains[mine].mean()) if mine.any() else None
        others = float(gains[~mine].mean()) if (~mine).any() else None
        flags: list[str] = []
        p_nd = None if np.isnan(ndcg_adj[g]) else float(ndcg_adj[g])
        p_ex = None if np.isnan(exp_adj[g]) else float(exp_adj[g])
        if p_nd is not None and p_nd < alpha and others and abs(ndcg_gap[g]) >= quality_gap * others:
            flags.append("worse recommendations" if ndcg_gap[g] < 0 else "better recommendations")
        if p_ex is not None and p_ex < alpha and abs(exp_gap[g]) >= exposure_gap:
            flags.append("more popular items shown" if exp_gap[g] > 0 else "fewer popular items shown")
        too_few = bool(n_test[g] < min_users)
        out.append(GroupQuality(
            value=value, n_test_users=int(n_test[g]), hr=hr, ndcg=nd,
            ndcg_gap=float(ndcg_gap[g]) if mine.any() and others is not None else None, ndcg_p=p_nd,
            n_users=int(n_users[g]), exposure=_mean(exposure[finite][user_codes[finite] == g]),
            exposure_gap=float(exp_gap[g]) if n_users[g] and n_users[g] < n_users.sum() else None, exposure_p=p_ex,
            history_head_share=_mean(history[user_codes == g]), too_few=too_few, flags=tuple(flags),
        ))  # fmt: skip
    return tuple(out)
