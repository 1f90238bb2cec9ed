"""Describe one segment in depth, or compare two, from a finished run.

Every number in a narrative is formatted from the result's own fields by the
formatters of :mod:`tools.explain.wording`; nothing is computed inside a sentence.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError
from tools.core.run_state import RunState
from tools.explain.labels import label_segments, ordered_traits
from tools.explain.quality import contrastive_members
from tools.explain.wording import (
    Voice,
    clause,
    fmt_lift,
    fmt_pct,
    fmt_value,
    keyword_list,
)
from tools.segment.features import feature_label
from tools.segment.significance import ALPHA, Pool, benjamini_hochberg, cited
from tools.segment.summary import Trait

MIN_SEGMENT_SIZE = 10  # below this, members are never listed one by one
MIN_ITEM_SUPPORT = 5
N_CONTRASTIVE = 3


@dataclass(frozen=True)
class TypicalItem:
    """An item over-represented in a segment's interactions: ``lift`` = its share there / its share overall."""

    item_id: str
    title: str
    count: int  # the segment's interactions with it
    lift: float


@dataclass(frozen=True)
class SegmentSide:
    segment_id: int
    name: str
    size: int
    share: float


@dataclass(frozen=True)
class SegmentDescription:
    """One segment in depth, with its place in the segment tree: its parent (a sub-segment) or its sub-segments."""

    segment_id: int
    name: str
    description: str
    size: int
    share: float
    traits: tuple[Trait, ...]
    keywords: tuple[str, ...]
    representative_user_ids: tuple[str, ...]
    representative_texts: tuple[str, ...]
    contrastive_user_ids: tuple[str, ...]  # members of other segments nearest this one's centre
    typical_items: tuple[TypicalItem, ...]
    narrative: str
    note: str | None = None
    level: int = 0
    parent: SegmentSide | None = None
    children: tuple[SegmentSide, ...] = ()
    siblings: tuple[SegmentSide, ...] = ()
    traits_vs_parent: tuple[Trait, ...] = ()  # what sets a sub-segment apart within its parent

    def as_dict(self) -> dict:
        return asdict(self) | {"traits": [t.as_dict() for t in self.traits],
                               "traits_vs_parent": [t.as_dict() for t in self.traits_vs_parent]}


@dataclass(frozen=True)
class TraitDifference:
    """One behaviour feature in two segments: both means, their ratio, the gap in population std units,
    and the test of a's members against b's (tools/segment/significance.py; q over the features compared)."""

    feature: str
    label: str
    unit: str
    value_a: float
    value_b: float
    ratio: float | None  # value_a / value_b; None when value_b is 0
    std_difference: float  # (value_a - value_b) / population std
    p: float | None = None
    q: float | None = None
    test: str | None = None


@dataclass(frozen=True)
class SegmentComparison:
    a: SegmentSide
    b: SegmentSide
    differences: tuple[TraitDifference, ...]  # largest |std_difference| first
    keywords_only_a: tuple[str, ...]
    keywords_only_b: tuple[str, ...]
    narrative: str

    def as_dict(self) -> dict:
        return asdict(self)


def _names(run: RunState) -> dict[int, tuple[str, str]]:
    """(name, description) per segment: the applied labels, else extractive ones made now."""
    segs = run.summary["segments"]
    if all(s.get("name") for s in segs):
        return {s["id"]: (s["name"], s.get("description") or "") for s in segs}
    return {lab.segment_id: (lab.name, lab.description) for lab in label_segments(run.summary)}


def typical_items(run: RunState, segment_id: int, n: int = 5, min_support: int = MIN_ITEM_SUPPORT) -> tuple[TypicalItem, ...]:
    """Items most over-represented in the segment's interactions, each with at least ``min_support`` of them.

    ``lift`` is the item's share of the segment's interactions over its share of
    all interactions. Items are ranked by that lift shrunk towards 1 by
    ``min_support`` pseudo-interactions, so a handful of interactions that all
    happen to fall in the segment (the largest possible lift) does not outrank
    an item the segment uses heavily.
    """
    ev = run.data.events
    if n <= 0 or ev["item_id"].isna().all():
        return ()
    rows = pd.Index(run.user_ids.astype(str)).get_indexer(ev["user_id"].astype(str))
    known = (rows >= 0) & ev["item_id"].notna().to_numpy()
    items = ev["item_id"].astype(str).to_numpy()[known]
    in_seg = run.members(segment_id)[rows[known]]
    if not in_seg.any():
        return ()
    overall = pd.Series(items).value_counts()
    seg = pd.Series(items[in_seg]).value_counts()
    table = pd.DataFrame({"count": seg, "total": overall.reindex(seg.index)})
    expected = table["total"] * in_seg.sum() / len(items)
    table["lift"] = table["count"] / expected
    table["rank"] = (table["count"] + min_support) / (expected + min_support)
    table = table[(table["count"] >= min_support) & (table["lift"] > 1.0)]
    table = table.rename_axis("item_id").reset_index().sort_values(["rank", "count", "item_id"], ascending=[False, False, True])
    titles: dict[str, str] = {}
    if run.data.items is not None:
        catalogue = run.data.items
        titles = dict(zip(catalogue["item_id"].astype(str), catalogue["title"].fillna("").astype(str)))
    return tuple(
        TypicalItem(r.item_id, titles.get(r.item_id, ""), int(r.count), float(r.lift)) for r in table.head(n).itertuples()
    )


