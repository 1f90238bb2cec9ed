"""What each segment is made of: keywords, traits with lift, representative members.

Everything here is a count or a ratio computed from the data; names and
descriptions are written from these facts later, never the other way round.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tools.core.dataset import Dataset
from tools.data.items import item_texts
from tools.segment.features import BehaviourFeatures
from tools.segment.profiles import Profiles
from tools.segment.significance import Pool, fdr_adjust, sig3

N_KEYWORDS = 10
MIN_COVERAGE = 0.5  # share of a segment's members with a value before a feature can describe it
N_TRAITS = 5
N_REPRESENTATIVES = 5
MIN_EFFECT = 0.2  # standardised difference below which a trait is not "defining"


@dataclass(frozen=True)
class Trait:
    """One feature of a segment against a reference (everyone, or the rest of its parent), with its test.

    ``n`` members have a value; ``ci_low``..``ci_high`` is the 95% interval of their mean; ``p`` the
    test of members vs the rest of the reference (``test`` says which, tools/segment/significance.py);
    ``q`` its Benjamini–Hochberg q-value over every test of the run, and ``significant`` whether it
    may be cited (q < 0.05 and the test agrees with the means).
    """

    feature: str
    label: str
    unit: str
    segment_value: float
    population_value: float
    lift: float | None  # segment / population; None when the population value is 0
    effect: float  # (segment - population) / population std: what ranks traits
    currency: str | None = None  # the data's money symbol, on "money" traits only
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    q: float | None = None
    significant: bool | None = None
    test: str | None = None
    consistent: bool = True  # False when a rank test's shift points against the difference in means

    def as_dict(self) -> dict:
        out = {
            "feature": self.feature,
            "label": self.label,
            "unit": self.unit,
            "segment_value": _round(self.segment_value),
            "population_value": _round(self.population_value),
            "lift": None if self.lift is None else _round(self.lift),
            "effect": _round(self.effect),
        }
        if self.currency and self.unit == "money":
            out["currency"] = self.currency
        if self.test is not None:
            out |= {"n": self.n, "ci_low": _maybe_round(self.ci_low), "ci_high": _maybe_round(self.ci_high),
                    "p": sig3(self.p), "q": sig3(self.q), "significant": self.significant, "test": self.test}
            if not self.consistent:
                out["consistent"] = False
        return out


@dataclass(frozen=True)
class SegmentSummary:
    """One node of a run's segment tree.

    ``level`` 0 is the top level (``parent`` None); a level-1 segment is a
    sub-segment of ``parent``. ``children`` are the node's sub-segments (empty
    for a leaf: the segments users are assigned to). ``traits`` compare the
    members with everyone; ``traits_vs_parent`` (sub-segments only) with the
    members of the parent, i.e. what sets them apart from their siblings. Both are
    the strongest *significant* entries of ``profile`` / ``profile_vs_parent``, which
    hold every feature with its test (tools/segment/significance.py).
    """

    segment_id: int
    size: int
    share: float
    keywords: tuple[str, ...]
    traits: tuple[Trait, ...]
    representative_user_ids: tuple[str, ...]
    representative_texts: tuple[str, ...] = field(default=())
    name: str | None = None
    description: str | None = None
    attributes: tuple[dict, ...] = field(default=())  # over-represented user attribute values (never inputs)
    profile: tuple[Trait, ...] = field(default=())  # every feature, strongest first: what names contrast siblings by
    parent: int | None = None
    level: int = 0
    children: tuple[int, ...] = field(default=())
    traits_vs_parent: tuple[Trait, ...] = field(default=())
    profile_vs_parent: tuple[Trait, ...] = field(default=())  # every feature against the rest of the parent
    outliers: int = 0  # flagged users (tools/data/outliers.py) among the members

    def as_dict(self) -> dict:
        return {
            "id": self.segment_id,
            "name": self.name,
            "description": self.description,
            "parent": self.parent,
            "level": self.level,
            "children": list(self.children),
            "size": self.size,
            "share": _round(self.share),
            "outliers": self.outliers,
            "keywords": list(self.keywords),
            "traits": [t.as_dict() for t in self.traits],
            "traits_vs_parent": [t.as_dict() for t in self.traits_vs_parent],
            "representative_user_ids": list(self.representative_user_ids),
            "representative_texts": list(self.representative_texts),
            "attributes": list(self.attributes),
            "profile": [t.as_dict() for t in self.profile],
            "profile_vs_parent": [t.as_dict() for t in self.profile_vs_parent],
        }


def _round(x: float) -> float:
    return float(round(float(x), 4))


def _maybe_round(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else _round(x)


def class_tfidf(seg_term: sp.csr_matrix) -> np.ndarray:
    """c-TF-IDF (as in BERTopic): term frequency per segment × log(1 + avg words per segment / term frequency)."""
    counts = np.asarray(seg_term.todense(), dtype=np.float64)
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    avg_words = counts.sum() / max(len(counts), 1)
    freq = counts.sum(axis=0)
    idf = np.log1p(avg_words / np.maximum(freq, 1e-12))
    return tf * idf


def segment_keywords(data: Dataset, profiles: Profiles, labels: np.ndarray, k: int) -> list[tuple[str, ...]]:
    """Top c-TF-IDF words over the texts each segment's members touched and wrote."""
    seg_term, vocab = segment_terms(data, profiles, labels, k)
    return top_keywords(seg_term, vocab, k)


