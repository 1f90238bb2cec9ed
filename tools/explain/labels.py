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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from tools.explain.contrast import (
    RelativeTrait,
    agreeing,
    cited_effects,
    is_broad_middle,
    parent_effects,
    parent_of,
    relative_traits,
    siblings,
)
from tools.explain.descriptions import describe_evidence
from tools.explain.names import (
    MAX_NAME_WORDS,
    MIN_GAP,
    NameParts,
    name_keywords,
    resolve_names,
    same_stem,
    title_word,
)
from tools.explain.vocabulary import (
    ADJECTIVE_ORDER,
    ENTITY_NOUNS,
    INTENSITY_OF,
    SHOP_FEATURES,
    adjective,
    intensity,
    short_category,
)
from tools.explain.wording import Voice, feature_family

STRONG_EFFECT = 0.5  # a trait weaker than this (against the parent group) does not name a distinctive segment...
MIN_NAME_EFFECT = 0.2  # ...unless its name needs one more word to differ from another's, and the trait is at least this
ADJECTIVE_RATIO = 0.5  # an adjective joins a named subject only when this strong relative to the top trait
SECOND_CATEGORY_RATIO = 0.5
AVOID_LIFT = 0.25  # a category share below this fraction of the usual one is "rarely touched"
BROAD_WORD = "Mainstream"  # the word that says a segment is the broad middle

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
    sign: float = 0.0  # +1 when the word says "more of the feature", -1 "less", 0 for keywords


def words_in(name: str) -> int:
    """How many words a name has ("&" counts, so the limit is conservative)."""
    return len(name.split())


def _features(all_segments: Sequence[dict]) -> set[str]:
    return {feature_family(t["feature"]) for s in all_segments for t in [*s.get("traits", []), *s.get("profile", [])]}


def _event_types(all_segments: Sequence[dict]) -> set[str]:
    return {f[len("share_"):] for f in _features(all_segments) if f.startswith("share_")}


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
        if words_in(name) <= MAX_NAME_WORDS:
            return name
    return None


def _most_extreme(segment: dict, all_segments: Sequence[dict], feature: str, sign: float) -> bool:
    """True when the segment has more of ``feature`` (in the ``sign`` direction) than every sibling, by MIN_GAP."""
    mine = sign * _effect_of(segment, feature)
    return all(mine - sign * _effect_of(s, feature) > MIN_GAP for s in siblings(segment, all_segments))


def _effect_of(segment: dict, feature: str) -> float:
    return next((float(t["effect"]) for t in segment.get("profile") or segment.get("traits") or [] if t["feature"] == feature), 0.0)


def _subjects(categories: Sequence[str]) -> list[str]:
    """Ways to say one or two categories, longest first; two are said in at most three words ("Home & Garden")."""
    options = list(dict.fromkeys(" & ".join(short_category(c, level) for c in categories) for level in (0, 1, 2)))
    if len(categories) > 1:
        options = [o for o in options if words_in(o) <= 3] or options[-1:]
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
            rule = adjective(r.feature, p > 0, voice)
            word = None if rule is None else (intensity(rule[0], (r.contrast > 0) == (p > 0)), rule[1])
        else:
            word = adjective(r.feature, r.contrast > 0, voice) if (r.contrast > 0) == (r.effect > 0) and r.real_effect else None
        if word is not None and word[1] not in {w.group for w in out}:
            out.append(_Word(word[0], word[1], abs(r.contrast), r.feature, 1.0 if r.contrast > 0 else -1.0))
    return out


def _effect_words(effects: Mapping[str, float], voice: Voice, floor: float) -> list[_Word]:
    """Words for the segment against everyone (what a sub-segment shares with its parent), from the
    features whose gap to everyone passed its test: a trait the whole family has is not among the
    sub-segment's traits against its parent, and it is what tells it from a namesake elsewhere
    ("Recent Long Sessions" under "Recent Sessions", beside the top-level "Long Sessions")."""
    out: list[_Word] = []
    for feature, effect in sorted(effects.items(), key=lambda fe: -abs(fe[1])):
        word = adjective(feature, effect > 0, voice) if abs(effect) >= floor else None
        if word is not None and word[1] not in {w.group for w in out}:
            out.append(_Word(word[0], word[1], abs(effect), feature, 1.0 if effect > 0 else -1.0))
    return out


def _distinctive_keywords(keywords: Sequence[str], all_segments: Sequence[dict]) -> tuple[str, ...]:
    """The keywords that tell this segment apart: a word among the keywords of half the run's
    segments or more (the shop's best-sellers, "heart" in a gift shop) names none of them."""
    if len(all_segments) < 3:
        return tuple(keywords)
    counts: dict[str, int] = {}
    for s in all_segments:
        for k in {k.lower() for k in s.get("keywords", [])}:
            counts[k] = counts.get(k, 0) + 1
    return tuple(k for k in keywords if counts.get(k.lower(), 0) < len(all_segments) / 2)


