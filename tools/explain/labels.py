"""Names and descriptions for segments, built only from their evidence.

An extractive label is deterministic: a small vocabulary of trait -> word rules turns what sets
a segment apart from its siblings (tools/explain/contrast.py) and, for text data, its keywords
into a short name; the description (tools/explain/descriptions.py) states the segment's own
numbers in the data's units. Names in a run never share all their content words
(tools/explain/names.py) and are never numbered. How distinct labels are, and writing them:
tools/explain/quality.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tools.explain.contrast import (
    RelativeTrait,
    agreeing,
    is_broad_middle,
    parent_effects,
    parent_of,
    relative_traits,
)
from tools.explain.descriptions import describe_evidence
from tools.explain.names import (
    MAX_NAME_WORDS,
    name_keywords,
    resolve_names,
    same_stem,
    title_word,
)
from tools.explain.wording import Voice, feature_family

STRONG_EFFECT = 0.5  # a trait weaker than this (against the parent group) does not name a distinctive segment...
MIN_NAME_EFFECT = 0.2  # ...unless its name needs one more word to differ from another's, and the trait is at least this
ADJECTIVE_RATIO = 0.5  # an adjective joins a named subject only when this strong relative to the top trait
SECOND_CATEGORY_RATIO = 0.5
BROAD_WORD = "Mainstream"  # the word that says a segment is the broad middle

# Plural category words that read better singular in front of a noun ("Book Reviewers").
SINGULAR = {"Books": "Book", "Toys": "Toy", "Games": "Game", "Movies": "Movie", "Shoes": "Shoe", "Computers": "Computer",
            "Gadgets": "Gadget", "Tools": "Tool", "Pets": "Pet", "Children": "Children's", "Groceries": "Grocery"}

# Adjective rules: feature family -> (word when higher, word when lower, group). One word per group.
ADJECTIVES: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("Lapsed", "Recent", "recency"),
    "frequency": ("Frequent", "Occasional", "activity"),
    "orders": ("Frequent", "Occasional", "activity"),
    "distinct_items": ("Frequent", "Occasional", "activity"),
    "purchases": ("Repeat", None, "activity"),
    "monetary": ("High-spend", "Low-spend", "spend"),
    "avg_price": ("High-spend", "Budget", "spend"),
    "avg_order_value": ("Big-ticket", "Small-ticket", "ticket"),
    "basket_size": ("Bulk", "Small-basket", "basket"),
    "gap_days": ("Sporadic", "Regular", "cadence"),
    "returns": ("Return-prone", None, "returns"),
    "rating_mean": ("Generous", "Critical", "rating"),
    "rating_spread": ("Polarised", "Consistent", "spread"),
    "diversity": ("Eclectic", "Focused", "diversity"),
    "span_days": ("Long-time", None, "span"),
    "tenure_days": ("Long-time", "New", "span"),
}
# A session is long or short, early or late, not lapsed or frequent.
SESSION_ADJECTIVES: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("Older", "Recent", "recency"),
    "frequency": ("Long", "Short", "activity"),
    "distinct_items": ("Wide-ranging", "Narrow", "activity"),
    "span_days": ("Lengthy", "Quick", "span"),
}
# A sub-segment of a parent named by a word is named by how much more or less so it is than its
# siblings: "Lapsed Buyers" splits into "Long-lapsed" and "Recently-lapsed" ones. One token each,
# so the parent's name and the children's never hold one another's words.
INTENSITY = {"Lapsed": ("Long-lapsed", "Recently-lapsed"), "High-spend": ("Top-spend", "Mid-spend"),
             "Low-spend": ("Lowest-spend", "Mid-spend"), "Long-time": ("Longest-standing", "Mid-tenure")}
# The order adjectives are read in, whatever their strength: "Lapsed Occasional Shoppers".
ADJECTIVE_ORDER = ("mainstream", "recency", "activity", "spend", "ticket", "basket", "cadence", "returns", "rating",
                   "spread", "diversity", "span", "avoid", "keyword")
SHOP_FEATURES = frozenset({"monetary", "purchases", "share_purchase", "avg_price", "orders", "avg_order_value", "basket_size",
                           "returns", "gap_days"})
ENTITY_NOUNS = {"session": "Sessions", "household": "Households"}


@dataclass(frozen=True)
class SegmentLabel:
    """A segment's name and description, where they came from, and the facts they used."""

    segment_id: int
    name: str
    description: str
    source: str = "extractive"
    template: str | None = None
    facts: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"segment_id": self.segment_id, "name": self.name, "description": self.description,
                "source": self.source, "template": self.template, "facts": list(self.facts)}


@dataclass(frozen=True)
class _Word:
    word: str
    group: str
    strength: float
    feature: str