def top_keywords(seg_term: sp.csr_matrix | None, vocab: np.ndarray, k: int) -> list[tuple[str, ...]]:
    """The N_KEYWORDS best c-TF-IDF words of each row of a segment × term count matrix."""
    if seg_term is None:
        return [() for _ in range(k)]
    scores = class_tfidf(seg_term)
    out = []
    for c in range(k):
        top = np.argsort(-scores[c], kind="stable")[:N_KEYWORDS]
        out.append(tuple(vocab[j] for j in top if scores[c, j] > 0))
    return out


def segment_terms(data: Dataset, profiles: Profiles, labels: np.ndarray, k: int) -> tuple[sp.csr_matrix | None, np.ndarray]:
    """(segment × term counts over the texts members touched and wrote, the vocabulary); None when there is no text."""
    from sklearn.feature_extraction.text import CountVectorizer

    ev = data.events
    if not len(ev):
        return None, np.asarray([], dtype=object)
    uidx = pd.Index(np.asarray(profiles.user_ids, dtype=object))  # object arrays: pandas hashes them 100x faster than Arrow strings
    rows = uidx.get_indexer(ev["user_id"].to_numpy(dtype=object))
    n_users = len(profiles.user_ids)
    docs: list[str] = []
    blocks: list[sp.csr_matrix] = []
    if data.kind == "behaviour" and data.items is not None and len(data.items):
        texts = item_texts(data.items)
        cols = pd.Index(data.items["item_id"]).get_indexer(ev["item_id"])
        ok = cols >= 0
        blocks.append(sp.csr_matrix((np.ones(ok.sum()), (rows[ok], cols[ok])), shape=(n_users, len(texts))))
        docs.extend(texts.tolist())
    written = ev["text"].notna().to_numpy()
    if written.any():
        wt = ev.loc[written, "text"].astype(str).to_numpy()
        distinct = pd.unique(wt)
        cols = pd.Index(distinct).get_indexer(wt)
        blocks.append(sp.csr_matrix((np.ones(len(wt)), (rows[written], cols)), shape=(n_users, len(distinct))))
        docs.extend(distinct.tolist())
    if not docs:
        return None, np.asarray([], dtype=object)
    vectorizer = CountVectorizer(stop_words="english", min_df=1, token_pattern=r"(?u)\b[A-Za-z][A-Za-z-]+\b", lowercase=True)
    try:
        doc_term = vectorizer.fit_transform(docs)
    except ValueError:  # only stop words
        return None, np.asarray([], dtype=object)
    user_doc = sp.hstack(blocks).tocsr()
    membership = sp.csr_matrix((np.ones(n_users), (labels, np.arange(n_users))), shape=(k, n_users))
    seg_term = (membership @ user_doc @ doc_term).tocsr()
    return seg_term, np.asarray(vectorizer.get_feature_names_out())


