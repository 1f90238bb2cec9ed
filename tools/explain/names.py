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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

MAX_NAME_WORDS = 5
MIN_GAP = 0.1  # a word added to tell two names apart must hold against the rival by this much (standardised)

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


class Family:
    """Which segment is under which (a two-level run), for the one kind of nesting a tree reads clearly.

    A sub-segment's name may hold another name whole when the words it adds are its family's:
    "Recent Long Sessions" under "Recent Sessions" beside the top-level "Long Sessions" (the
    long sessions of the recent family, not a second "Long Sessions"), and "Recent Long Sessions"
    under "Recent Sessions" itself (a refinement of its parent). Siblings, and names the family
    does not explain, clash as :func:`names_clash` says.
    """

    def __init__(self, parents: Mapping[int, int | None] | None = None) -> None:
        self.parents = dict(parents or {})

    def root(self, sid: int) -> int:
        seen = set()
        while self.parents.get(sid) is not None and sid not in seen:
            seen.add(sid)
            sid = self.parents[sid]  # type: ignore[assignment]
        return sid

    def clash(self, a: int, b: int, names: Mapping[int, str]) -> bool:
        if not names_clash(names[a], names[b]):
            return False
        return not (self._extends(a, b, names) or self._extends(b, a, names))

    def _extends(self, inner: int, outer: int, names: Mapping[int, str]) -> bool:
        """Whether ``inner``'s name is ``outer``'s plus words its family gives it."""
        parent = self.parents.get(inner)
        if parent is None or parent not in names:
            return False
        mine, theirs = content_words(names[inner]), content_words(names[outer])
        if not theirs < mine:
            return False
        if outer == parent:
            return True  # the parent's name, refined
        if self.root(outer) == self.root(inner):
            return False  # siblings and cousins within one family keep the plain rule
        return (mine - theirs) <= content_words(names[parent])

    def pairs(self, names: Mapping[int, str]) -> list[tuple[int, int]]:
        ids = sorted(names)
        return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if self.clash(a, b, names)]


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

class Word(Protocol):
    word: str
    feature: str
    strength: float  # how strongly the segment has the trait the word says
    sign: float  # +1: the word says "more of feature", -1: "less", 0: no feature (a keyword)


@dataclass(frozen=True)
class NameParts:
    """What one segment's name can be made of.

    ``base``: the words of its plainest name, strongest first; ``pool``: further true words, most
    telling first; ``build``: words -> name (None when it would be too long); ``keep``: words
    never dropped (the broad-middle word); ``effects``: feature -> standardised gap to everyone,
    to tell which words set it apart from a given rival.
    """

    base: tuple[Word, ...]
    pool: tuple[Word, ...]
    build: Callable[[Sequence[Word]], str | None]
    keep: frozenset[str] = frozenset()
    effects: Mapping[str, float] = field(default_factory=dict)


def _against(word: Word, mine: Mapping[str, float], theirs: Mapping[str, float]) -> float:
    """How far the word holds against a rival: >0 when this segment has more of what the word says."""
    if not word.sign or not word.feature:
        return 0.0
    return word.sign * (mine.get(word.feature, 0.0) - theirs.get(word.feature, 0.0))


