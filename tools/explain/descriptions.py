"""A segment's two-sentence description, from its own numbers in the data's units.

Three shapes: a distinctive segment opens with the trait its name rests on (against the
average); a sub-segment opens with what sets it apart from the rest of its parent; the broad
middle says so ("close to the average on every measure. If anything, they ..."). Every number
is one of the segment's, or its siblings' pooled value, formatted by tools/explain/wording.py.
Only traits that passed their test are stated (tools/segment/significance.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tools.explain.contrast import (
    RelativeTrait,
    agreeing,
    is_broad_middle,
    parent_of,
    relative_traits,
)
from tools.explain.names import name_keywords
from tools.explain.wording import (
    Voice,
    clause,
    fmt_pct,
    fmt_value,
    join_phrases,
    keyword_list,
    measure,
    sibling_clause,
    trait_fact,
)
from tools.segment.significance import cited


def dedupe_traits(traits: Sequence[dict]) -> list[dict]:
    """Drop a trait that repeats an earlier one's numbers (share of reviews == share of text)."""
    out: list[dict] = []
    for t in traits:
        if any(t["feature"] == o["feature"] or (abs(t["segment_value"] - o["segment_value"]) < 1e-9
               and abs(t["population_value"] - o["population_value"]) < 1e-9) for o in out):
            continue
        out.append(t)
    return out


def lead_traits(segment: dict, all_segments: Sequence[dict], lead_features: Sequence[str]) -> list[dict]:
    """The traits in the order a description reads them: those the name rests on first (from the
    full profile when they are not among the top traits), then the segment's top traits."""
    profile = {r.feature: r.trait for r in relative_traits(segment, all_segments)}
    first = [profile[f] for f in lead_features if f in profile]
    return first + [t for t in cited(segment.get("traits")) if t["feature"] not in lead_features]


def _parent_name(segment: dict, all_segments: Sequence[dict], names: Mapping[int, str]) -> str:
    parent = parent_of(segment)
    name = names.get(parent) if parent is not None else None
    if not name:
        name = next((s.get("name") for s in all_segments if s["id"] == parent), None)
    return f'"{name}"' if name else "its parent segment"


def _sibling_fact(r: RelativeTrait, others: str, voice: Voice) -> str:
    if r.sibling_value is None:
        return trait_fact(r.trait, voice)
    return f"{r.trait['label']}: {measure(r.trait, voice)} vs {fmt_value(r.sibling_value, r.trait['unit'], voice.currency)} for {others}"


def describe_evidence(segment: dict, all_segments: Sequence[dict], voice: Voice, lead_features: Sequence[str] = (),
                      names: Mapping[int, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """Exactly two sentences from size, share, the traits and keywords, and the facts they state."""
    names = names or {}
    size, share = segment["size"], segment["share"]
    kws = name_keywords(segment.get("keywords", []), 6 if voice.kind == "text" else 3)
    head = f"{size} {voice.member(size)} ({fmt_pct(share, 1)})"
    relative = relative_traits(segment, all_segments) if voice.kind != "text" else []
    usable = agreeing(relative) or relative
    nested = parent_of(segment) is not None
    others = f"the rest of {_parent_name(segment, all_segments, names)}" if nested else "most"
    mention = [f"often mention {keyword_list(kws)}"] if kws else []
    stated: list[str] = []  # the trait facts, in the order the text states them

    def done(text: str) -> tuple[str, tuple[str, ...]]:
        keywords = ["keywords: " + ", ".join(kws)] if kws else []
        return text, (f"size: {size}", f"share: {fmt_pct(share, 1)}", *stated, *keywords)

    if usable and is_broad_middle(relative):
        first = next((r for f in lead_features for r in usable if r.feature == f), usable[0])
        where = f" of {_parent_name(segment, all_segments, names)}, close to its average" if nested else ", close to the average"
        lean = (sibling_clause(first.trait, first.contrast > 0, first.sibling_value, others, voice) if nested
                else clause(first.trait, lead=False, also=False, voice=voice))
        stated.append(_sibling_fact(first, others, voice) if nested else trait_fact(first.trait, voice))
        return done(f"{head} are the broad middle{where} on every measure. If anything, they {join_phrases([lean, *mention])}.")
    if nested and usable:
        first = next((r for f in lead_features for r in relative if r.feature == f), usable[0])
        opening = sibling_clause(first.trait, first.contrast > 0, first.sibling_value, others, voice)
        stated.append(_sibling_fact(first, others, voice))
        rest = [t for t in dedupe_traits(cited(segment.get("traits"))) if t["feature"] != first.feature][:2]
        stated.extend(trait_fact(t, voice) for t in rest)
        parts = [clause(t, lead=False, voice=voice) for t in rest] + mention
        second = ("Against everyone, they " + join_phrases(parts) + ".") if parts else "Against everyone, nothing else sets them apart by much."
        return done(f"{head} {voice.who} {opening}. {second}")
    traits = dedupe_traits(lead_traits(segment, all_segments, lead_features))
    if traits:
        stated.extend(trait_fact(t, voice) for t in traits[:3])
        rest = traits[1:3]
        parts = [clause(t, lead=False, voice=voice) for t in rest]
        if len(rest) == 2 and all(t["feature"].startswith("category_") and t["effect"] > 0 for t in rest):
            parts = [parts[0] + " and " + parts[1].removeprefix("also favour ")]  # one verb for two categories
        parts += mention
        second = ("They " + join_phrases(parts) + ".") if parts else "No other trait sets them apart from the rest by much."
        return done(f"{head} {clause(traits[0], lead=True, voice=voice)}. {second}")
    if kws:
        second = f"Other telling words are {keyword_list(kws[3:])}." if len(kws) > 3 else "No other word sets them apart by much."
        return done(f"{head}, most distinctively about {keyword_list(kws[:3])}. {second}")
    return done(f"{head}. No trait or keyword sets them apart from the rest.")