def segment_traits(
    features: BehaviourFeatures | None, labels: np.ndarray, k: int, within: np.ndarray | None = None,
    limit: int | None = N_TRAITS, min_effect: float = MIN_EFFECT, intervals: bool = True, pool: Pool | None = None,
) -> list[tuple[Trait, ...]]:
    """The behaviour features where each segment differs most from everyone (or from the rows ``within``), with lift.

    Each trait carries its test of members vs the rest of the reference (everyone else, or the rest
    of ``within``) and the 95% interval of the members' mean; q-values come later, over the whole
    run (:func:`top_traits`). ``limit=None, min_effect=0`` gives every feature a segment has a value
    for (its profile); ``intervals=False`` leaves the intervals to the caller. ``pool``: the reference's
    :class:`Pool`, when the caller compares other groups within it too (its moments and ranks are made once).
    """
    if features is None or features.raw.shape[1] == 0:
        return [() for _ in range(k)]
    raw = features.raw
    reference = raw if within is None else raw[within]
    pool = pool or Pool(reference)
    with warnings.catch_warnings():  # a feature the reference never has is NaN: no trait, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        pop_mean = np.nanmean(reference, axis=0)
        pop_std = np.nanstd(reference, axis=0)
    codes = np.asarray(labels) if within is None else np.asarray(labels)[within]
    sizes = np.bincount(codes[codes >= 0], minlength=k)
    every = pool.compare_groups(codes, k, intervals)  # every segment's tests in one pass over the reference
    ok = np.isfinite(pop_std) & (pop_std > 1e-12)
    out = []
    for c in range(k):
        tests = every[c] if sizes[c] else None
        # A feature most members lack (days between orders of one-order customers) says nothing about
        # the segment: its mean over the few who have it would read as everyone's.
        covered = tests.n >= MIN_COVERAGE * sizes[c] if tests is not None else np.zeros(raw.shape[1], bool)
        seg_mean = np.where(covered, tests.mean, np.nan) if tests is not None else np.full(raw.shape[1], np.nan)
        with np.errstate(invalid="ignore"):
            effect = np.where(ok, (seg_mean - pop_mean) / np.where(ok, pop_std, 1.0), 0.0)
        effect = np.nan_to_num(effect)
        traits = []
        for j in np.argsort(-np.abs(effect), kind="stable"):
            if abs(effect[j]) < min_effect or len(traits) == limit:
                break
            if not (np.isfinite(seg_mean[j]) and np.isfinite(pop_mean[j])) or tests is None:
                continue
            spec = features.specs[j]
            lift = float(seg_mean[j] / pop_mean[j]) if abs(pop_mean[j]) > 1e-12 else None
            p = float(tests.p[j]) if np.isfinite(tests.p[j]) else None
            traits.append(Trait(spec.name, spec.label, spec.unit, float(seg_mean[j]), float(pop_mean[j]), lift, float(effect[j]),
                                features.currency, int(tests.n[j]), float(tests.ci_low[j]), float(tests.ci_high[j]), p,
                                test=tests.method[j], consistent=bool(tests.consistent[j])))  # fmt: skip
        out.append(tuple(traits))
    return out


def top_traits(profile: tuple[Trait, ...], limit: int = N_TRAITS, min_effect: float = MIN_EFFECT) -> tuple[Trait, ...]:
    """The defining traits: the strongest significant entries of a (q-adjusted, strongest-first) profile."""
    return tuple(t for t in profile if t.significant and abs(t.effect) >= min_effect)[:limit]


def _with_intervals(traits: tuple[Trait, ...], source: tuple[Trait, ...]) -> tuple[Trait, ...]:
    """``traits`` with each feature's interval of the members' mean taken from ``source`` (the same members)."""
    known = {t.feature: (t.ci_low, t.ci_high) for t in source}
    return tuple(replace(t, ci_low=known.get(t.feature, (None, None))[0], ci_high=known.get(t.feature, (None, None))[1])
                 for t in traits)


def trait_tests(segments: list[SegmentSummary]) -> dict:
    """How many trait tests the run made and how many stood after Benjamini–Hochberg (for segments.json)."""
    from tools.segment.significance import ALPHA

    every = [t for s in segments for t in (*s.profile, *s.profile_vs_parent)]
    tested = [t for t in every if t.p is not None]
    return {"tests": len(tested), "significant": sum(1 for t in tested if t.significant), "untested": len(every) - len(tested),
            "alpha": ALPHA, "adjustment": "Benjamini-Hochberg over every segment and feature of the run",
            "tests_used": {m: sum(1 for t in tested if t.test == m) for m in sorted({str(t.test) for t in tested})}}


N_ATTRIBUTES = 3
ATTRIBUTE_MIN_SHARE = 0.1  # a value held by fewer of a segment's members is not worth saying
ATTRIBUTE_MIN_LIFT = 1.25
MAX_ATTRIBUTE_VALUES = 50  # more distinct values (names, postcodes) describe people, not groups