def _plain(word: str) -> str:
    """'Lapsed' from 'Lapsed-leaning' (a broad-middle segment's form of a trait word)."""
    return word.removesuffix("-leaning")


def _name_parts(segment: dict, all_segments: Sequence[dict], voice: Voice) -> tuple[NameParts, list[str]]:
    """What the segment's name is made of (its plainest words, then further true ones), and the
    features the plainest name rests on."""
    relative = relative_traits(segment, all_segments)
    usable = agreeing(relative)
    keywords = tuple(segment.get("keywords", []))
    if voice.kind == "text" or not relative:
        return _keyword_parts(segment, voice, _noun({}, all_segments, False, 0.0, voice)[0]), []
    keywords = _distinctive_keywords(keywords, all_segments)
    parent = parent_effects(segment, all_segments)
    broad = is_broad_middle(relative)
    top = abs(relative[0].contrast)
    floor = 0.0 if broad else STRONG_EFFECT
    cats = [_Word(r.feature[len("category_"):], "subject", r.contrast, r.feature, 1.0) for r in usable
            if r.feature.startswith("category_") and r.contrast > 0 and r.contrast >= floor]
    adjectives = _contrast_words(relative, voice, floor, parent)
    # A category they all but never touch (under a quarter of the usual share) says something when
    # little else does: "Non-Book Buyers".
    avoided = [_Word("Non-" + short_category(r.feature[len("category_"):], 2), "avoid", abs(r.contrast), r.feature, -1.0)
               for r in usable if r.feature.startswith("category_") and r.contrast <= -STRONG_EFFECT
               and r.trait.get("lift") is not None and r.trait["lift"] < AVOID_LIFT][:1]
    if not adjectives and not cats:
        adjectives = avoided
    by = {r.feature: r.contrast for r in usable}
    effects = cited_effects(segment)  # against everyone: whether they buy, and which words hold against a rival
    if broad:  # named by its strongest relative trait that has a word, and said to be the middle
        # Its traits are leanings, not traits: "Mainstream Recent-leaning Buyers" (one token each, so a
        # truly recent segment's "Recent Buyers" is not all inside it).
        adjectives = [_Word(f"{a.word}-leaning", a.group, a.strength, a.feature, a.sign) for a in adjectives]
        first = (usable or relative)[0]
        subject = cats[:1] if cats and cats[0].feature == first.feature else []
        lead_adjs = [] if subject else [a for a in adjectives if a.feature == first.feature] or adjectives[:1]
        # What they talk about, when the data has words, says more than a leaning alone.
        topic = [] if subject else [_Word(title_word(k), "keyword", 0.0, "") for k in name_keywords(keywords, 1)]
        base = [_Word(BROAD_WORD, "mainstream", top, first.feature), *lead_adjs, *subject, *topic]
        noun, noun_feature = _noun({}, all_segments, bool(subject), top, voice, effects)
    else:
        noun, noun_feature = _noun(by, all_segments, bool(cats), top, voice, effects)
        subject = cats[:1]
        if len(cats) > 1 and cats[1].strength >= SECOND_CATEGORY_RATIO * cats[0].strength:
            subject = cats[:2]
        limit = 1 if subject else 2
        base = [a for a in adjectives if a.strength >= ADJECTIVE_RATIO * top or not subject][:limit] + subject
    # Further words, most telling first: other strong traits, a second category, what a sub-segment
    # shares with its parent (against everyone: "Lapsed High-spend Buyers"), weaker true traits,
    # a category they avoid, then keywords.
    pool = [*adjectives, *cats[:2]]
    if parent_of(segment) is not None:
        pool += _effect_words(effects, voice, STRONG_EFFECT)
    pool += [*_contrast_words(relative, voice, MIN_NAME_EFFECT, parent), *avoided]
    # "Very-recent" for the most recent of its siblings (by a clear margin), when others are recent too.
    # A broad-middle sub-segment's leaning counts too: the most lapsed of its siblings is "Long-lapsed".
    pool += [_Word(intensity(_plain(w.word), True), w.group, w.strength, w.feature, w.sign) for w in base
             if w.group not in ("subject", "mainstream", "avoid") and _plain(w.word) in INTENSITY_OF
             and _most_extreme(segment, all_segments, w.feature, w.sign)]
    groups = {w.group for w in base if w.group != "subject"}
    said = {w.lower() for b in base for w in b.word.replace("&", " ").split()}
    fresh = [k for k in keywords if not any(same_stem(k.lower(), w) or k.lower() == w for w in said)]
    pool += [_Word(title_word(k), "keyword", 0.0, "") for k in name_keywords(fresh, 3)]
    intense = {intensity(_plain(w.word), True) for w in base}
    extra: list[_Word] = []
    for w in pool:  # one word per trait group (or its intensity); any number of categories and keywords
        repeated = w.group in groups and w.group not in ("subject", "keyword") and w.word not in intense
        if w in base or repeated or w.word in {e.word for e in extra}:
            continue
        extra.append(w)
        groups.add(w.group)

    def build(words: Sequence[_Word]) -> str | None:
        subjects = [w.word for w in words if w.group == "subject"]
        return _assemble([w for w in words if w.group != "subject"], _subjects(subjects) if subjects else [""], noun)

    used = {w.feature for w in base} | {noun_feature}
    lead = [r.feature for r in relative if r.feature in used]
    parts = NameParts(tuple(_fit(base, build)), tuple(extra), build, frozenset({BROAD_WORD}), MappingProxyType(effects))
    return parts, lead