def words(name: str) -> int:
    """How many words a name has ("&" counts, so the limit is conservative)."""
    return len(name.split())


def _features(all_segments: Sequence[dict]) -> set[str]:
    return {feature_family(t["feature"]) for s in all_segments for t in [*s.get("traits", []), *s.get("profile", [])]}


def _event_types(all_segments: Sequence[dict]) -> set[str]:
    return {f[len("share_"):] for f in _features(all_segments) if f.startswith("share_")}


def _adjective(feature: str, up: bool, voice: Voice) -> tuple[str, str] | None:
    fam = feature_family(feature)
    rule = (SESSION_ADJECTIVES.get(fam) if voice.entity == "session" else None) or ADJECTIVES.get(fam)
    if rule is None or (rule[0] if up else rule[1]) is None:
        return None
    return (rule[0] if up else rule[1]), rule[2]  # type: ignore[return-value]


def _short_category(cat: str, level: int) -> str:
    """0: as written; 1: the part before '&'; 2: its first word. Plurals made singular."""
    text = cat
    if level >= 1:
        text = cat.split("&")[0].strip() or cat
    if level >= 2:
        text = text.split()[0]
    parts = text.split()
    if parts and parts[-1] in SINGULAR:
        parts[-1] = SINGULAR[parts[-1]]
    return " ".join(parts)


def _noun(by: dict[str, float], all_segments: Sequence[dict], has_subject: bool, top: float, voice: Voice,
          effects: dict[str, float] | None = None) -> tuple[str, str | None]:
    """What members are called (and the trait behind it): the entity, a role their behaviour earns, else the domain's word.

    A role needs a strong relative trait (``by``); whether they are Buyers or Shoppers follows how
    they buy against everyone (``effects``), so a sub-segment of buyers stays Buyers.
    """
    if voice.entity in ENTITY_NOUNS:
        return ENTITY_NOUNS[voice.entity], None
    types = _event_types(all_segments)
    strong = max(STRONG_EFFECT, ADJECTIVE_RATIO * top)

    def high(f: str) -> bool:
        return by.get(f, 0.0) >= strong

    roles = (
        ("Reviewers", "share_review", True), ("Reviewers", "text_share", "review" in types),
        ("Taggers", "share_tag", True), ("Taggers", "text_share", "tag" in types), ("Commenters", "text_share", True),
        ("Browsers", "share_view", by.get("share_purchase", 0.0) <= 0), ("Raters", "share_rating", not has_subject),
    )
    for noun, feature, condition in roles:
        if condition and high(feature):
            return noun, feature
    feats = _features(all_segments)
    if feats & SHOP_FEATURES:
        against_all = by if effects is None else effects
        buys = [f for f in ("share_purchase", "purchases", "monetary", "avg_price", "orders") if against_all.get(f, 0.0) > 0]
        return ("Buyers" if buys or has_subject else "Shoppers"), None
    if feats & {"rating_mean", "share_rating"}:
        return ("Fans" if has_subject else "Viewers"), None
    return ("Customers" if voice.entity == "customer" else "Users"), None


def _assemble(adjectives: Sequence[_Word], subject_options: Sequence[str], noun: str) -> str | None:
    """The longest subject wording that fits with the adjectives (in reading order) and noun, or None."""
    ordered = list(dict.fromkeys(a.word for a in sorted(adjectives, key=lambda a: ADJECTIVE_ORDER.index(a.group))))
    for subject in subject_options:
        name = " ".join([*ordered, subject, noun] if subject else [*ordered, noun])
        if words(name) <= MAX_NAME_WORDS:
            return name
    return None


def _intensity(word: str, more: bool) -> str:
    return INTENSITY.get(word, (f"Very-{word.lower()}", f"Mildly-{word.lower()}"))[0 if more else 1]


def _subjects(categories: Sequence[str]) -> list[str]:
    """Ways to say one or two categories, longest first; two are said in at most three words ("Home & Garden")."""
    options = list(dict.fromkeys(" & ".join(_short_category(c, level) for c in categories) for level in (0, 1, 2)))
    if len(categories) > 1:
        options = [o for o in options if words(o) <= 3] or options[-1:]
    return options