def describe_segment(
    run: RunState, segment_id: int, n_items: int = 5, min_segment_size: int = MIN_SEGMENT_SIZE
) -> SegmentDescription:
    """Everything about one segment: size, traits with lift, keywords, typical items, members and a short narrative.

    Members of a segment smaller than ``min_segment_size`` are never listed one
    by one (``note`` says so); contrastive members come only from segments at
    least that large.
    """
    seg = run.segment(segment_id)
    names = _names(run)
    name, description = names[segment_id]
    traits = tuple(Trait(**t) for t in cited(seg.get("traits")))
    small = seg["size"] < min_segment_size
    note = f"segment smaller than {min_segment_size}: members not listed" if small else None
    reps = () if small else tuple(seg.get("representative_user_ids", []))
    texts = () if small else tuple(seg.get("representative_texts", []))
    contrast = () if small else tuple(contrastive_members(run, segment_id, N_CONTRASTIVE, min_segment_size))
    items = typical_items(run, segment_id, n_items)
    voice = Voice.of(run.summary)
    kind = voice.kind
    parent_id = seg.get("parent")

    def side(sid: int) -> SegmentSide:
        other = run.segment(sid)
        return SegmentSide(sid, names[sid][0], other["size"], other["share"])

    parent = None if parent_id is None else side(int(parent_id))
    children = tuple(side(int(c)) for c in seg.get("children") or ())
    siblings = () if parent is None else tuple(side(int(c)) for c in run.segment(parent.segment_id).get("children") or () if c != segment_id)
    vs_parent = tuple(Trait(**t) for t in cited(seg.get("traits_vs_parent")))
    if parent is not None and vs_parent:
        # A sub-segment reads against its parent: what sets it apart from its siblings.
        same_level = [run.segment(s.segment_id) | {"traits": run.segment(s.segment_id).get("traits_vs_parent") or []} for s in siblings]
        lead = ordered_traits(seg | {"traits": seg["traits_vs_parent"]}, [seg | {"traits": seg["traits_vs_parent"]}, *same_level], kind, voice)
        versus = f'all of segment {parent.segment_id} ("{parent.name}")'
    else:
        lead = ordered_traits(seg, [s for s in run.summary["segments"] if s.get("level", 0) == seg.get("level", 0)], kind, voice)
        versus = "everyone"
    narrative = _narrative(segment_id, name, seg["size"], seg["share"], voice, lead, tuple(seg.get("keywords", [])), items,
                           versus, parent, len(children))
    return SegmentDescription(
        segment_id, name, description, seg["size"], seg["share"], traits, tuple(seg.get("keywords", [])),
        reps, texts, contrast, items, narrative, note, int(seg.get("level", 0)), parent, children, siblings, vs_parent,
    )


def _narrative(sid: int, name: str, size: int, share: float, voice: Voice, traits: list[dict],
               keywords: tuple[str, ...], items: tuple[TypicalItem, ...], versus: str = "everyone",
               parent: SegmentSide | None = None, n_children: int = 0) -> str:
    """2-3 sentences, every number formatted from the arguments; names and item titles quoted (they are data, not prose)."""
    where = ""
    if parent is not None:
        where = f', a sub-segment of segment {parent.segment_id} ("{parent.name}")'
    elif n_children:
        where = f" in {n_children} sub-segments"
    sentences = [f'Segment {sid} ("{name}") has {size} {voice.member(size)} ({fmt_pct(share, 1)} of all){where}.']
    if traits:
        first, second = traits[:2] if len(traits) > 1 else traits * 2
        text = clause(first, lead=False, also=False, voice=voice)
        if len(traits) > 1:
            same_verb = all(t["feature"].startswith("category_") and t["effect"] > 0 for t in (first, second))
            text += " and " + (clause(second, lead=False, voice=voice).removeprefix("also favour ") if same_verb
                               else clause(second, lead=False, also=False, voice=voice))
        sentences.append(f"Compared with {versus}, they {text}.")
    if items:
        listed = [f"{_item_name(i)} ({i.count} interactions, {fmt_lift(i.lift)} the average)" for i in items[:3]]
        sentences.append("Typical items: " + keyword_list(listed) + ".")
    elif keywords:
        sentences.append(f"Their most distinctive words are {keyword_list(keywords[:3])}.")
    return " ".join(sentences)


