"""What a clause refers to: the users, items and segments it names, and those it only points at.

Named things come from the workspace resolver (tools/explain/resolve.py); "it", "that user",
"the top one", "the third one", "its typical customer" come from the conversation's Focus.
A reference that resolves to nothing becomes one question naming the closest matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.followup import Focus
from assistant.registry import BY_NAME
from tools.explain.segment_refs import ORDINALS

USER_TOOLS = ("recommend_items", "explain_user_segment", "explain_recommendation")
SEGMENT_TOOLS = ("describe_segment", "compare_segments", "write_report", "rank_users", "find_users")
_USER_PRONOUN = re.compile(r"\b(?:that|this|the same|same)\s+(?:user|customer|person|shopper|client|one|buyer|viewer)\b|\b(?:them|they|him|her)\b", re.I)
_PEOPLE = re.compile(r"\b(?:users|customers|people|shoppers|buyers|clients|members|viewers|everyone|everybody)\b", re.I)
_TOP_RESULT = re.compile(r"\b(?:the\s+)?(?:top|first)\s+(?:one|user|customer|person|result|shopper|spender|buyer|viewer)\b(?!s)|"
                         r"\bthe\s+(?:top|first)\b(?=\s*(?:$|[?.!,]|in\b|of\b|on\b))|\bnumber one\b|#1\b", re.I)
_SEG_PRONOUN = re.compile(r"\b(?:it|its|it's|in there|that segment|this segment|that group|this group|that cluster|this cluster|the same segment|"
                          r"their segment|that one|this one)\b|\b(?:that|this)\b(?=\s+(?:with|to|and|vs|versus|against)\b)|"
                          r"(?<!\bis )(?<!\bare )\bthere\b(?!\s+(?:is|are|was|were)\b)", re.I)
_ORDINAL_REF = re.compile(r"\b(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)(?:\s+(?:one|segment|group|cluster))?\b", re.I)
_TYPICAL = re.compile(r"\b(?:most\s+)?(?:typical|representative|average|archetypal)\s+(?:user|customer|member|shopper|buyer|person|viewer)\b", re.I)
_TYPICAL_WORD = re.compile(r"\b(?:most\s+)?(?:typical|representative|archetypal)\b", re.I)
_ITEM_PRONOUN = re.compile(r"\b(?:that|this|the same)\s+(?:item|product|movie|film|book|one)\b|\bit\b", re.I)
_LEFTOVER_STOP = frozenset(
    "why would should could recommend recommended recommending recommendation recommendations explain explained is are was the a an to for user users customer "
    "like likes fit fits get gets good pick match matches does did do you me tell what makes relevant evidence behind reason reasons reasoning suggest suggested "
    "suggesting suggestion how come of this that care about product products item items movie movies film films describe segment segments group groups "
    "cluster clusters who in on with and or please show give deep dive into info details detail profile story going what's whats special defines define "
    "characterise characterize summarise summarize sum up key traits people folks crowd it its their they them my our we us compare compared versus "
    "vs against contrast difference differences between differ different first second third fourth last one ones same other both all two three "
    "four five recs rec something anything stuff thing things ideas id no number were these those your has have had been".split()
)


@dataclass(frozen=True)
class Question:
    text: str
    score: float = 0.0


@dataclass
class Mentions:
    users: list[tuple[str, int]] = field(default_factory=list)  # (id, char start)
    items: list[tuple[str, int]] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)  # IdMention with .unknown set
    segments: list[tuple[int, int]] = field(default_factory=list)  # (id, char start), in order
    segment_spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, how)
    id_spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, kind)
    numbers: list[tuple[int, int]] = field(default_factory=list)  # bare small integers (could be segments)


class References:
    def __init__(self, resolver=None) -> None:
        self.resolver = resolver

    def mentions(self, clause: str) -> Mentions:
        m = Mentions()
        if self.resolver is None:
            return m
        segs = self.resolver.segments_in(clause)
        seg_spans = [(s.start, s.end) for s in segs]
        for s in segs:
            m.segment_spans.append((s.start, s.end, s.how))
            m.segments += [(sid, s.start) for sid in s.segment_ids]
        for ref in self.resolver.ids_in(clause):
            if any(a <= ref.start < b for a, b in seg_spans):
                continue
            if ref.unknown:
                m.unknown.append(ref)
                m.id_spans.append((ref.start, ref.end, "unknown"))
                continue
            if ref.user:
                m.users.append((ref.user, ref.start))
            if ref.item and (ref.noun == "item" or not ref.user or ref.token.isdigit()):
                m.items.append((ref.item, ref.start))
            m.id_spans.append((ref.start, ref.end, "user" if ref.user and not (ref.item and ref.noun == "item") else "item"))
        for num in re.finditer(r"(?<![\w.#])(\d{1,2})(?![\w.])", clause):
            if not any(a <= num.start() < b for a, b in seg_spans):
                m.numbers.append((int(num.group(1)), num.start()))
        return m

    def _title(self, clause: str, m: Mentions) -> tuple[tuple[str, ...], tuple[int, int]] | None:
        if self.resolver is None:
            return None
        blocked = [(a, b) for a, b, kind in m.id_spans if not clause[a:b].isdigit()]
        blocked += [(a, b) for a, b, _ in m.segment_spans]
        return self.resolver.title_in(clause, blocked)

    def _typical(self, clause: str, m: Mentions, focus: Focus) -> tuple[int, tuple[int, int]] | None:
        """(segment, span) of "the biggest segment's most typical user", "a typical book reviewer", "its typical member"."""
        word = _TYPICAL_WORD.search(clause)
        if word is None:
            return None
        noun = _TYPICAL.search(clause)
        end = noun.end() if noun else word.end()
        for start, stop, _ in m.segment_spans:
            sid = next(s for s, pos in m.segments if pos == start)
            between = clause[stop:word.start()].lower()
            if stop <= word.start() and re.fullmatch(r"\s*(?:'s\s*)?(?:the\s+)?", between):  # "the biggest segment's most typical user"
                return sid, (start, end)
            if noun is not None and 0 <= start - end <= 12 and re.fullmatch(r"\s*(?:of|in|from|among)\s+(?:the\s+)?", clause[end:start].lower()):  # "typical user of segment 3"
                return sid, (word.start(), stop)
            if 0 <= start - word.end() <= 6 and not re.search(r"\b(?:of|in|among|for)\b", clause[word.end():start], re.I):  # "a typical book reviewer", not "typical of the book reviewers"
                return sid, (word.start(), stop)
        if focus.segments and (noun or re.search(r"\b(?:its|their|that segment's|this segment's)\s+(?:most\s+)?(?:typical|representative)", clause, re.I)):
            return focus.segments[0], (word.start(), end)
        return None

    def _user(self, clause: str, m: Mentions, focus: Focus, said: tuple[str, ...] = ()) -> str | Question:
        if m.users:
            return m.users[0][0]
        if (typical := self._typical(clause, m, focus)) is not None and self.resolver is not None:
            reps = self.resolver.segments.by_id[typical[0]].representatives
            if reps:
                return reps[0]
        if focus.results and _TOP_RESULT.search(clause):
            return focus.results[0]
        unknown = [u for u in m.unknown if u.unknown in ("user", "id")]
        if unknown and self.resolver is not None:
            return Question(self.resolver.unknown_id("user", unknown[0].token.lstrip("#")).message)
        if _USER_PRONOUN.search(clause) or re.search(r"\bthat user|\bthe user\b", clause, re.I):
            if focus.results and not focus.users:
                return focus.results[0]
            if focus.users:
                return focus.users[0]
            if focus.results:
                return focus.results[0]
        if said:
            return said[-1]  # "why is u00123 in its segment and what should we recommend": the user this message named
        example = self.resolver.index.users.ids[0] if self.resolver is not None and len(self.resolver.index.users) else "u00042"
        if "recommend" in clause.lower() or "suggest" in clause.lower():
            return Question(f"For which user? Give their id, e.g. “recommend something for {example}”.")
        return Question(f"Which user? Give their id, e.g. “why is {example} in their segment”.")

    def _item(self, clause: str, m: Mentions, focus: Focus, title) -> str | Question:
        inside = (lambda pos: title[1][0] <= pos <= title[1][1]) if title is not None else (lambda pos: False)
        items = [i for i, pos in m.items if not any(pos == upos for _, upos in m.users[:1]) and not inside(pos)]
        if title is not None and not items:
            ids, _span = title
            if len(ids) > 1:
                phrase = clause[_span[0]:_span[1]]
                return Question(self.resolver.ambiguous_title(phrase, ids).message)
            return ids[0]
        if items:
            return items[0]
        unknown = [u for u in m.unknown if u.unknown == "item"]
        if unknown and self.resolver is not None:
            return Question(self.resolver.unknown_id("item", unknown[0].token.lstrip("#")).message)
        if focus.items and _ITEM_PRONOUN.search(clause):
            return focus.items[0]
        phrase = self._leftover(clause, m)
        if phrase and self.resolver is not None and len(self.resolver.index.titles):
            return Question(self.resolver.unknown_title(phrase).message)
        return Question("Which item? e.g. “why recommend i00012 to u00042”.")

    def _segments(self, clause: str, m: Mentions, focus: Focus, want: int, pronouns: bool = True) -> list[int]:
        found = list(m.segments)
        if want == 2 and not found and self.resolver is not None and len(self.resolver.segments) == 2 and re.search(
                r"\b(?:the|both|these|those)\s+(?:two|2)\s+(?:segments|groups|clusters)\b|\bboth\s+(?:segments|groups|clusters)\b", clause, re.I):
            return sorted(self.resolver.segments.by_id)
        if len(found) < want and focus.listed:
            for o in _ORDINAL_REF.finditer(clause):  # "the third one", "the first and the last" of the list just shown
                word = o.group(1).lower()
                position = len(focus.listed) - 1 if word == "last" else ORDINALS[word]
                if position < len(focus.listed) and focus.listed[position] not in [s for s, _ in found]:
                    found.append((focus.listed[position], o.start()))
        if len(found) < want and focus.tool == "compare_segments" and "segment_b" in focus.args:
            pair = [focus.args["segment_a"], focus.args["segment_b"]]
            for o in re.finditer(r"\bthe\s+(first|second|former|latter)(?:\s+one)?\b", clause, re.I):  # "describe the second one" of the pair
                pick = pair[0] if o.group(1).lower() in ("first", "former") else pair[1]
                if pick not in [s for s, _ in found]:
                    found.append((pick, o.start()))
        plural = re.search(r"\b(them|these two|those two|the two|both|they|those|these)\b", clause, re.I)
        if want == 2 and not found and pronouns and plural and len(focus.segments) >= 2:
            return list(reversed(focus.segments[:2]))  # "compare them": the last two
        if len(found) < want and pronouns and focus.segments and (p := _SEG_PRONOUN.search(clause) or plural):
            if focus.segments[0] not in [s for s, _ in found]:
                found.append((focus.segments[0], p.start()))
        if len(found) < want and want == 2 and m.numbers:
            taken = {s for s, _ in found}
            for num, pos in m.numbers:
                if num not in taken and self.resolver is not None and num in self.resolver.segments.by_id:
                    found.append((num, pos))
                    taken.add(num)
        if len(found) < want and self.resolver is not None:  # what only brushes a name counts once a segment is wanted: "the gamers"
            taken = {s for s, _ in found}
            for weak in self.resolver.segments_in(clause, lenient=True):
                if weak.how == "name" and weak.segment_ids[0] not in taken and not any(a <= weak.start < b for a, b, _ in m.segment_spans):
                    found.append((weak.segment_ids[0], weak.start))
                    taken.add(weak.segment_ids[0])
        found.sort(key=lambda sp: sp[1])
        out: list[int] = []
        for sid, _ in found:
            if self.resolver is not None:
                self.resolver.segments.check(sid)
            out.append(sid)
        return out

    def _filter_segment(self, clause: str, m: Mentions, focus: Focus, loose: bool = False) -> tuple[int | None, list[tuple[int, int]]]:
        """The segment a search or ranking is limited to: "in segment 2", "among the book reviewers", "in there"."""
        for start, end, how in m.segment_spans:
            before = clause[:start].lower().rstrip()
            anchored = re.search(r"\b(in|among|from|of|within|inside)(?:\s+the)?$", before) or how == "id" or re.match(r"\s*(segment|group|cluster)", clause[end:].lower())
            if anchored or loose:
                sid = next(s for s, pos in m.segments if pos == start)
                return self.resolver.segments.check(sid) if self.resolver else sid, [(start, end)]
        if focus.segments and re.search(r"\b(in there|in it|its|in that segment|in this segment|of them|their top|that segment's)\b|(?<!\bis )(?<!\bare )\bthere\b(?!\s+(?:is|are|was|were)\b)", clause, re.I):
            return focus.segments[0], []
        return None, []

    def _missing_segment(self, tool: str, clause: str, m: Mentions) -> Question:
        if tool == "compare_segments" and len(m.segments) == 1 and self.resolver is not None:
            one = m.segments[0][0]
            if one in self.resolver.segments.by_id:
                other = "the smallest" if one == self.resolver.segments.rank(0) else "the biggest"
                return Question(f"Compare segment {self.resolver.segments.label(one)} with which segment? e.g. “compare {one} with {other}”.")
        phrase = self._leftover(clause, m)
        if phrase and self.resolver is not None and len(self.resolver.segments):
            return Question(self.resolver.segments.unknown(phrase).message)
        return Question(BY_NAME[tool].missing[1])

    def _leftover(self, clause: str, m: Mentions) -> str:
        chars = list(clause)
        for a, b, _ in m.id_spans + m.segment_spans:
            chars[a:b] = " " * (b - a)
        words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", "".join(chars))
        keep = [w for w in words if w.lower() not in _LEFTOVER_STOP and not w.isdigit()]
        return " ".join(keep)