def resolve_names(parts: dict[int, NameParts], sizes: dict[int, int],
                  parents: Mapping[int, int | None] | None = None) -> dict[int, tuple[str, list[Word]]]:
    """A name per segment (and the words it is made of) such that no two clash.

    For each clashing pair, the name whose content words the other holds takes a word of its own
    from its pool (one that clashes with nobody, if it has one); failing that, the other drops a
    word they share; when both are the same, the smaller segment moves first. What is left
    clashing is told apart by size. ``parents`` (a two-level run) lets a sub-segment's name hold
    another's when the words it adds are its family's (:class:`Family`).
    """
    family = Family(parents)
    words = {sid: list(p.base) for sid, p in parts.items()}
    names = {sid: p.build(words[sid]) or p.build(p.base[:1]) or "" for sid, p in parts.items()}

    def commit(sid: int, cand: list[Word], rival_id: int | None, strict: bool, besides: int | None = None) -> bool:
        """Take ``cand`` if its name fits, differs from the rival's, and (``strict``) clashes with no
        other name (but that of ``besides``)."""
        name = parts[sid].build(cand)
        if name is None:
            return False
        trial = {**names, sid: name}
        if rival_id is not None and family.clash(sid, rival_id, trial):
            return False
        # Never trade one clash for the worst kind: a name with exactly another's content words.
        if any(content_words(name) == content_words(n) for other, n in names.items() if other != sid):
            return False
        if strict and any(family.clash(sid, other, trial) for other in names if other not in (sid, besides)):
            return False
        words[sid], names[sid] = cand, name
        return True

    def grow(sid: int, rival: str, rival_id: int) -> bool:
        """Add a word of its own that holds against the rival, most telling first (never one the
        rival deserves more: the lower spender of two is not the one called "Low-spend"); failing
        that, swap the weakest shared word for one."""
        other = content_words(rival)
        mine, theirs = parts[sid].effects, parts[rival_id].effects
        fresh = [w for w in parts[sid].pool if w not in words[sid] and not content_words(w.word) <= other
                 and (not w.sign or _against(w, mine, theirs) > MIN_GAP)]
        fresh.sort(key=lambda w: -_against(w, mine, theirs))
        for swap in (False, True):
            for strict in (True, False):
                for w in fresh:  # a word for a feature already said replaces it ("Very-recent" for "Recent")
                    cand = [*(v for v in words[sid] if not (w.feature and v.feature == w.feature and v.sign == w.sign)), w]
                    if swap:  # drop a word they share only if the rival clearly deserves it more
                        shared = [v for v in cand[:-1] if v.word not in parts[sid].keep and content_words(v.word) <= other
                                  and _against(v, mine, theirs) < -MIN_GAP]
                        if not shared:
                            continue
                        cand = [v for v in cand if v is not shared[-1]]
                    if commit(sid, cand, rival_id, strict):
                        return True
        return False

    def both_grow(x: int, y: int) -> bool:
        """Equal names: each takes a word of its own ("Lapsed Book Users", "Frequent Book Users")."""
        saved = (words[x], names[x])
        same = content_words(names[y])
        mine, theirs = parts[x].effects, parts[y].effects
        for w in sorted(parts[x].pool, key=lambda w: -_against(w, mine, theirs)):
            if w in words[x] or content_words(w.word) <= same or (w.sign and _against(w, mine, theirs) <= MIN_GAP):
                continue
            if commit(x, [*(v for v in words[x] if not (w.feature and v.feature == w.feature and v.sign == w.sign)), w], None, strict=False):
                if grow(y, names[x], x):
                    return True
                words[x], names[x] = saved
        return False

    def lean(sid: int, rival_id: int) -> bool:
        """Equal names that cannot both differ: the one with a word that holds against the other takes
        it, so only the other needs telling apart by size."""
        mine, theirs = parts[sid].effects, parts[rival_id].effects
        for w in sorted(parts[sid].pool, key=lambda w: -_against(w, mine, theirs)):
            if w not in words[sid] and w.sign and _against(w, mine, theirs) > MIN_GAP:
                if commit(sid, [*(v for v in words[sid] if not (v.feature == w.feature and v.sign == w.sign)), w], None,
                          strict=True, besides=rival_id):
                    return True
        return False

    def drop_shared(sid: int, rival: str, rival_id: int) -> bool:
        """Drop a word they share that the rival clearly deserves more ("Recent" from the less recent one)."""
        other = content_words(rival)
        mine, theirs = parts[sid].effects, parts[rival_id].effects
        for v in reversed(words[sid]):
            if v.word in parts[sid].keep or not content_words(v.word) <= other or len(words[sid]) < 2:
                continue
            if _against(v, mine, theirs) >= -MIN_GAP:
                continue
            if commit(sid, [u for u in words[sid] if u is not v], rival_id, strict=False):
                return True
        return False

    for _ in range(4 * len(parts) + 8):
        pairs = family.pairs(names)
        if not pairs:
            break
        changed = False
        for a, b in pairs:
            if not family.clash(a, b, names):
                continue
            ca, cb = content_words(names[a]), content_words(names[b])
            if ca == cb:
                x, y = sorted((a, b), key=lambda s: (sizes.get(s, 0), -s))
            else:
                x, y = (a, b) if ca < cb else (b, a)
            if ((ca == cb and both_grow(x, y)) or grow(x, names[y], y) or drop_shared(y, names[x], x)
                    or (ca == cb and (grow(y, names[x], x) or lean(y, x) or lean(x, y)))):
                changed = True
        if not changed:
            break
    final = _by_size(names, sizes, family)
    return {sid: (final[sid], words[sid]) for sid in parts}


def _by_size(chosen: dict[int, str], sizes: dict[int, int], family: Family | None = None) -> dict[int, str]:
    """Last resort for names nothing else tells apart: a size word. A name all inside another's
    takes one ("Smaller Lapsed Buyers" beside "Lapsed Occasional Buyers"); equal names take one
    each ("Larger", "Smaller"; "Largest", "Second-largest", ..., "Smallest")."""
    ordinals = ("Largest", "Second-largest", "Third-largest", "Fourth-largest", "Fifth-largest", "Sixth-largest")

    size_words = {"Larger", "Smaller", *ordinals, "Smallest"}

    def prefix(sid: int, word: str) -> None:
        parts = chosen[sid].split()
        if parts and parts[0] in size_words:  # one size word at most: never "Larger Smaller ..."
            parts = parts[1:]
        while len(parts) + 1 > MAX_NAME_WORDS and len(parts) > 1:
            parts = parts[1:]
        chosen[sid] = " ".join([word, *parts])

    family = family or Family()
    for _ in range(3):
        pairs = family.pairs(chosen)
        if not pairs:
            break
        nested = [(a, b) for a, b in pairs if content_words(chosen[a]) != content_words(chosen[b])]
        done: set[int] = set()
        for a, b in nested:
            inner, outer = (a, b) if content_words(chosen[a]) < content_words(chosen[b]) else (b, a)
            if inner not in done:
                prefix(inner, "Larger" if (sizes.get(inner, 0), -inner) > (sizes.get(outer, 0), -outer) else "Smaller")
                done.add(inner)
        equal = [(a, b) for a, b in family.pairs(chosen) if content_words(chosen[a]) == content_words(chosen[b])]
        for group in _components(equal):
            group = sorted(group, key=lambda s: (-sizes.get(s, 0), s))
            for rank, sid in enumerate(group):
                if len(group) == 2:
                    word = ("Larger", "Smaller")[rank]
                else:
                    word = "Smallest" if rank == len(group) - 1 else ordinals[min(rank, len(ordinals) - 1)]
                prefix(sid, word)
    return chosen


def _components(pairs: Sequence[tuple[int, int]]) -> list[set[int]]:
    """Groups of segments linked by clashes."""
    groups: list[set[int]] = []
    for a, b in pairs:
        linked = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*linked)
        groups = [g for g in groups if g not in linked] + [merged]
    return groups