def attribute_table(data: Dataset, user_ids: np.ndarray) -> pd.DataFrame | None:
    """Each user's attributes (one row per id of ``user_ids``, in order); None when the data has none."""
    if data.users is None or not data.user_attributes:
        return None
    users = data.users.drop_duplicates("user_id")
    # Looked up through object arrays: pandas hashes them 100x faster than Arrow strings.
    return users.set_index(pd.Index(users["user_id"].to_numpy(dtype=object))).reindex(pd.Index(np.asarray(user_ids, dtype=object)))


def segment_attributes(data: Dataset, user_ids: np.ndarray, labels: np.ndarray, k: int,
                       table: pd.DataFrame | None = None) -> list[tuple[dict, ...]]:
    """Per segment, the user-attribute values (country, plan) its members hold more often than everyone.

    Attributes describe segments after the fact; they are never clustering inputs, so a
    later audit can ask whether segments split people along them. ``table``: :func:`attribute_table`
    of the same users, when the caller has it.
    """
    table = attribute_table(data, user_ids) if table is None else table
    if table is None:
        return [() for _ in range(k)]
    found: list[list[dict]] = [[] for _ in range(k)]
    for column in data.user_attributes:
        values = table[column]
        if not 2 <= values.nunique() <= MAX_ATTRIBUTE_VALUES:
            continue
        counts = pd.crosstab(labels, values.fillna("(unknown)").to_numpy())
        share = counts.div(counts.sum(axis=1), axis=0)
        population = counts.sum(axis=0) / counts.to_numpy().sum()
        for c in counts.index:
            for value in counts.columns:
                seg, pop = float(share.loc[c, value]), float(population[value])
                if value != "(unknown)" and seg >= ATTRIBUTE_MIN_SHARE and seg >= ATTRIBUTE_MIN_LIFT * pop:
                    found[int(c)].append({"attribute": str(column), "value": str(value), "segment_share": _round(seg),
                                          "population_share": _round(pop), "lift": _round(seg / pop)})  # fmt: skip
    return [tuple(sorted(f, key=lambda a: -a["lift"])[:N_ATTRIBUTES]) for f in found]


def representatives(points: np.ndarray, labels: np.ndarray, k: int, n: int = N_REPRESENTATIVES) -> list[np.ndarray]:
    """Row indices of the members nearest each segment's centre (in the space given)."""
    out = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        rows = points[members]  # gathered once (at 100k users, each gather copies a segment's profiles)
        dist = ((rows - rows.mean(axis=0)) ** 2).sum(axis=1)
        out.append(members[np.argsort(dist, kind="stable")[:n]])
    return out


def _codes(labels: np.ndarray, ids: list[int]) -> np.ndarray:
    codes = np.full(len(labels), -1, dtype=np.int64)
    for i, sid in enumerate(ids):
        codes[labels == sid] = i
    return codes


def _level_facts(data: Dataset, profiles: Profiles, labels: np.ndarray, ids: list[int],
                 keywords: list[tuple[str, ...]], everyone: Pool | None = None,
                 attributes_of: pd.DataFrame | None = None) -> dict[int, tuple]:
    """(keywords, representative rows, profile vs everyone, attributes) per id in ``ids`` (every user is in one);
    ``everyone`` (the pool of every user's features) and ``attributes_of`` (their attribute table) are shared by the levels."""
    codes = _codes(labels, ids)
    profile = segment_traits(profiles.features, codes, len(ids), limit=None, min_effect=0.0, pool=everyone)
    reps = representatives(profiles.fused, codes, len(ids))
    attributes = segment_attributes(data, profiles.user_ids, codes, len(ids), attributes_of)
    return {sid: (keywords[i], reps[i], profile[i], attributes[i]) for i, sid in enumerate(ids)}


