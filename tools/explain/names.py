"""When two segment names are too alike, and choosing names that are not.

The content-word rule is used by the extractive labels and by the LLM polishing path alike
(assistant/labelling.py), so both refuse the same names.

A name's content words are its words minus fillers ("&", "and", "of"), each reduced to a
light stem ("Books" -> "book"), with synonyms folded into one class: the head nouns a name ends
on (Buyers, Shoppers, Customers, Users, People, Sessions, Messages, ...) are all one "who", and a
few adjective families (Frequent/Repeat/Regular) are one word each. Two names clash when the
content words of one are all among the other's: "Occasional Shoppers" clashes with "Lapsed
Occasional Buyers", which clashes with "Lapsed Occasional Shoppers".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_NAME_WORDS = 5

# Words that say who the members are, not what sets them apart: one class.
HEAD_NOUNS = frozenset(
    """buyer shopper customer user people person member client consumer visitor viewer fan audience account household
    session visit message question request query conversation text segment group""".split()
)
# Adjective families a reader takes for the same trait.
SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(g.split()) for g in (
    "frequent repeat regular active heavy busy",
    "occasional infrequent light rare",
    "lapsed dormant inactive churned older",
    "recent new",
    "mainstream typical average everyday middle",
    "high-spend big-spend high-value premium",
    "low-spend low-value",
    "long-time loyal veteran",
))
# Words that carry no distinction of their own.
FILLERS = frozenset("& and + of the a an with for in on".split())
_WHO = "<who>"
_SPLIT = re.compile(r"[\s/,]+")


def _stem(word: str) -> str:
    """A light English stem, enough to fold plurals: books -> book, categories -> category, boxes -> box."""
    w = word.lower().strip(".'’\"()")
    w = re.sub(r"['’]s$", "", w)
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("xes", "ches", "shes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _fold(stem: str) -> str:
    if stem in HEAD_NOUNS:
        return _WHO
    for group in SYNONYMS:
        if stem in group:
            return min(group)
    return stem


def content_words(name: str) -> frozenset[str]:
    """The words that carry a name's meaning, stemmed and with synonyms folded ("<who>" for the head noun)."""
    words = (_stem(w) for w in _SPLIT.split(name) if w)
    return frozenset(_fold(w) for w in words if w and w not in FILLERS)


def names_clash(a: str, b: str) -> bool:
    """True when every content word of one name is also a content word of the other.

    "Buyers" and "Shoppers" clash (one head noun class), so do "Occasional Shoppers" and "Lapsed
    Occasional Buyers"; "Book Buyers" and "Book Reviewers" do not (a reviewer is a role, not a synonym).
    """
    wa, wb = content_words(a), content_words(b)
    return wa <= wb or wb <= wa


def first_clash(name: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` that ``name`` clashes with (see :func:`names_clash`), or None."""
    for other in others:
        if names_clash(name, other):
            return other
    return None


def has_number(name: str) -> bool:
    """A numbered name ("Typical Users 2") is never acceptable: numbers say nothing about a segment."""
    return bool(re.search(r"\d", name))


# ---------------------------------------------------------------- keywords fit for a name

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


def same_stem(a: str, b: str) -> bool:
    """Two forms of one word ("card"/"cards", "charge"/"charged"), by their first five letters."""
    a, b = a.replace("-", ""), b.replace("-", "")
    stem = min(len(a), len(b), 5)
    return stem >= 4 and a[:stem] == b[:stem]


def name_keywords(keywords: Iterable[str], n: int) -> list[str]:
    """Up to ``n`` keywords fit for a name: no generic words, no two forms of one word."""
    out: list[str] = []
    for kw in keywords:
        k = kw.lower()
        if k in GENERIC_WORDS or (len(k) < 3 and k not in ACRONYMS):
            continue
        if any(same_stem(k, o.lower()) for o in out):
            continue
        out.append(kw)
        if len(out) == n:
            break
    return out


def title_word(word: str) -> str:
    """A keyword as a name word: 'atm' -> 'ATM', 'top-up' -> 'Top-Up'."""
    return "-".join(p.upper() if p.lower() in ACRONYMS else p[:1].upper() + p[1:] for p in word.split("-"))


# ---------------------------------------------------------------- choosing a name per segment

def resolve_names(candidates: dict[int, list[str]], sizes: dict[int, int]) -> dict[int, str]:
    """One name per segment from its candidates (plainest first) so that no two clash."""
    level = {sid: 0 for sid in candidates}
    chosen = {sid: names[0] for sid, names in candidates.items()}
    for _ in range(4 * max((len(c) for c in candidates.values()), default=1)):
        pairs = _clashing_pairs(chosen)
        if not pairs:
            return chosen
        movers: set[int] = set()
        for a, b in pairs:
            wa, wb = content_words(chosen[a]), content_words(chosen[b])
            first = [a] if wa < wb else [b] if wb < wa else [a, b]
            able = [s for s in first if level[s] + 1 < len(candidates[s])]
            movers.update(able or [s for s in (a, b) if level[s] + 1 < len(candidates[s])])
        if not movers:
            break
        for sid in movers:
            level[sid] += 1
            chosen[sid] = candidates[sid][level[sid]]
    return _by_size(chosen, sizes)


def _clashing_pairs(chosen: dict[int, str]) -> list[tuple[int, int]]:
    ids = sorted(chosen)
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if names_clash(chosen[a], chosen[b])]


def _by_size(chosen: dict[int, str], sizes: dict[int, int]) -> dict[int, str]:
    """Last resort for names nothing else tells apart: a size word each ("Larger", "Smaller", "Third-largest")."""
    ordinals = ("Largest", "Second-largest", "Third-largest", "Fourth-largest", "Fifth-largest", "Sixth-largest")
    for _ in range(3):
        pairs = _clashing_pairs(chosen)
        if not pairs:
            break
        for group in _components(pairs):
            group = sorted(group, key=lambda s: (-sizes.get(s, 0), s))
            for rank, sid in enumerate(group):
                if len(group) == 2:
                    word = ("Larger", "Smaller")[rank]
                else:
                    word = "Smallest" if rank == len(group) - 1 else ordinals[min(rank, len(ordinals) - 1)]
                parts = chosen[sid].split()
                while len(parts) + 1 > MAX_NAME_WORDS and len(parts) > 1:
                    parts = parts[1:]
                chosen[sid] = " ".join([word, *parts])
    return chosen


def _components(pairs: Sequence[tuple[int, int]]) -> list[set[int]]:
    """Groups of segments linked by clashes."""
    groups: list[set[int]] = []
    for a, b in pairs:
        linked = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*linked)
        groups = [g for g in groups if g not in linked] + [merged]
    return groups