def _fit(words: Sequence[_Word], build) -> list[_Word]:
    """The words, less the weakest adjectives until the name fits in MAX_NAME_WORDS."""
    words = list(words)
    while build(words) is None and any(w.group not in ("subject", "mainstream") for w in words):
        weakest = [w for w in words if w.group not in ("subject", "mainstream")][-1]
        words.remove(weakest)
    return words


def _keyword_parts(segment: dict, voice: Voice, noun: str) -> NameParts:
    """A name from keywords: the first two in the order the typical texts say them; more to tell apart."""
    kws = [_Word(title_word(k), "keyword", 0.0, "") for k in name_keywords(segment.get("keywords", []), 8)]
    texts = segment.get("representative_texts") or []
    if voice.kind == "text":
        noun = _text_noun(segment)
    fallback = f"{BROAD_WORD} {noun or 'Messages'}"

    def build(words: Sequence[_Word]) -> str | None:
        if not words:
            return fallback
        ordered = _reading_order([w.word for w in words[:2]], texts) + [w.word for w in words[2:]]
        name = " ".join([*ordered, noun]).strip()
        return name if words_in(name) <= MAX_NAME_WORDS else None

    return NameParts(tuple(kws[:2]), tuple(kws[2:]), build)


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
                     names: dict[int, str] | None = None, lead: Sequence[str] | None = None) -> SegmentLabel:
    """A deterministic name (at most five words) and two-sentence description from the segment's evidence.

    ``segment`` is one entry of segments.json; ``all_segments`` gives the context (its siblings,
    which event types exist, whether people buy or rate); ``kind`` is the data kind ("behaviour"
    or "text"); ``voice`` the run's entity and currency; ``names`` the other segments' names
    (a sub-segment's description names its parent); ``lead`` the features the name rests on
    (the description states them first). The name is the plainest one: label_segments makes a
    run's names differ.
    """
    voice = voice or Voice(kind=kind)
    parts, plain_lead = _name_parts(segment, all_segments, voice)
    description, facts = describe_evidence(segment, all_segments, voice, plain_lead if lead is None else lead, names or {})
    return SegmentLabel(segment["id"], parts.build(parts.base) or "", description, "extractive", None, facts)


def ordered_traits(segment: dict, all_segments: Sequence[dict], kind: str, voice: Voice | None = None) -> list[dict]:
    """The segment's traits as its description reads them: the ones its name rests on first, repeats dropped."""
    from tools.explain.descriptions import dedupe_traits, lead_traits

    lead = _name_parts(segment, all_segments, voice or Voice(kind=kind))[1]
    return dedupe_traits(lead_traits(segment, all_segments, lead))


def label_segments(summary: dict) -> list[SegmentLabel]:
    """Extractive labels for every segment of a run: no two names share all their content words.

    A name that another's holds takes a word of its own (tools/explain/names.py resolve_names),
    unless the words it adds are its family's ("Recent Long Sessions" under "Recent Sessions").
    Never a number: segments nothing else tells apart are told apart by size ("Larger", "Smaller").
    """
    segments = summary["segments"]
    voice = Voice.of(summary)
    made = {s["id"]: _name_parts(s, segments, voice) for s in segments}
    chosen = resolve_names({sid: parts for sid, (parts, _) in made.items()}, {s["id"]: int(s.get("size", 0)) for s in segments},
                           {s["id"]: parent_of(s) for s in segments})
    names = {sid: name for sid, (name, _) in chosen.items()}
    out = []
    for s in segments:
        parts, plain_lead = made[s["id"]]
        # The description opens with what the chosen name says (and the trait behind its noun).
        said = {w.feature for w in chosen[s["id"]][1]} | (set(plain_lead) - {w.feature for w in parts.base})
        lead = [f for f in plain_lead if f in said] + sorted(said - set(plain_lead) - {""},
                                                            key=lambda f: [w.feature for w in chosen[s["id"]][1]].index(f))
        lab = extractive_label(s, segments, voice.kind, voice, names, lead)
        out.append(SegmentLabel(lab.segment_id, names[s["id"]], lab.description, lab.source, lab.template, lab.facts))
    return out