def _contrast_words(relative: Sequence[RelativeTrait], voice: Voice, floor: float, parent: dict[str, float]) -> list[_Word]:
    """Words for what sets the segment apart from its parent group, one per group, strongest first.

    Where the parent itself is named by the trait (its effect is strong the same way as the
    segment's), the word says how much more or less so: "Long-lapsed", "Recently-lapsed".
    Otherwise the word must hold against everyone too: a trait that points the other way is not said.
    """
    out: list[_Word] = []
    for r in relative:
        p = parent.get(r.feature, 0.0)
        if abs(r.contrast) < floor:
            continue
        if abs(p) >= STRONG_EFFECT and (p > 0) == (r.effect > 0):
            rule = _adjective(r.feature, p > 0, voice)
            word = None if rule is None else (_intensity(rule[0], (r.contrast > 0) == (p > 0)), rule[1])
        else:
            word = _adjective(r.feature, r.contrast > 0, voice) if (r.contrast > 0) == (r.effect > 0) else None
        if word is not None and word[1] not in {w.group for w in out}:
            out.append(_Word(word[0], word[1], abs(r.contrast), r.feature))
    return out


def _effect_words(relative: Sequence[RelativeTrait], voice: Voice, floor: float) -> list[_Word]:
    """Words for the segment against everyone (what a sub-segment shares with its parent)."""
    out: list[_Word] = []
    for r in sorted(relative, key=lambda r: -abs(r.effect)):
        word = _adjective(r.feature, r.effect > 0, voice) if abs(r.effect) >= floor else None
        if word is not None and word[1] not in {w.group for w in out}:
            out.append(_Word(word[0], word[1], abs(r.effect), r.feature))
    return out


def _candidate_names(segment: dict, all_segments: Sequence[dict], voice: Voice) -> tuple[list[str], list[str]]:
    """Names from plainest to most specific (later ones add distinguishing words), and the features the first rests on."""
    relative = relative_traits(segment, all_segments)
    usable = agreeing(relative)
    keywords = tuple(segment.get("keywords", []))
    if voice.kind == "text" or not relative:
        return _keyword_names(segment, voice, _noun({}, all_segments, False, 0.0, voice)[0]), []
    parent = parent_effects(segment, all_segments)
    broad = is_broad_middle(relative)
    top = abs(relative[0].contrast)
    floor = 0.0 if broad else STRONG_EFFECT
    cats = [(r.feature[len("category_"):], r.contrast) for r in usable
            if r.feature.startswith("category_") and r.contrast > 0 and r.contrast >= floor]
    adjectives = _contrast_words(relative, voice, floor, parent)
    # A category they clearly avoid says something when little else does: "Non-Book Buyers".
    adjectives += [_Word("Non-" + _short_category(r.feature[len("category_"):], 2), "avoid", abs(r.contrast), r.feature)
                   for r in usable if r.feature.startswith("category_") and r.contrast <= -STRONG_EFFECT][:1]
    by = {r.feature: r.contrast for r in usable}
    effects = {r.feature: r.effect for r in relative}
    if broad:  # named by its strongest relative trait that has a word, and said to be the middle
        first = (usable or relative)[0]
        cats = cats[:1] if first.feature.startswith("category_") and cats and cats[0][0] == first.feature[9:] else []
        lead_adjs = [] if cats else [a for a in adjectives if a.feature == first.feature] or adjectives[:1]
        base = [_Word(BROAD_WORD, "mainstream", top, first.feature), *lead_adjs]
        noun, noun_feature = _noun({}, all_segments, bool(cats), top, voice, effects)
        subject_cats = [c for c, _ in cats]
    else:
        noun, noun_feature = _noun(by, all_segments, bool(cats), top, voice, effects)
        subject_cats = [c for c, _ in cats[:1]]
        if len(cats) > 1 and cats[1][1] >= SECOND_CATEGORY_RATIO * cats[0][1]:
            subject_cats = [c for c, _ in cats[:2]]
        limit = 1 if subject_cats else 2
        base = [a for a in adjectives if a.strength >= ADJECTIVE_RATIO * top or not subject_cats][:limit]
    used_features = {"category_" + c for c in subject_cats} | {a.feature for a in base} | {noun_feature}
    names: list[str] = []

    def add(adjs: Sequence[_Word], subject: Sequence[str]) -> None:
        name = _assemble(adjs, _subjects(subject) if subject else [""], noun)
        if name and name not in names:
            names.append(name)

    add(base, subject_cats)
    base_groups = {a.group for a in base}
    extra = [a for a in adjectives if a not in base and a.group not in base_groups]
    used = list(base)
    for a in extra:  # the next distinguishing trait word, one at a time
        used.append(a)
        add(used, subject_cats)
    if len(subject_cats) < len(cats):
        add(base, [c for c, _ in cats[:2]])
    if base and not broad:  # swap the weakest base word for another: a way out of a name that contains a neighbour's
        for a in extra:
            add([*base[:-1], a], subject_cats)
    # Then what it shares with its parent (against everyone): a sub-segment of "Lapsed Buyers" named
    # "High-spend Buyers" can still become "Lapsed High-spend Buyers"; then weaker true traits.
    later = _effect_words(relative, voice, STRONG_EFFECT) if parent_of(segment) is not None else []
    later += _contrast_words(relative, voice, MIN_NAME_EFFECT, parent)
    for a in later:
        if a.group not in base_groups:
            add([*base, a], subject_cats)
    said = [w.lower() for n in names[:1] for w in n.replace("&", " ").split()]
    for kw in name_keywords([k for k in keywords if not any(same_stem(k.lower(), w) or k.lower() == w for w in said)], 2):
        add([*base, _Word(title_word(kw), "keyword", 0.0, "")], subject_cats)
    if not names:
        names.append(noun)
    lead = [r.feature for r in relative if r.feature in used_features]
    return names, lead


