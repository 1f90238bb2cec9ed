"""Segments as analysts name them: "segment 3", "groups 0 and 3", "the second largest",
"the two smallest", "biggest and smallest", "the book reviewers", "the garden segment".

Ranks come from the segments' sizes (never from their ids). Names are matched word by
word (typos allowed for longer words); a word found in one segment's name only is
distinctive, one found in several ("buyers") only joins a mention. A mention in a
request must be strong (two distinctive words, or one with a group noun or a shared
name word beside it), so "who buys running shoes" is not taken for the shoe buyers;
a tool argument may be weak ("gamers"), since it is known to name a segment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tools.core.errors import ParameterError
from tools.explain.names import Family

NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
ORDINALS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split())}
ORDINALS.update({f"{i + 1}{s}": i for i, s in enumerate(["st", "nd", "rd"] + ["th"] * 17)})
SEGMENT_NOUNS = frozenset("segment segments seg segs group groups cluster clusters cohort cohorts".split())
GROUP_NOUNS = SEGMENT_NOUNS | frozenset("crowd folks people bunch ones one lot".split())
BIG = ("biggest", "largest")
SMALL = ("smallest", "tiniest")
# Words that join or grade a name's words ("Very-recent", "Mildly-long", "-leaning"): never a name's
# distinctive word, so "show me every cluster" is not read as "Very-recent Sessions".
_CONNECT = frozenset("and the of very mildly most leaning".split())
# A superlative before one of these describes people or money, not a segment ("the biggest spenders").
_NOT_A_SEGMENT_AFTER = frozenset(
    "spender spenders customer customers user users buyer buyers shopper shoppers client clients fan fans order orders "
    "purchase purchases basket baskets item items product products spend spending reviewer reviewers rater raters".split()
)
# What may follow "the biggest two" when no noun does: the request goes on, the count was of segments.
_AFTER_A_COUNT = frozenset("and or then with vs versus side please pls in of by for to".split())
# "the top one", "the first result", "the top customer": a position in what was just shown, never the word of a
# segment's name ("Repeat Top-spend Buyers").
_POSITION_WORDS = frozenset("top first last bottom".split())
_SHOWN_THINGS = frozenset("one ones result results user users customer customers shopper shoppers buyer buyers spender spenders person".split())
_WORD = re.compile(r"[a-z0-9]+")
FUZZY_CUTOFF = 88


def singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(text: str) -> list[tuple[str, int, int]]:
    lowered = text.lower().replace("&", " and ")
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(lowered)]


@dataclass(frozen=True)
class SegmentInfo:
    """What the resolver needs to know of one segment (``parent``/``level`` when the run has a hierarchy)."""

    id: int
    name: str
    size: int
    keywords: tuple[str, ...] = ()
    representatives: tuple[str, ...] = ()
    parent: int | None = None
    level: int | None = None

    @classmethod
    def from_summary(cls, seg: dict) -> SegmentInfo:
        return cls(int(seg["id"]), str(seg.get("name", f"segment {seg['id']}")), int(seg.get("size", 0)),
                   tuple(str(k) for k in seg.get("keywords", [])[:6]), tuple(str(u) for u in seg.get("representative_user_ids", [])),
                   seg.get("parent"), seg.get("level"))


@dataclass(frozen=True)
class SegmentMention:
    start: int  # character span in the text
    end: int
    segment_ids: tuple[int, ...]
    how: str  # "id" | "rank" | "name"


class SegmentNames:
    """The run's segments by id, by size rank and by the words of their names."""

    def __init__(self, segments: Sequence[SegmentInfo]) -> None:
        self.by_id = {s.id: s for s in segments}
        # Ranks ("the biggest", "the two smallest") are among the top level of a two-level run:
        # a sub-segment is reached by its id or its name, never as "the smallest segment".
        ranked = [s for s in segments if s.parent is None] or list(segments)
        self.ranked = [s.id for s in sorted(ranked, key=lambda s: (-s.size, s.id))]
        self.name_words: dict[int, set[str]] = {}
        self.keyword_words: dict[int, set[str]] = {}
        for s in segments:
            self.name_words[s.id] = {singular(w) for w, _, _ in _words(s.name) if w not in _CONNECT and len(w) > 1}
            self.keyword_words[s.id] = {singular(w) for k in s.keywords for w, _, _ in _words(k) if len(w) > 2}
        # A word of a parent's name that its own sub-segments repeat ("Home & Garden Buyers" over
        # "Occasional Garden Buyers") still names one family: distinctive to each, the parent preferred.
        # Keywords follow the same rule: "fashion" in the clothing buyers' keywords and in their sub-segments'.
        self.parent = {s.id: s.parent for s in segments}
        self._tree = Family(self.parent)
        df, family = self._counts_and_family(self.name_words)
        kdf, kfamily = self._counts_and_family(self.keyword_words)
        self.distinctive = {sid: {w for w in words if df[w] == 1 or w in family} for sid, words in self.name_words.items()}
        self.shared = {w for w, n in df.items() if n > 1 and w not in family}
        self.keyword_only = {sid: {w for w in words if (kdf[w] == 1 or w in kfamily) and w not in df}
                             for sid, words in self.keyword_words.items()}
        self._vocabulary = sorted(set(df) | {w for ws in self.keyword_only.values() for w in ws})

    def _counts_and_family(self, words_of: dict[int, set[str]]) -> tuple[dict[str, int], set[str]]:
        """How many segments hold each word, and the words held by several that are one family's."""
        df: dict[str, int] = {}
        for words in words_of.values():
            for w in words:
                df[w] = df.get(w, 0) + 1
        family = {w for w in df if df[w] > 1 and self._one_family([sid for sid, ws in words_of.items() if w in ws])}
        return df, family

    def _one_family(self, holders: list[int]) -> bool:
        """Whether ``holders`` are one top-level segment and sub-segments of it."""
        roots = {self._tree.root(h) for h in holders}
        return len(roots) == 1 and roots.pop() in holders

    def _ancestor_of_all(self, ids: list[int]) -> int | None:
        for sid in ids:
            if all(o == sid or self._tree.root(o) == sid for o in ids):
                return sid
        return None

    def __len__(self) -> int:
        return len(self.by_id)

    def by_whole_name(self, text: str) -> int | None:
        """The one segment whose name's words are exactly the words of ``text`` (any case, "the" and plurals aside)."""
        said = {singular(w) for w, _, _ in _words(text) if w not in _CONNECT and len(w) > 1}
        hits = [sid for sid, words in self.name_words.items() if words and words == said]
        return hits[0] if len(hits) == 1 else None

    def check(self, segment_id: int) -> int:
        if segment_id not in self.by_id:
            raise self.unknown(str(segment_id), numbered=True)
        return segment_id

    def rank(self, position: int, smallest: bool = False) -> int | None:
        order = self.ranked[::-1] if smallest else self.ranked
        return order[position] if 0 <= position < len(order) else None

    def label(self, segment_id: int) -> str:
        return f"{segment_id} “{self.by_id[segment_id].name}”"

    def unknown(self, mention: str, numbered: bool = False) -> ParameterError:
        from tools.explain.resolve import Unresolved

        ids = sorted(self.by_id)
        if numbered or not ids:
            listing = ", ".join(self.label(i) for i in ids[:8])
            span = f"0–{ids[-1]}" if ids else "none"
            return Unresolved("segment", mention, [str(i) for i in ids], f"There is no segment {mention}: the segments are {span} ({listing}). Which one do you mean?")
        from rapidfuzz import fuzz, process

        names = {i: self.by_id[i].name for i in ids}
        close = [i for _n, _s, i in process.extract(mention, names, scorer=fuzz.WRatio, limit=3)]
        return Unresolved("segment", mention, [str(i) for i in close],
                          f"No segment matches “{mention}”; the closest are {', '.join(self.label(i) for i in close)}. Which one do you mean?")

    # -- names --------------------------------------------------------------------------
    def _known(self, w: str) -> bool:
        return w in self.shared or any(w in d for d in self.distinctive.values()) or any(w in k for k in self.keyword_only.values())

    def _match_word(self, word: str) -> str | None:
        w = singular(word)
        if self._known(w):
            return w
        # "gardeners" are of the garden segment; "spenders" are people who spend, not the "-spend" segments.
        if w.endswith("er") and len(w) > 5 and self._known(stem := w[:-2]) and stem not in self.shared:
            return stem
        if len(w) >= 5 and self._vocabulary:
            from rapidfuzz import fuzz, process

            hit = process.extractOne(w, self._vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
            if hit is not None:
                return hit[0]
        return None

    def name_mentions(self, words: list[tuple[str, int, int]], taken: set[int], lenient: bool) -> list[SegmentMention]:
        matched = {i: self._match_word(w) for i, (w, _, _) in enumerate(words) if i not in taken and w not in _CONNECT}
        matched = {i: m for i, m in matched.items() if m is not None}
        out: list[SegmentMention] = []
        positions = sorted(matched)
        windows: list[list[int]] = []
        for p in positions:
            if windows and p - windows[-1][-1] <= 2 and all(words[q][0] in _CONNECT for q in range(windows[-1][-1] + 1, p)):
                windows[-1].append(p)
            else:
                windows.append([p])
        for window in windows:
            scores: dict[int, tuple[int, int, int]] = {}
            for sid in self.by_id:
                d = sum(1 for p in window if matched[p] in self.distinctive[sid])
                k = sum(1 for p in window if matched[p] in self.keyword_only[sid])
                g = sum(1 for p in window if matched[p] in self.shared and matched[p] in self.name_words[sid])
                if d or k:
                    scores[sid] = (d, k, g)
            first, last = window[0], window[-1]
            whole = self.by_whole_name(" ".join(words[p][0] for p in range(first, last + 1)))
            if whole is not None:  # "the repeat beauty buyers": every word is shared, the name is not
                scores = {whole: (2, 0, 0)}  # as strong as two distinctive words
            if not scores:
                continue
            nxt = words[last + 1][0] if last + 1 < len(words) else ""
            adjacent = nxt in GROUP_NOUNS
            best = max(scores.values(), key=lambda t: (2 * t[0] + t[1] + t[2]))
            top = [sid for sid, t in scores.items() if (2 * t[0] + t[1] + t[2]) == (2 * best[0] + best[1] + best[2])]
            d, k, g = best
            strong = d >= 2 or (d >= 1 and (g >= 1 or adjacent)) or (k >= 1 and (adjacent or d >= 1 or g >= 1))
            if len(top) > 1 and (parent := self._ancestor_of_all(top)) is not None:
                top = [parent]  # "the garden segment": the family's top segment, not one of its parts
            if len(top) != 1 or not (strong or lenient):
                continue
            end = words[last + 1][2] if adjacent else words[last][2]
            start = words[first - 1][1] if first and words[first - 1][0] == "the" else words[first][1]
            out.append(SegmentMention(start, end, (top[0],), "name"))
        return out


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


def _superlative(word: str) -> str | None:
    if word in BIG or word in SMALL:
        return word
    if len(word) >= 6:
        from rapidfuzz import fuzz, process

        hit = process.extractOne(word, BIG + SMALL, scorer=fuzz.ratio, score_cutoff=85)
        return hit[0] if hit else None
    return None


def _is_segment_noun(word: str) -> bool:
    if word in SEGMENT_NOUNS:
        return True
    if len(word) >= 6:
        from rapidfuzz import fuzz, process

        return process.extractOne(word, ("segment", "segments", "cluster", "clusters"), scorer=fuzz.ratio, score_cutoff=85) is not None
    return False


def find_segment_mentions(text: str, names: SegmentNames, lenient: bool = False) -> list[SegmentMention]:
    """Every reference to segments in ``text``, in the order written."""
    words = _words(text)
    out: list[SegmentMention] = []
    taken: set[int] = set()
    n = len(words)
    i = 0
    while i < n:
        w = words[i][0]
        if w in _POSITION_WORDS and i + 1 < n and words[i + 1][0] in _SHOWN_THINGS:
            taken.add(i)
        if _is_segment_noun(w):  # "segment 3", "segments 2 and 5", "seg 0 vs seg 4", "group #1", "segment five"
            j = i + 1
            while j < n and words[j][0] in ("no", "number", "id", "nr"):
                j += 1
            ids: list[int] = []
            end = j
            while j < n and (num := _number(words[j][0])) is not None:
                if j + 1 < n and words[j + 1][0] in SEGMENT_NOUNS and words[j + 1][0].endswith("s"):
                    break  # "segment 5 groups": a count
                ids.append(num)
                end = j
                k = j + 1
                if k < n and words[k][0] in ("and", "or", "vs", "versus", "with", "to", "v"):
                    k += 1
                if k < n and _is_segment_noun(words[k][0]):
                    k += 1
                if not (k < n and _number(words[k][0]) is not None):
                    break
                j = k
            if ids:
                out.append(SegmentMention(words[i][1], words[end][2], tuple(ids), "id"))
                taken.update(range(i, end + 1))
                i = end + 1
                continue
        sup = _superlative(w)
        if w == "top" and i + 2 < n and (c := _number(words[i + 1][0])) is not None and words[i + 2][0] in SEGMENT_NOUNS:
            ids = [sid for p in range(c) if (sid := names.rank(p)) is not None]  # "the top two segments"
            start = i - 1 if i and words[i - 1][0] == "the" else i
            out.append(SegmentMention(words[start][1], words[i + 2][2], tuple(ids), "rank"))
            taken.update(range(start, i + 3))
            i += 3
            continue
        if sup is not None and i + 1 < n and (c := _number(words[i + 1][0])) is not None and c >= 2 and (
                (noun := i + 2 < n and words[i + 2][0] in SEGMENT_NOUNS) or i + 2 >= n or words[i + 2][0] in _AFTER_A_COUNT):
            ids = [sid for p in range(c) if (sid := names.rank(p, sup in SMALL)) is not None]  # "the largest two groups", "the biggest two and …"
            start = i - 1 if i and words[i - 1][0] == "the" else i
            end = i + 2 if noun else i + 1
            out.append(SegmentMention(words[start][1], words[end][2], tuple(ids), "rank"))
            taken.update(range(start, end + 1))
            i = end + 1
            continue
        if sup is not None:
            nxt = words[i + 1][0] if i + 1 < n else ""
            noun_after = words[i + 2][0] if _number(nxt) is not None and i + 2 < n else nxt  # "the biggest 5 spenders"
            if nxt not in _NOT_A_SEGMENT_AFTER and noun_after not in _NOT_A_SEGMENT_AFTER:
                smallest = sup in SMALL
                start = i
                positions = [0]
                if i >= 1 and (c := _number(words[i - 1][0])) is not None and c >= 2 and words[i - 1][0] not in ORDINALS:
                    positions, start = list(range(c)), i - 1  # "the two largest"
                elif i >= 1 and words[i - 1][0] in ORDINALS:
                    positions, start = [ORDINALS[words[i - 1][0]]], i - 1
                    if i >= 3 and words[i - 2][0] == "and" and words[i - 3][0] in ORDINALS:  # "third and fourth largest"
                        positions, start = [ORDINALS[words[i - 3][0]], ORDINALS[words[i - 1][0]]], i - 3
                ids = [sid for p in positions if (sid := names.rank(p, smallest)) is not None]
                if ids:
                    end = i + 1 if nxt in GROUP_NOUNS else i
                    if start and words[start - 1][0] == "the":
                        start -= 1
                    out.append(SegmentMention(words[start][1], words[end][2], tuple(ids), "rank"))
                    taken.update(range(start, end + 1))
                    i = end + 1
                    continue
        i += 1
    out += names.name_mentions(words, taken, lenient)
    return sorted(out, key=lambda m: m.start)
