"""Names and descriptions for segments, built only from their evidence.

An extractive label is deterministic: a small vocabulary of trait -> phrase
rules turns a segment's strongest traits (and, for text data, its keywords)
into a short name, and a two-sentence description whose every number is one of
the segment's own numbers, formatted by tools/explain/wording.py (describe and the report use
the same formatters). How distinct labels are, and writing them: tools/explain/quality.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tools.explain.wording import (
    clause,
    count_noun,
    fmt_pct,
    join_phrases,
    keyword_list,
    trait_fact,
)

MAX_NAME_WORDS = 5
STRONG_EFFECT = 0.5  # a trait weaker than this never names a segment
ADJECTIVE_RATIO = 0.5  # an adjective joins a named subject only when this strong relative to the top trait
SECOND_CATEGORY_RATIO = 0.5

# Words a keyword-built name should never lead with: they say nothing about a segment.
GENERIC_WORDS = frozenset(
    """want need help know just like did does don ve im ll can could would should get got getting gets please
    thanks thank hi hello hey way use used using make made new good great really thing things time today
    yesterday able tell going look looking happen happened happening yes ok okay item items product products
    user users one also still let try tried trying say said see think sure mean set makes having saying came come
    coming kept keeps quite went long isn hasn doesn didn wasn aren haven weren couldn wouldn shouldn won""".split()
)
# Keywords that are acronyms, printed in capitals in a name.
ACRONYMS = frozenset("atm pin eur usd gbp id sms otp iban api tv pc usb ssd hd diy vip faq uk us eu".split())

# Plural category words that read better singular in front of a noun ("Book Reviewers").
SINGULAR = {"Books": "Book", "Toys": "Toy", "Games": "Game", "Movies": "Movie", "Shoes": "Shoe", "Computers": "Computer",
            "Gadgets": "Gadget", "Tools": "Tool", "Pets": "Pet", "Children": "Children's", "Groceries": "Grocery"}

# Adjective rules: feature -> (word when effect > 0, word when effect < 0, group). One word per group.
ADJECTIVES: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("Lapsed", "Recent", "recency"),
    "frequency": ("Frequent", "Occasional", "activity"),
    "distinct_items": ("Frequent", "Occasional", "activity"),
    "purchases": ("Repeat", None, "activity"),
    "monetary": ("High-spend", "Low-spend", "spend"),
    "avg_price": ("High-spend", "Budget", "spend"),
    "rating_mean": ("Generous", "Critical", "rating"),
    "rating_spread": ("Polarised", "Consistent", "spread"),
    "diversity": ("Eclectic", "Focused", "diversity"),
    "span_days": ("Long-time", None, "span"),
}
# The order adjectives are read in, whatever their strength: "Lapsed Occasional Shoppers".
ADJECTIVE_ORDER = ("recency", "activity", "spend", "rating", "spread", "diversity", "span")


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
class _Facets:
    """The name-building material of one segment, strongest first within each kind."""

    adjectives: tuple[tuple[str, str, float, str], ...]  # (word, group, |effect|, feature)
    categories: tuple[tuple[str, float], ...]  # (category, effect)
    noun: str
    noun_feature: str | None  # the trait that earned the noun, if any
    keywords: tuple[str, ...]
    top_effect: float


# ---------------------------------------------------------------- formatting (every printed number passes here)

def words(name: str) -> int:
    """How many words a name has ("&" counts, so the limit is conservative)."""
    return len(name.split())


def _event_types(all_segments: Sequence[dict]) -> set[str]:
    types = set()
    for seg in all_segments:
        for t in seg.get("traits", []):
            if t["feature"].startswith("share_"):
                types.add(t["feature"][len("share_"):])
    return types


def _is_shop(all_segments: Sequence[dict]) -> bool:
    feats = {t["feature"] for seg in all_segments for t in seg.get("traits", [])}
    return bool(feats & {"monetary", "purchases", "share_purchase", "avg_price"})


def _is_ratings(all_segments: Sequence[dict]) -> bool:
    feats = {t["feature"] for seg in all_segments for t in seg.get("traits", [])}
    return bool(feats & {"rating_mean", "share_rating"}) and not _is_shop(all_segments)


def name_keywords(keywords: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` keywords fit for a name: no generic words, no two forms of one word."""
    out: list[str] = []
    for kw in keywords:
        k = kw.lower()
        if k in GENERIC_WORDS or (len(k) < 3 and k not in ACRONYMS):
            continue
        if any(_same_stem(k, o.lower()) for o in out):
            continue
        out.append(kw)
        if len(out) == n:
            break
    return out


