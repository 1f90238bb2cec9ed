"""One clause of a request to one tool call: mentions, intent, arguments, follow-ups.

See assistant/router.py for the whole picture. Everything a clause names is resolved
against the workspace (tools/explain/resolve.py); what it leaves unsaid ("it", "that
user", "the third one", "why?", "more") comes from the conversation's Focus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.arguments import RankQuery, active_within_days, min_spend, rank_query, result_count, search_description, segment_params
from assistant.followup import COUNT_ONLY, MORE, NARROW, WHY, Focus, bumped, picked_item, elliptical_body, strip_filler, with_count, with_why
from assistant.intents import MARGIN
from assistant.registry import BY_NAME, validate_args
from assistant.spelling import correct
from tools.core.errors import SegscopeError
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
    "vs against contrast difference differences between differ different first second third fourth last one ones same other both all".split()
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


class ClauseRouter:
    def __init__(self, scorer, resolver=None) -> None:
        self.scorer = scorer
        self.resolver = resolver

    # -- mentions ------------------------------------------------------------------------------
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

    # -- the clause -------------------------------------------------------------------------------
    def route(self, clause: str, focus: Focus, first: bool = True) -> tuple[str, dict, float] | Question:
        clause = correct(clause)
        plain = strip_filler(clause).strip()
        if focus.tool and (picked := picked_item(plain, focus)) is not None:
            return picked[0], picked[1], 1.0
        if focus.tool and WHY.match(plain):
            if (why := with_why(focus)) is not None:
                return why[0], why[1], 1.0
        if focus.tool and MORE.match(plain):
            if (more := bumped(focus.tool, focus.args)) is not None:
                return focus.tool, more, 1.0
        if focus.tool and (count := COUNT_ONLY.match(plain)) is not None:
            if (counted := with_count(focus.tool, focus.args, int(count.group(1) or count.group(2)))) is not None:
                return focus.tool, counted, 1.0
        if focus.tool and (narrow := NARROW.match(plain)) is not None:
            if (merged := self._narrow(focus, plain[narrow.end():])) is not None:
                return merged
        if focus.tool and (body := elliptical_body(clause)) is not None and not re.match(r"^(?:describe|compare|recommend|suggest|find|show|list|write|segment|split|explain|rank)\b", body, re.I):
            if (repeat := self._repeat(focus, body)) is not None:
                return repeat
        if not plain:
            return Question("What would you like to know? Try /help.")
        return self._fresh(plain, focus)

    def _fresh(self, clause: str, focus: Focus) -> tuple[str, dict, float] | Question:
        m = self.mentions(clause)
        rq = rank_query(self._blank(clause, [(a, b) for a, b, how in m.segment_spans if how == "name"]))  # "the lapsed toy buyers" is a name
        low = " " + clause.lower() + " "
        typical_ref = self._typical(clause, m, focus) if not m.users else None
        typical = typical_ref is not None
        pronoun_user = bool(_USER_PRONOUN.search(clause) and (focus.users or focus.results) and not m.segments and not _PEOPLE.search(clause))
        top_result = bool(_TOP_RESULT.search(clause) and focus.results)
        user_ref = bool(m.users) or typical or pronoun_user or top_result or any(u.unknown in ("user", "id") for u in m.unknown)
        explainish = re.search(r"\b(why|explain|justif|reason|evidence|good (?:pick|recommendation|choice|fit|match|idea)|match for|fit|would \w+ like|relevant|how come|behind|care about)\w*", low)
        title = self._title(clause, m) if (user_ref and explainish) else None
        if title is not None and any(pos < title[1][0] or pos > title[1][1] for i, pos in m.items if all(pos != upos for _, upos in m.users)):
            title = None  # an item id said outside the title span wins: "why i00012 for u00042", not a title found elsewhere
        item_ref = bool(m.items) or title is not None or any(u.unknown == "item" for u in m.unknown)
        masked = self._mask(clause, m, title, focus if (pronoun_user or top_result or (focus.segments and not m.segments)) else None, typical_ref)
        n_seg = len([1 for _, pos in m.segments if not (typical_ref and typical_ref[1][0] <= pos < typical_ref[1][1])])
        taste = self._taste(clause, m, rq)
        count_question = bool(re.search(r"\bhow many\s+(?:users|customers|people|shoppers|buyers|clients|members|viewers)\b", low)) and (n_seg or rq.found)
        signals = {"user": user_ref, "item": item_ref, "segments": n_seg, "behaviour": rq.found or count_question, "taste": bool(taste),
                   "run_params": bool(segment_params(clause))}
        scores = self.scorer.scores(masked, signals)
        tool = self._decide(scores, signals, low, rq, count_question, taste)
        if isinstance(tool, Question):
            return tool
        top = scores.get(tool, 1.0)
        return self._assemble(tool, clause, m, rq, focus, title, taste, top)

    def _decide(self, scores: dict[str, float], signals: dict, low: str, rq: RankQuery, count_question: bool, taste: str) -> str | Question:
        people = re.search(r"\b(users?|customers?|people|shoppers?|buyers?|clients?|members?|who|anyone|viewers?|spenders?)\b", low)
        if (rq.found or count_question) and not signals["user"] and not signals["item"] and people and not re.search(r"\b(report|export|recommend|suggest|segment (?:them|the|my|into)|split|cluster (?:them|the|my))\b", low):
            return "find_users" if (taste and not rq.by and not count_question) else "rank_users"
        if (re.match(r"^\s*(?:please\s+)?(?:describe|characteri[sz]e|profile|deep dive into|tell me about)\b", low) and not signals["user"] and not signals["item"]
                and not re.search(r"\b(data|dataset|file|catalog(?:ue)?|items|products|segments|groups|clusters|all)\b", low)):
            return "describe_segment"  # "describe the vampire hunters": a segment, named or not; an unknown name gets a question
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        (top, s1), (second, s2) = ranked[0], ranked[1]
        if s1 < 0.3:
            return Question("I am not sure what you need. Try /help for what I can do.", s1)
        if s1 - s2 < MARGIN and {top, second} not in ({"describe_segment", "list_segments"}, {"recommend_items", "explain_recommendation"}):
            return Question(f"Do you want me to {BY_NAME[top].verb} or to {BY_NAME[second].verb}?", s1)
        return top

    # -- arguments ----------------------------------------------------------------------------------
    def _assemble(self, tool: str, clause: str, m: Mentions, rq: RankQuery, focus: Focus, title, taste: str, score: float):
        low = clause.lower()
        args: dict[str, Any] = {}
        try:
            if tool == "help":
                return "help", {}, score
            if tool == "segment_users":
                args = segment_params(clause)
            elif tool == "load_data":
                if (path := re.search(r"(\S+\.(?:csv|tsv|parquet|jsonl|json|gz))\b", clause)) is not None:
                    args["path"] = path.group(1)
            elif tool == "describe_segment":
                segs = self._segments(clause, m, focus, want=1)
                if not segs:
                    return self._missing_segment(tool, clause, m)
                args["segment_id"] = segs[0]
            elif tool == "compare_segments":
                segs = self._segments(clause, m, focus, want=2)
                if len(segs) < 2:
                    return self._missing_segment(tool, clause, m)
                args["segment_a"], args["segment_b"] = segs[0], segs[1]
            elif tool in USER_TOOLS:
                user = self._user(clause, m, focus)
                if isinstance(user, Question):
                    return user
                args["user_id"] = user
                if tool == "recommend_items":
                    if (k := result_count(clause)) is not None and k <= 50:
                        args["k"] = k
                    if re.search(r"\bwhy\b|\bexplain|\bexplanations?\b|\breasons?\b|\bjustif|\breasoning\b", low):
                        args["explain"] = True
                elif tool == "explain_recommendation":
                    item = self._item(clause, m, focus, title)
                    if isinstance(item, Question):
                        return item
                    args["item_id"] = item
            elif tool == "find_items":
                args["description"] = search_description(clause, [])
            elif tool == "find_users":
                seg, spans = self._filter_segment(clause, m, focus)
                if seg is not None:
                    args["segment_id"] = seg
                days = active_within_days(clause)
                if days is not None:
                    args["active_within_days"] = days
                    spans += [mm.span() for mm in re.finditer(r"\b(?:active\s+)?(?:in|within|during|over)?\s*(?:the\s+)?(?:last|past|previous)\s+(?:\w+\s+)?(?:days?|weeks?|months?|years?)\b|\brecent(?:ly)?\b", clause, re.I)]
                if (spend := min_spend(clause)) is not None:
                    args["min_spend"] = spend
                    spans += [mm.span() for mm in re.finditer(r"\b(?:spent|spend|spending|spends)\s+(?:more than|over|at least|above)\s*[$€£]?\s*\d+(?:\.\d+)?", clause, re.I)]
                args["description"] = taste or search_description(clause, spans)
            elif tool == "rank_users":
                args = rq.args()
                if "n" not in args and (n := result_count(self._blank(" " + " ".join(clause.lower().split()) + " ", list(rq.filter_spans)))) is not None:
                    args["n"] = n  # a count, never a filter's number ("rated more than 100 movies")
                seg, _ = self._filter_segment(clause, m, focus, loose=True)
                if seg is not None:
                    args["segment_id"] = seg
            elif tool == "write_report":
                if re.search(r"\bmarkdown\b|\bmd\b|\.md\b", low):
                    args["fmt"] = "md"
                segs = self._segments(clause, m, focus, want=1, pronouns=bool(re.search(r"\b(on|for|of|about) (it|that|this|them)\b", low)))
                if segs:
                    args["segment_id"] = segs[0]
            return tool, validate_args(tool, args), score
        except SegscopeError as exc:
            return Question(exc.message)

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
            if 0 <= start - end <= 12 and re.fullmatch(r"\s*(?:of|in|from|among)\s+(?:the\s+)?", clause[end:start].lower()):  # "typical user of segment 3"
                return sid, (word.start(), stop)
            if 0 <= start - word.end() <= 6:  # "a typical book reviewer"
                return sid, (word.start(), stop)
        if focus.segments and (noun or re.search(r"\b(?:its|their|that segment's|this segment's)\s+(?:most\s+)?(?:typical|representative)", clause, re.I)):
            return focus.segments[0], (word.start(), end)
        return None

    def _user(self, clause: str, m: Mentions, focus: Focus) -> str | Question:
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
        plural = re.search(r"\b(them|these two|those two|both|they|those|these)\b", clause, re.I)
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

    def _taste(self, clause: str, m: Mentions, rq: RankQuery) -> str:
        """What a search for users would embed, once behaviour, filters and segments are taken out ('' when nothing is left)."""
        low = " " + " ".join(clause.lower().split()) + " "
        spans = list(rq.spans)
        spans += [(a + 1, b + 1) for a, b, _ in m.segment_spans]  # rank_query's spans are in the padded lower-case text
        rest = list(low)
        for a, b in spans:
            rest[a:b] = " " * (b - a)
        text = "".join(rest)
        text = re.sub(r"\b(how many|top \d+|\d+|the|a|an|who|which|what|are|is|our|my|users?|customers?|people|shoppers?|buyers?|clients?|members?|viewers?|"
                      r"show|me|list|find|give|rank|in|among|of|with|and|segment|group|cluster|only|just|most|least|all|do|we|have|there|ones?|that|"
                      r"have|has|been|by|for|to|please|get|tell|about|any|someone|anyone|at|over|more|than|days?|last|week|month|year|active|recently|"
                      r"spent|spend|spends|spending|purchases?|bought|items?|ever|never|gave|give|an|average|rating|below|above|whose|"
                      r"haven'?t|hasn'?t|not|did|does|go|gone|us|it|its|there|their|they|them)\b", " ", text)
        text = re.sub(r"[^a-z\s-]", " ", text)
        return " ".join(text.split()) if rq.found else ""

    @staticmethod
    def _blank(text: str, spans: list[tuple[int, int]]) -> str:
        chars = list(text)
        for a, b in spans:
            chars[a:b] = " " * (b - a)
        return "".join(chars)

    def _mask(self, clause: str, m: Mentions, title, focus: Focus | None = None, typical=None) -> str:
        extra: list[tuple[int, int, str]] = []
        if typical is not None:
            extra.append((typical[1][0], typical[1][1], "this user"))  # "the biggest segment's most typical user" is a user
        elif focus is not None and (focus.users or focus.results) and not m.users:
            for pattern in (_TOP_RESULT, _USER_PRONOUN, _TYPICAL):
                if (hit := pattern.search(clause)) is not None and (pattern is not _TOP_RESULT or focus.results):
                    extra.append((hit.start(), hit.end(), "this user"))
                    break
        if focus is not None and focus.segments and not m.segment_spans and not extra and (hit := _SEG_PRONOUN.search(clause)) is not None:
            extra.append((hit.start(), hit.end(), "this segment"))  # "what are its top items": about the segment in focus
        spans = extra + [(a, b, "this user" if kind == "user" else "this item" if kind == "item" else "this user") for a, b, kind in m.id_spans]
        for a, b, _ in m.segment_spans:
            if typical is not None and typical[1][0] <= a < typical[1][1]:
                continue
            many = sum(1 for _, pos in m.segments if pos == a)
            spans.append((a, b, " and ".join(["this segment"] + ["that segment"] * (many - 1))))
        if title is not None:
            spans.append((title[1][0], title[1][1], "this item"))
        out = clause
        for a, b, word in sorted(spans, key=lambda s: -s[0]):
            out = out[:a] + word + out[b:]
        return out

    # -- follow-ups -----------------------------------------------------------------------------------
    def _repeat(self, focus: Focus, body: str):
        """The last call again with what ``body`` names put in place ("and segment 3?", "what about u01235?")."""
        tool, args = focus.tool, dict(focus.args)
        m = self.mentions(body)
        segs = [s for s, _ in m.segments]
        if not segs and m.numbers and tool in SEGMENT_TOOLS:
            segs = [n for n, _ in m.numbers if self.resolver is None or n in self.resolver.segments.by_id]
        try:
            if segs and tool in SEGMENT_TOOLS:
                for s in segs:
                    if self.resolver is not None:
                        self.resolver.segments.check(s)
                if tool == "compare_segments":
                    if len(segs) >= 2:
                        args["segment_a"], args["segment_b"] = segs[0], segs[1]
                    else:
                        args["segment_b"] = segs[0]
                    return tool, args, 1.0
                args["segment_id"] = segs[0]
                return tool, args, 1.0
            if tool in USER_TOOLS and (m.users or self._typical(body, m, focus) is not None):
                user = self._user(body, m, focus)
                if isinstance(user, Question):
                    return user
                args["user_id"] = user
                return tool, args, 1.0
            if tool == "explain_recommendation":
                title = self._title(body, m)
                item = self._item(body, m, Focus(), title)
                if not isinstance(item, Question):
                    args["item_id"] = item
                    return tool, args, 1.0
                if title is not None or m.items or any(u.unknown == "item" for u in m.unknown):
                    return item  # "and the Lumio smartwatch?": two of them, so ask which
        except SegscopeError as exc:
            return Question(exc.message)
        if tool in USER_TOOLS and any(u.unknown for u in m.unknown) and self.resolver is not None:
            return Question(self.resolver.unknown_id("user", m.unknown[0].token.lstrip("#")).message)
        return None

    def _narrow(self, focus: Focus, rest: str):
        """The last search or ranking limited further: "only in segment 5", "just the ones active in the last 14 days"."""
        tool, args = focus.tool, dict(focus.args)
        if tool not in ("rank_users", "find_users", "recommend_items", "find_items"):
            return None
        m = self.mentions(rest)
        if m.segments and tool in ("rank_users", "find_users"):
            args["segment_id"] = m.segments[0][0]
        if tool == "find_users" and (days := active_within_days(rest)) is not None:
            args["active_within_days"] = days
        if tool == "find_users" and (spend := min_spend(rest)) is not None:
            args["min_spend"] = spend
        if tool == "rank_users":
            extra = rank_query(rest)
            if extra.filters:
                args["filters"] = list(args.get("filters", [])) + [dict(f) for f in extra.filters]
        if (n := result_count(rest)) is not None:
            args["k" if tool == "recommend_items" else "n"] = n
        return (tool, args, 1.0) if args != focus.args else None

    # -- slash commands ---------------------------------------------------------------------------------
    def ground(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slash-command arguments resolved against the workspace ("/recommend 42" -> u00042)."""
        if self.resolver is not None:
            if "user_id" in args:
                args["user_id"] = self.resolver.user(args["user_id"])
            if "item_id" in args:
                args["item_id"] = self.resolver.item(args["item_id"])
            for key in ("segment_id", "segment_a", "segment_b"):
                if key in args:
                    args[key] = self.resolver.segment(args[key])
        return validate_args(tool, args)