def _item_name(item: TypicalItem) -> str:
    return f'"{item.title}"' if item.title else f'item "{item.item_id}"'


def compare_segments(run: RunState, a: int, b: int, n: int = 6) -> SegmentComparison:
    """How segments ``a`` and ``b`` differ: the behaviour features with the largest standardised gap that
    are significant (a's members against b's, Benjamini–Hochberg over the features compared), and their own keywords."""
    if a == b:
        raise ParameterError(f"cannot compare segment {a} with itself", "name two different segments")
    seg_a, seg_b = run.segment(a), run.segment(b)
    names = _names(run)
    side_a = SegmentSide(a, names[a][0], seg_a["size"], seg_a["share"])
    side_b = SegmentSide(b, names[b][0], seg_b["size"], seg_b["share"])
    diffs = _differences(run, a, b)[:n]
    kw_a, kw_b = list(seg_a.get("keywords", [])), list(seg_b.get("keywords", []))
    only_a = tuple(k for k in kw_a if k not in kw_b)
    only_b = tuple(k for k in kw_b if k not in kw_a)
    voice = Voice.of(run.summary)
    head = (f'Segment {a} ("{side_a.name}", {side_a.size} {voice.member(side_a.size)}) differs from '
            f'segment {b} ("{side_b.name}", {side_b.size} {voice.member(side_b.size)}) most in ')
    if diffs:
        gaps = [f"{d.label} ({fmt_value(d.value_a, d.unit, voice.currency)} vs {fmt_value(d.value_b, d.unit, voice.currency)})"
                for d in diffs[:2]]
        narrative = head + " and ".join(gaps) + "."
    elif only_a or only_b:
        narrative = head + f"what they talk about ({keyword_list(only_a[:3]) or 'nothing of its own'} vs {keyword_list(only_b[:3]) or 'nothing of its own'})."
    else:
        narrative = head.replace(" most in ", "") + " in nothing measured here."
    return SegmentComparison(side_a, side_b, tuple(diffs), only_a, only_b, narrative)


def _differences(run: RunState, a: int, b: int) -> list[TraitDifference]:
    raw = run.feature_raw
    if raw.size == 0:
        return []
    in_a, in_b = run.members(a), run.members(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is skipped below as "not comparable"
        pop_std = np.nanstd(raw, axis=0)
        mean_a = np.nanmean(raw[in_a], axis=0)
        mean_b = np.nanmean(raw[in_b], axis=0)
    tests = Pool(np.vstack([raw[in_a], raw[in_b]])).compare(np.arange(int(in_a.sum() + in_b.sum())) < in_a.sum())
    meta = _feature_meta(run)
    out = []
    for j, feature in enumerate(run.feature_names):
        va, vb, sd = float(mean_a[j]), float(mean_b[j]), float(pop_std[j])
        if not (math.isfinite(va) and math.isfinite(vb)) or not math.isfinite(sd) or sd <= 1e-12:
            continue
        label, unit = meta(feature)
        ratio = va / vb if abs(vb) > 1e-12 else None
        p = float(tests.p[j]) if np.isfinite(tests.p[j]) and tests.consistent[j] else None
        out.append(TraitDifference(feature, label, unit, va, vb, ratio, (va - vb) / sd, p, None, tests.method[j]))
    tested = [d for d in out if d.p is not None]
    q = dict(zip((d.feature for d in tested), benjamini_hochberg([d.p for d in tested]).tolist()))
    out = [replace(d, q=q[d.feature]) for d in out if d.feature in q and q[d.feature] < ALPHA]
    out.sort(key=lambda d: (-abs(d.std_difference), d.feature))
    return out


def _feature_meta(run: RunState):
    """(label, unit) per feature: as segments.json printed them, else as features.py names them."""
    known = {t["feature"]: (t["label"], t["unit"]) for s in run.summary["segments"] for t in s.get("traits", [])}

    def meta(feature: str) -> tuple[str, str]:
        return known[feature] if feature in known else feature_label(feature)

    return meta