def _same_stem(a: str, b: str) -> bool:
    a, b = a.replace("-", ""), b.replace("-", "")
    stem = min(len(a), len(b), 5)
    return stem >= 4 and a[:stem] == b[:stem]


def _title(word: str) -> str:
    return "-".join(p.upper() if p.lower() in ACRONYMS else p[:1].upper() + p[1:] for p in word.split("-"))


def _reading_order(kws: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Keywords in the order the typical texts say them ("verify identity", not "identity verify")."""
    def position(kw: str) -> float:
        found = [m.start() / max(len(t), 1) for t in texts if (m := re.search(rf"(?i)\b{re.escape(kw)}", t))]
        return float(np.median(found)) if found else 2.0
    return sorted(kws, key=position)


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


def _noun(traits: Sequence[dict], all_segments: Sequence[dict], has_subject: bool, top: float) -> tuple[str, str | None]:
    """What members are called (and the trait behind it): a role their behaviour earns, else the domain's word."""
    types = _event_types(all_segments)
    by = {t["feature"]: t["effect"] for t in traits}
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
    if _is_shop(all_segments):
        buys = [f for f in ("share_purchase", "purchases", "monetary", "avg_price") if by.get(f, 0.0) > 0]
        return ("Buyers" if buys or has_subject else "Shoppers"), None
    if _is_ratings(all_segments):
        return ("Fans" if has_subject else "Viewers"), None
    return "Users", None


def _facets(segment: dict, all_segments: Sequence[dict]) -> _Facets:
    traits = list(segment.get("traits", []))
    top = max((abs(t["effect"]) for t in traits), default=0.0)
    cats = [(t["feature"][len("category_"):], t["effect"]) for t in traits
            if t["feature"].startswith("category_") and t["effect"] >= STRONG_EFFECT]
    adjectives: list[tuple[str, str, float, str]] = []
    seen_groups: set[str] = set()
    for t in sorted(traits, key=lambda t: -abs(t["effect"])):
        rule = ADJECTIVES.get(t["feature"])
        if rule is None or abs(t["effect"]) < STRONG_EFFECT:
            continue
        word = rule[0] if t["effect"] > 0 else rule[1]
        if word is None or rule[2] in seen_groups:
            continue
        seen_groups.add(rule[2])
        adjectives.append((word, rule[2], abs(t["effect"]), t["feature"]))
    noun, noun_feature = _noun(traits, all_segments, bool(cats), top)
    return _Facets(tuple(adjectives), tuple(cats), noun, noun_feature, tuple(segment.get("keywords", [])), top)


def _assemble(adjectives: Sequence[str], subject_options: Sequence[str], noun: str) -> str | None:
    """The longest subject wording that fits with the adjectives and noun, or None."""
    ordered = sorted(adjectives, key=lambda w: _adjective_rank(w))
    for subject in subject_options:
        name = " ".join([*ordered, subject, noun] if subject else [*ordered, noun])
        if words(name) <= MAX_NAME_WORDS:
            return name
    return None


def _adjective_rank(word: str) -> int:
    for rule in ADJECTIVES.values():
        if word in rule[:2]:
            return ADJECTIVE_ORDER.index(rule[2])
    return len(ADJECTIVE_ORDER)


def _subjects(categories: Sequence[str]) -> list[str]:
    """Ways to say one or two categories, longest first; two are said in at most three words ("Home & Garden")."""
    options = list(dict.fromkeys(" & ".join(_short_category(c, level) for c in categories) for level in (0, 1, 2)))
    if len(categories) > 1:
        options = [o for o in options if words(o) <= 3] or options[-1:]
    return options


def _candidate_names(segment: dict, all_segments: Sequence[dict], kind: str) -> tuple[list[str], list[str]]:
    """Names from plainest to most specific (later ones add distinguishing words), and the features the first uses."""
    f = _facets(segment, all_segments)
    if kind == "text" or (not f.categories and not f.adjectives and f.noun in ("Users", "Shoppers", "Viewers")):
        return _keyword_names(segment, kind, f), []
    cats = [c for c, _ in f.categories]
    subject_cats = cats[:1]
    if len(f.categories) > 1 and f.categories[1][1] >= SECOND_CATEGORY_RATIO * f.categories[0][1]:
        subject_cats = cats[:2]
    adjs = [w for w, *_ in f.adjectives]
    limit = 1 if subject_cats else 2
    base = [a for a in f.adjectives if a[2] >= ADJECTIVE_RATIO * f.top_effect or not subject_cats][:limit]
    base_adjs = [a[0] for a in base]
    used_features = {"category_" + c for c in subject_cats} | {a[3] for a in base} | {f.noun_feature}
    names: list[str] = []

    def add(adjectives: Sequence[str], subject_cats: Sequence[str]) -> None:
        name = _assemble(adjectives, _subjects(subject_cats) if subject_cats else [""], f.noun)
        if name and name not in names:
            names.append(name)

    add(base_adjs, subject_cats)
    extra = [a for a in adjs if a not in base_adjs]
    used = list(base_adjs)
    for a in extra:  # the next distinguishing trait word, one at a time
        used = used + [a]
        add(used, subject_cats)
    if len(subject_cats) < len(cats):
        add(base_adjs, cats[:2])
    for kw in name_keywords(f.keywords, 2):  # last resort before numbering: a keyword
        add([*base_adjs, _title(kw)], subject_cats)
    if not names:
        names.append(f.noun if f.noun != "Users" else "Typical Users")
    lead = [t["feature"] for t in segment.get("traits", []) if t["feature"] in used_features]
    return names, lead


def _keyword_names(segment: dict, kind: str, f: _Facets) -> list[str]:
    kws = name_keywords(f.keywords, 4)
    texts = segment.get("representative_texts") or []
    kws = [_title(k) for k in _reading_order(kws[:2], texts) + kws[2:]]
    noun = _text_noun(segment) if kind == "text" else ("Typical " + f.noun if not kws else f.noun)
    names: list[str] = []
    for n in (2, 3, 4):
        if kws and (n == 2 or len(kws) >= n):
            name = f"{' '.join(kws[:n])} {noun}".strip()
            if words(name) <= MAX_NAME_WORDS and name not in names:
                names.append(name)
    if not names:
        names.append(noun if kind != "text" else f"Typical {noun}".strip() if noun else "Unlabelled Messages")
    return names


def _text_noun(segment: dict) -> str:
    """'Questions' when most of the typical texts ask something, else nothing."""
    texts = segment.get("representative_texts") or []
    asking = sum(1 for t in texts if "?" in t or re.match(r"(?i)\s*(how|what|why|when|where|can|could|is|do|does|will|which|who)\b", t))
    return "Questions" if texts and asking * 2 >= len(texts) else ""


# ---------------------------------------------------------------- public API

def extractive_label(segment: dict, all_segments: list[dict], kind: str) -> SegmentLabel:
    """A deterministic name (at most five words) and two-sentence description from the segment's evidence.

    ``segment`` is one entry of segments.json; ``all_segments`` gives the context
    (which event types exist, whether people buy or rate); ``kind`` is the data
    kind ("behaviour" or "text").
    """
    names, lead = _candidate_names(segment, all_segments, kind)
    description, facts = describe_evidence(segment, kind, lead)
    return SegmentLabel(segment["id"], names[0], description, "extractive", None, facts)


def ordered_traits(segment: dict, all_segments: Sequence[dict], kind: str) -> list[dict]:
    """The segment's traits as its description reads them: the ones its name rests on first, repeats dropped."""
    lead = _candidate_names(segment, all_segments, kind)[1]
    return sorted(_dedupe_traits(segment.get("traits", [])), key=lambda t: t["feature"] not in lead)


def describe_evidence(segment: dict, kind: str, lead_features: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """Exactly two sentences from size, share, the top traits and keywords, and the facts they state.

    Traits named in ``lead_features`` (those the name rests on) come first, so
    the description opens with what the name promises.
    """
    size, share = segment["size"], segment["share"]
    traits = sorted(_dedupe_traits(segment.get("traits", [])), key=lambda t: t["feature"] not in lead_features)
    kws = name_keywords(segment.get("keywords", []), 6 if kind == "text" else 3)
    who = count_noun(kind, size)
    facts = [f"size: {size}", f"share: {fmt_pct(share, 1)}"]
    head = f"{size} {who} ({fmt_pct(share, 1)})"
    if traits:
        first = f"{head} {clause(traits[0], lead=True)}."
        facts.append(trait_fact(traits[0]))
        rest = traits[1:3]
        parts = [clause(t, lead=False) for t in rest]
        if len(rest) == 2 and all(t["feature"].startswith("category_") and t["effect"] > 0 for t in rest):
            parts = [parts[0] + " and " + parts[1].removeprefix("also favour ")]  # one verb for two categories
        facts.extend(trait_fact(t) for t in rest)
        if kws:
            parts.append(f"often mention {keyword_list(kws)}")
            facts.append("keywords: " + ", ".join(kws))
        second = ("They " + join_phrases(parts) + ".") if parts else "No other trait sets them apart from the rest by much."
        return first + " " + second, tuple(facts)
    if kws:
        facts.append("keywords: " + ", ".join(kws))
        first = f"{head}, most distinctively about {keyword_list(kws[:3])}."
        second = f"Other telling words are {keyword_list(kws[3:])}." if len(kws) > 3 else "No other word sets them apart by much."
        return first + " " + second, tuple(facts)
    return f"{head}." + " No trait or keyword sets them apart from the rest.", tuple(facts)


def _dedupe_traits(traits: Sequence[dict]) -> list[dict]:
    """Drop a trait that repeats an earlier one's numbers (share of reviews == share of text)."""
    out: list[dict] = []
    for t in traits:
        if any(abs(t["segment_value"] - o["segment_value"]) < 1e-9 and abs(t["population_value"] - o["population_value"]) < 1e-9 for o in out):
            continue
        out.append(t)
    return out


def label_segments(summary: dict) -> list[SegmentLabel]:
    """Extractive labels for every segment of a run, with names unique across segments.

    A name shared by several segments gets each one's next distinguishing trait
    word (then a second category, then a keyword); numbering only when nothing
    else tells them apart.
    """
    segments = summary["segments"]
    kind = summary.get("data", {}).get("kind", "behaviour")
    candidates = {s["id"]: _candidate_names(s, segments, kind)[0] for s in segments}
    level = {sid: 0 for sid in candidates}
    chosen = {sid: names[0] for sid, names in candidates.items()}
    for _ in range(12):
        clashes = _clashes(chosen)
        if not clashes:
            break
        moved = False
        for group in clashes:
            for sid in group:
                if level[sid] + 1 < len(candidates[sid]):
                    level[sid] += 1
                    chosen[sid] = candidates[sid][level[sid]]
                    moved = True
        if not moved:
            break
    for group in _clashes(chosen):  # nothing else worked: number them, largest first keeps the plain name
        for i, sid in enumerate(sorted(group)[1:], start=2):
            base = chosen[sid]
            while words(base + f" {i}") > MAX_NAME_WORDS:
                base = " ".join(base.split()[1:])
            chosen[sid] = f"{base} {i}"
    out = []
    for s in segments:
        lab = extractive_label(s, segments, kind)
        out.append(SegmentLabel(lab.segment_id, chosen[s["id"]], lab.description, lab.source, lab.template, lab.facts))
    return out


def _clashes(chosen: dict[int, str]) -> list[list[int]]:
    by_name: dict[str, list[int]] = {}
    for sid, name in chosen.items():
        by_name.setdefault(name.lower(), []).append(sid)
    return [g for g in by_name.values() if len(g) > 1]