def summarise_segments(
    data: Dataset,
    profiles: Profiles,
    labels: np.ndarray,
    top_labels: np.ndarray | None = None,
    parents: dict[int, int | None] | None = None,
    fitted: np.ndarray | None = None,
    flagged: np.ndarray | None = None,
    described: tuple[Dataset, Profiles] | None = None,
) -> list[SegmentSummary]:
    """One summary per node of the segment tree, in tree order (each top-level segment, then its sub-segments).

    ``labels`` are the leaf segments users are assigned to. Without
    ``top_labels``/``parents`` the run is flat: ids 0..k-1, 0 the largest.
    Sizes and shares count every user assigned; keywords, traits, profiles,
    attributes and representatives describe the ``fitted`` users only (a mask:
    flagged outliers left out of the fit do not describe the segments either).
    ``flagged`` (a mask) is counted per segment as its ``outliers``. ``described`` is the ``fitted`` users' data
    and profiles when the caller has them already (``profiles`` may then be kept in parts: tools/segment/parts.py).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if top_labels is None or parents is None:
        top_labels = labels
        parents = {int(c): None for c in np.unique(labels)}
    top_labels = np.asarray(top_labels)
    all_labels, all_tops = labels, top_labels
    flagged = np.zeros(n, dtype=bool) if flagged is None else np.asarray(flagged, dtype=bool)
    if fitted is not None and not np.all(fitted):
        fitted = np.asarray(fitted, dtype=bool)
        if described is not None:
            data, profiles = described
        else:
            kept = data.events["user_id"].isin(pd.Index(profiles.user_ids[fitted]))
            data = replace(data, events=data.events[kept.to_numpy()].reset_index(drop=True))
            profiles = profiles.rows(fitted)
        labels, top_labels = labels[fitted], top_labels[fitted]
    tops = sorted(node for node, parent in parents.items() if parent is None)
    children = {t: sorted(node for node, parent in parents.items() if parent == t) for t in tops}
    leaves = [c for t in tops for c in (children[t] or [t])]
    # Keyword counts once, per leaf; a top-level segment's are the sum of its leaves'. c-TF-IDF is per level.
    leaf_terms, vocab = segment_terms(data, profiles, _codes(labels, leaves), len(leaves))
    to_top = sp.csr_matrix((np.ones(len(leaves)), ([tops.index(parents[c] if parents[c] is not None else c) for c in leaves],
                                                   np.arange(len(leaves)))), shape=(len(tops), len(leaves)))
    top_terms = None if leaf_terms is None else (to_top @ leaf_terms).tocsr()
    feats = profiles.features
    everyone = Pool(feats.raw) if feats is not None and feats.raw.shape[1] else None
    table = attribute_table(data, profiles.user_ids)
    facts = _level_facts(data, profiles, top_labels, tops, top_keywords(top_terms, vocab, len(tops)), everyone, table)
    subs = [c for t in tops for c in children[t]]
    if subs:
        leaf_facts = _level_facts(data, profiles, labels, leaves, top_keywords(leaf_terms, vocab, len(leaves)), everyone, table)
        facts.update({c: f for c, f in leaf_facts.items() if c in subs})
    texts_by_user: dict[str, str] = {}
    if data.kind == "text":
        first = data.events.dropna(subset=["text"]).drop_duplicates("user_id")
        texts_by_user = dict(zip(first["user_id"], first["text"].astype(str)))

    def node(sid: int, parent: int | None, members: np.ndarray, vs_parent: tuple[Trait, ...]) -> SegmentSummary:
        keywords, reps, profile, attributes = facts[sid]
        rep_ids = tuple(str(profiles.user_ids[i]) for i in reps)
        size = int(members.sum())
        return SegmentSummary(
            segment_id=sid, size=size, share=size / n, keywords=keywords, traits=(), representative_user_ids=rep_ids,
            representative_texts=tuple(texts_by_user[u] for u in rep_ids if u in texts_by_user),
            attributes=attributes, profile=profile,
            parent=parent, level=0 if parent is None else 1, children=tuple(children.get(sid, ())), profile_vs_parent=vs_parent,
            outliers=int((members & flagged).sum()),
        )

    out = []
    for t in tops:
        out.append(node(t, None, all_tops == t, ()))
        if children[t]:
            inside = top_labels == t
            codes = np.full(len(labels), -1, dtype=np.int64)
            for i, c in enumerate(children[t]):
                codes[labels == c] = i
            vs_parent = segment_traits(profiles.features, codes, len(children[t]), within=inside, limit=None, min_effect=0.0,
                                       intervals=False)  # the same members' intervals as against everyone: copied below
            out += [node(c, t, all_labels == c, vs_parent[i]) for i, c in enumerate(children[t])]
    # One family for false discovery: every segment's every feature, against everyone and against its parent.
    out = [replace(s, profile_vs_parent=_with_intervals(s.profile_vs_parent, s.profile)) for s in out]
    adjusted = fdr_adjust([x for s in out for x in (s.profile, s.profile_vs_parent)])
    return [replace(s, profile=adjusted[2 * i], profile_vs_parent=adjusted[2 * i + 1], traits=top_traits(adjusted[2 * i]),
                    traits_vs_parent=top_traits(adjusted[2 * i + 1])) for i, s in enumerate(out)]

