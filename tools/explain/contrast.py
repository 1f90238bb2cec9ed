"""What sets a segment apart from its siblings: the traits names are built from.

Siblings are the segments that share its parent (``parent`` in segments.json; every top-level
segment, and every segment of a flat run, has parent None). A segment's relative traits are its
features ranked by the standardised gap between it and its parent group (the parent segment, or
everyone at the top level), so two sub-segments of "Lapsed Buyers" are named by how they differ
from each other, not by the lapse they share. In a flat run that is the gap to everyone.

The gaps come from each segment's ``profile`` (every feature's mean and effect); a summary
written before profiles existed falls back on its top traits, a missing feature counting as
average.

Only a gap that passed its test may be said (tools/segment/significance.py): a top-level
segment's relative traits are the features significant against everyone; a sub-segment's, the
features significant against the rest of its parent (``profile_vs_parent``). Every segment's full
profile still enters the parent and sibling averages, which are arithmetic, not claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tools.segment.significance import is_cited

BROAD_MIDDLE = 0.5  # a segment whose strongest relative trait is weaker than this is the broad middle


@dataclass(frozen=True)
class RelativeTrait:
    """One feature of a segment, against its siblings: ``contrast`` ranks and signs it.

    ``trait`` is the segments.json trait dict (values against the whole population);
    ``sibling_value`` is the siblings' pooled mean, when known. ``real_effect`` says whether the
    gap to everyone passed its test too (always, at the top level), so words that speak of it
    ("what a sub-segment shares with its parent") may be said.
    """

    feature: str
    contrast: float
    trait: dict
    sibling_value: float | None
    real_effect: bool = True

    @property
    def effect(self) -> float:
        return float(self.trait["effect"])


def parent_of(segment: dict) -> int | None:
    """The segment's parent id (None at the top level, and in runs without a hierarchy)."""
    parent = segment.get("parent")
    return None if parent is None else int(parent)


def siblings(segment: dict, all_segments: Sequence[dict]) -> list[dict]:
    """The other segments with the same parent."""
    mine = parent_of(segment)
    return [s for s in all_segments if s["id"] != segment["id"] and parent_of(s) == mine]


def _profile(segment: dict) -> dict[str, dict]:
    """feature -> trait dict, from the full profile when the run has one, else the top traits."""
    rows = segment.get("profile") or segment.get("traits") or []
    return {t["feature"]: t for t in rows}


def _std(trait: dict) -> float | None:
    """The population standard deviation behind a trait's effect (gap / effect), when it can be told."""
    gap = trait["segment_value"] - trait["population_value"]
    return abs(gap / trait["effect"]) if abs(trait["effect"]) > 1e-9 and abs(gap) > 1e-12 else None


def parent_effects(segment: dict, all_segments: Sequence[dict]) -> dict[str, float]:
    """feature -> the parent group's effect: 0 at the top level (everyone), else the parent's own
    profile, else its children pooled by size."""
    parent = parent_of(segment)
    if parent is None:
        return {}
    for s in all_segments:
        if s["id"] == parent and (s.get("profile") or s.get("traits")):
            return {f: float(t["effect"]) for f, t in _profile(s).items()}
    group = [segment, *siblings(segment, all_segments)]
    weight = sum(float(s.get("size", 1)) for s in group) or 1.0
    feats = {f for s in group for f in _profile(s)}
    return {f: sum(_profile(s).get(f, {"effect": 0.0})["effect"] * float(s.get("size", 1)) for s in group) / weight for f in feats}


def citable_features(segment: dict) -> set[str] | None:
    """The features whose gap to the segment's parent group passed its test; None when every
    feature may be said (a run made before traits were tested)."""
    if parent_of(segment) is None:
        rows = segment.get("profile") or segment.get("traits") or []
    else:
        rows = segment.get("profile_vs_parent") or []
        if not rows:  # an older run: no test against the parent, only against everyone
            rows = segment.get("profile") or segment.get("traits") or []
    if not any("significant" in t for t in rows):
        return None
    return {t["feature"] for t in rows if is_cited(t)}


def cited_effects(segment: dict) -> dict[str, float]:
    """feature -> the segment's effect against everyone, for the features whose gap to everyone passed its test."""
    return {f: float(t["effect"]) for f, t in _profile(segment).items() if is_cited(t)}


def relative_traits(segment: dict, all_segments: Sequence[dict]) -> list[RelativeTrait]:
    """The segment's features against its parent group that passed their test, largest |contrast| first.

    ``sibling_value`` is the rest of the parent group pooled (its siblings, or every other
    segment at the top level), for saying "more than the rest of ...".
    """
    mine = _profile(segment)
    allowed = citable_features(segment)
    reference = parent_effects(segment, all_segments)
    profiles = [(_profile(s), float(s.get("size", 1))) for s in siblings(segment, all_segments)]
    weight = sum(w for _, w in profiles) or 1.0
    out = []
    for feature, trait in mine.items():
        if allowed is not None and feature not in allowed:
            continue
        sib_value = None
        if profiles:
            # A sibling without the feature in its (top-trait) profile counts as average: effect 0.
            sib_effect = sum(p[feature]["effect"] * w if feature in p else 0.0 for p, w in profiles) / weight
            std = _std(trait)
            if std is not None:
                sib_value = trait["population_value"] + sib_effect * std
            elif all(feature in p for p, _ in profiles):
                sib_value = sum(p[feature]["segment_value"] * w for p, w in profiles) / weight
        contrast = float(trait["effect"]) - reference.get(feature, 0.0)
        out.append(RelativeTrait(feature, contrast, trait, sib_value, is_cited(trait)))
    return sorted(out, key=lambda r: -abs(r.contrast))


def is_broad_middle(relative: Sequence[RelativeTrait]) -> bool:
    """True when nothing sets the segment apart from its parent group (everyone, at the top) by BROAD_MIDDLE."""
    return not relative or abs(relative[0].contrast) < BROAD_MIDDLE


def agreeing(relative: Sequence[RelativeTrait]) -> list[RelativeTrait]:
    """Relative traits that point the same way against the siblings and against everyone.

    Only these may name a segment: a sub-segment of lapsed buyers that lapsed less than its
    siblings is still lapsed, and is not called "Recent". Both gaps must have passed their tests.
    """
    return [r for r in relative if abs(r.contrast) > 1e-9 and (r.contrast > 0) == (r.effect > 0) and r.real_effect]