def _keyword_names(segment: dict, voice: Voice, noun: str) -> list[str]:
    """Names from keywords: two in reading order, then three, then other pairs."""
    kws = name_keywords(segment.get("keywords", []), 5)
    texts = segment.get("representative_texts") or []
    if voice.kind == "text":
        noun = _text_noun(segment)
    combos = [kws[:2], kws[:3], kws[:4], [*kws[:1], *kws[2:3]], [*kws[:1], *kws[3:4]], kws[1:3], [*kws[:2], *kws[4:5]]]
    names: list[str] = []
    for combo in combos:
        if len(combo) < min(2, len(kws)) or not combo:
            continue
        ordered = _reading_order(combo[:2], texts) + list(combo[2:])
        name = " ".join([*(title_word(k) for k in ordered), noun]).strip()
        if words(name) <= MAX_NAME_WORDS and name not in names:
            names.append(name)
    if not names:
        names.append(f"{BROAD_WORD} {noun or 'Messages'}")
    return names


def _reading_order(kws: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Keywords in the order the typical texts say them ("verify identity", not "identity verify")."""
    def position(kw: str) -> float:
        found = [m.start() / max(len(t), 1) for t in texts if (m := re.search(rf"(?i)\b{re.escape(kw)}", t))]
        return float(np.median(found)) if found else 2.0
    return sorted(kws, key=position)


def _text_noun(segment: dict) -> str:
    """'Questions' when most of the typical texts ask something, else nothing."""
    texts = segment.get("representative_texts") or []
    asking = sum(1 for t in texts if "?" in t or re.match(r"(?i)\s*(how|what|why|when|where|can|could|is|do|does|will|which|who)\b", t))
    return "Questions" if texts and asking * 2 >= len(texts) else ""


# ---------------------------------------------------------------- public API

def extractive_label(segment: dict, all_segments: list[dict], kind: str, voice: Voice | None = None,
                     names: dict[int, str] | None = None) -> SegmentLabel:
    """A deterministic name (at most five words) and two-sentence description from the segment's evidence.

    ``segment`` is one entry of segments.json; ``all_segments`` gives the context (its siblings,
    which event types exist, whether people buy or rate); ``kind`` is the data kind ("behaviour"
    or "text"); ``voice`` the run's entity and currency; ``names`` the other segments' names
    (a sub-segment's description names its parent).
    """
    voice = voice or Voice(kind=kind)
    candidates, lead = _candidate_names(segment, all_segments, voice)
    description, facts = describe_evidence(segment, all_segments, voice, lead, names or {})
    return SegmentLabel(segment["id"], candidates[0], description, "extractive", None, facts)


def ordered_traits(segment: dict, all_segments: Sequence[dict], kind: str, voice: Voice | None = None) -> list[dict]:
    """The segment's traits as its description reads them: the ones its name rests on first, repeats dropped."""
    from tools.explain.descriptions import dedupe_traits, lead_traits

    lead = _candidate_names(segment, all_segments, voice or Voice(kind=kind))[1]
    return dedupe_traits(lead_traits(segment, all_segments, lead))


def label_segments(summary: dict) -> list[SegmentLabel]:
    """Extractive labels for every segment of a run: no two names share all their content words.

    A name that clashes with another (tools/explain/names.py) takes its next distinguishing
    word: the one whose words the other contains moves first. Never a number: segments nothing
    else tells apart are told apart by size ("Larger", "Smaller").
    """
    segments = summary["segments"]
    voice = Voice.of(summary)
    candidates = {s["id"]: _candidate_names(s, segments, voice)[0] for s in segments}
    chosen = resolve_names(candidates, {s["id"]: int(s.get("size", 0)) for s in segments})
    out = []
    for s in segments:
        lab = extractive_label(s, segments, voice.kind, voice, chosen)
        out.append(SegmentLabel(lab.segment_id, chosen[s["id"]], lab.description, lab.source, lab.template, lab.facts))
    return out
