"""One clause of a request to one tool call: mentions, intent, arguments, follow-ups.

See assistant/router.py for the whole picture. Everything a clause names is resolved
against the workspace (tools/explain/resolve.py); what it leaves unsaid ("it", "that
user", "the third one", "why?", "more") comes from the conversation's Focus.
"""

from __future__ import annotations

import re
from typing import Any

from assistant.arguments import (
    RankQuery,
    active_within_days,
    audit_params,
    export_params,
    min_spend,
    rank_query,
    result_count,
    search_description,
    segment_params,
)
from assistant.followup import (
    COUNT_ONLY,
    MORE,
    NARROW,
    WHY,
    Focus,
    bumped,
    elliptical_body,
    picked_item,
    strip_courtesy,
    strip_filler,
    why_back,
    with_count,
    with_why,
)
from assistant.intents import MARGIN
from assistant.references import (
    _ITEM_PRONOUN,
    _PEOPLE,
    _SEG_PRONOUN,
    _TOP_RESULT,
    _TYPICAL,
    _USER_PRONOUN,
    SEGMENT_TOOLS,
    USER_TOOLS,
    Mentions,
    Question,
    References,
)
from assistant.registry import BY_NAME, validate_args
from assistant.spelling import as_typed, correct, typed_words
from tools.core.errors import SegscopeError
from tools.explain.segment_refs import NUMBER_WORDS, ORDINALS

__all__ = ["ClauseRouter", "Question"]

_NUMBER_WORDS = "|".join(NUMBER_WORDS)
# "export it", "send them to the CRM", "this cohort": the segment in focus.
_SEG_POINTER = re.compile(r"\b(?:export|download|save|send|sync|push|dump|upload)\s+(?:it|them|that|this|those)\b|"
                          r"\b(?:that|this|the same)\s+(?:segment|group|cluster|cohort|audience|one|list)\b|\b(?:of|for|from|in)\s+(?:it|that|this|them)\b", re.I)
_BARE_ORDINAL = re.compile(r"^(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\d{1,2}(?:st|nd|rd|th))"
                           r"(?:\s+(?:one|segment|group|cluster|largest|biggest))?$", re.I)


_DRIFT = re.compile(
    r"\b(?:moved|moves|move|moving|switched|migrated|went|shifted|drifted)\s+(?:\w+\s+){0,3}?(?:from|between|into|out of)\b"
    r"|\b(?:moved|went|switched)\s+(?:\w+\s+){0,2}?to\b.*\bsince\b|\bdrift\b|\bmigrations?\b|\bchanged since\b"
    r"|\bsince (?:the )?(?:last|previous|earlier) (?:run|segmentation|clustering)\b", re.I)
# "a csv of who left since the last run": the members as a file (export_segment), not the migration matrix.
_MEMBER_FILE = re.compile(r"\b(?:csv|parquet|jsonl|json lines|export\w*|download\w*)\b", re.I)
_SINCE_RUN = re.compile(r"\b(?:since|than|with|to) (?:the )?(?:last|previous|earlier|prior) (?:run|segmentation|clustering|fit)\b", re.I)


# "what would move u00042 into segment 3", "what would it take for 17 to become a book reviewer", "how could 17 get into
# the lapsed segment": a counterfactual for one user and one segment (what_would_move), not their recommendations or segment.
_WHATIF = re.compile(
    r"\bwhat (?:would|will|could|does|do|should) (?:it )?(?:take|move|make|bring|get|put)\b"
    r"|\bhow (?:could|can|would|might|do(?:es)?|should)\b.{0,60}?\b(?:get|move|become|end up|land|join|turn|switch|make it)\b"
    r"|\bwhat (?:would|does|do|should|must)\b.{0,40}?\b(?:need|have) to (?:do|change)\b", re.I)


def drift_args(clause: str, m: Mentions, resolver=None) -> dict[str, Any]:
    """segment_drift's arguments: a window ("since last month": 30 days) or the previous run, and the from/to segments by position.

    A move names its segments tersely ("to lapsed"), so a name brushed by one word counts here, as for any wanted segment.
    """
    args: dict[str, Any] = {}
    if _SINCE_RUN.search(clause):
        args["since_run"] = "previous"
    elif re.search(r"\b(?:last|past|this)\s+quarter\b", clause, re.I):
        args["window_days"] = 90.0
    elif (days := active_within_days(clause)) is not None:
        args["window_days"] = days
    low = clause.lower()
    marks = {"from": [x.end() for x in re.finditer(r"\b(?:from|out of|left|leave|leaving)\b", low)],
             "to": [x.end() for x in re.finditer(r"\b(?:to|into|joined|became)\b", low)]}
    found = list(m.segments)
    if resolver is not None:
        found += [(weak.segment_ids[0], weak.start) for weak in resolver.segments_in(clause, lenient=True)
                  if weak.how == "name" and not any(a <= weak.start < b for a, b, _ in m.segment_spans)]
    for seg, pos in sorted(found, key=lambda sp: sp[1]):
        # A mention belongs to the nearest "from" or "to" before it.
        before = [(p, role) for role, ps in marks.items() for p in ps if p <= pos]
        if before:
            role = max(before)[1]
            args.setdefault(f"{role}_segment", seg)
    return args


class ClauseRouter(References):
    """A clause to one call: follow-up forms first, then intent and arguments."""

    def __init__(self, scorer, resolver=None) -> None:
        super().__init__(resolver)
        self.scorer = scorer
        self.extra: list[tuple[str, dict]] = []  # further calls the last clause asked for ("for u00600 and u00601")
        self._typed: dict[str, str] = {}

    # -- the clause -------------------------------------------------------------------------------
    def route(self, clause: str, focus: Focus, first: bool = True, said_users: tuple[str, ...] = ()) -> tuple[str, dict, float] | Question:
        """``said_users``: the users earlier clauses of the same message named ("why is u00123 there and what should we recommend")."""
        self.extra = []
        self._typed = typed_words(clause)  # what the analyst typed, for free text (a search's description)
        clause = strip_courtesy(correct(clause))
        plain = strip_filler(clause).strip()
        if focus.tool in ("rank_users", "find_users") and re.match(r"^how many(?: of (?:them|those|these))?(?: are there| are they| is that)?[\s?!.]*$", plain, re.I):
            return focus.tool, dict(focus.args), 1.0  # the answer leads with the count
        if focus.tool and (picked := picked_item(plain, focus)) is not None:
            return picked[0], picked[1], 1.0
        if focus.tool and (WHY.match(plain) or why_back(plain)):
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
        if focus.tool and (body := elliptical_body(clause)) is not None and not re.match(
                r"^(?:describe|compare|recommend|suggest|find|show|list|write|segment(?!s?\s+(?:#|no\.?\s*|number\s+)?(?:\d|" + _NUMBER_WORDS + r")\b)|split|explain|rank)\b",
                body, re.I):  # "and in segment 1?" names a segment; "and segment the users" is a new request
            if (repeat := self._repeat(focus, body)) is not None:
                return repeat
        if not plain:
            return Question("What would you like to know? Try /help.")
        return self._fresh(plain, focus, said_users)

    def _fresh(self, clause: str, focus: Focus, said_users: tuple[str, ...] = ()) -> tuple[str, dict, float] | Question:
        m = self.mentions(clause)
        rq = rank_query(self._blank(clause, [(a, b) for a, b, how in m.segment_spans if how == "name"]))  # "the lapsed toy buyers" is a name
        low = " " + clause.lower() + " "
        typical_ref = self._typical(clause, m, focus) if not m.users else None
        typical = typical_ref is not None
        pronoun_user = bool(_USER_PRONOUN.search(clause) and (focus.users or focus.results) and not m.segments and not _PEOPLE.search(clause))
        top_result = bool(_TOP_RESULT.search(clause) and focus.results)
        user_ref = bool(m.users) or typical or pronoun_user or top_result or any(u.unknown in ("user", "id") for u in m.unknown)
        explainish = re.search(r"\b(why|explain|justif|reason|evidence|good (?:pick|recommendation|choice|fit|match|idea)|match for|fit|would \w+ like|relevant|how come|behind|care about|(?:right|good|suitable|ideal|a fit) for|suit|worth|make sense|makes sense)\w*", low)
        title = self._title(clause, m) if (user_ref and explainish) else None
        if title is not None and any(pos < title[1][0] or pos > title[1][1] for i, pos in m.items if all(pos != upos for _, upos in m.users)):
            title = None  # an item id said outside the title span wins: "why i00012 for u00042", not a title found elsewhere
        # a bare number that is both a user and an item ("would 42 enjoy", where ids are numbers) is the user: an item is another mention
        items = [pos for _, pos in m.items if not (m.users and pos == m.users[0][1])]
        item_ref = bool(items) or title is not None or any(u.unknown == "item" for u in m.unknown)
        masked = self._mask(clause, m, title, focus if (pronoun_user or top_result or (focus.segments and not m.segments)) else None, typical_ref,
                            users_too=pronoun_user or top_result)
        n_seg = len([1 for _, pos in m.segments if not (typical_ref and typical_ref[1][0] <= pos < typical_ref[1][1])])
        taste = self._taste(clause, m, rq)
        count_question = bool(re.search(r"\b(?:how many|count(?: the)?|number of)\s+(?:users|customers|people|shoppers|buyers|clients|members|viewers)\b", low)) and (n_seg or rq.found)
        signals = {"user": user_ref, "item": item_ref, "segments": n_seg, "behaviour": rq.found or count_question, "taste": bool(taste),
                   "run_params": bool(segment_params(clause)), "item_words": bool(focus.items and _ITEM_PRONOUN.search(clause)) or bool(self._leftover(clause, m))}
        scores = self.scorer.scores(masked, signals)
        tool = self._decide(scores, signals, low, rq, count_question, taste)
        if isinstance(tool, Question):
            return tool
        top = scores.get(tool, 1.0)
        return self._assemble(tool, clause, m, rq, focus, title, taste, top, said_users)

    def _decide(self, scores: dict[str, float], signals: dict, low: str, rq: RankQuery, count_question: bool, taste: str) -> str | Question:
        if signals["user"] and not signals["item"] and _WHATIF.search(low) and (signals["segments"] or re.search(r"\b(?:segment|group|cluster|become|becoming|into)\b", low)):
            return "what_would_move"
        if _DRIFT.search(low) and not signals["user"] and not signals["item"] and not _MEMBER_FILE.search(low):
            return "segment_drift"  # "who moved from the loyal segment to lapsed": a move between segments, not a ranking by recency
        people = re.search(r"\b(users?|customers?|people|shoppers?|buyers?|clients?|members?|who|anyone|viewers?|spenders?)\b", low)
        if (rq.found or count_question) and not signals["user"] and not signals["item"] and people and not re.search(r"\b(report|export|recommend|suggest|segment (?:them|the|my|into)|split|cluster (?:them|the|my))\b", low):
            return "find_users" if (taste and not rq.by and not count_question) else "rank_users"
        if re.match(r"^\s*(?:(?:do|does) (?:we|you) (?:have|sell|carry|stock)|(?:is|are) there any)\b", low) and not signals["user"] and not re.search(
                r"\b(users?|customers?|people|shoppers?|segments?|groups?|clusters?|data)\b", low):
            return "find_items"  # "do we have any cookbooks": the catalogue
        if (re.match(r"^\s*(?:please\s+)?(?:describe|characteri[sz]e|profile|deep dive into|tell me about)\b", low) and not signals["user"] and not signals["item"]
                and not re.search(r"\b(data|dataset|file|catalog(?:ue)?|items|products|segments|groups|clusters|all)\b", low)):
            return "describe_segment"  # "describe the vampire hunters": a segment, named or not; an unknown name gets a question
        if not signals["item"] and not signals["item_words"]:
            # one recommendation explained needs an item (or words that may name one: "the flux capacitor" gets a question);
            # "u00042 recs + why" names none, so it is the recommendations, explained
            scores = {k: v for k, v in scores.items() if k != "explain_recommendation"}
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        (top, s1), (second, s2) = ranked[0], ranked[1]
        if s1 < 0.3:
            return Question("I am not sure what you need. Try /help for what I can do.", s1)
        if s1 - s2 < MARGIN and {top, second} not in ({"describe_segment", "list_segments"}, {"recommend_items", "explain_recommendation"}):
            return Question(f"Do you want me to {BY_NAME[top].verb} or to {BY_NAME[second].verb}?", s1)
        return top

    # -- arguments ----------------------------------------------------------------------------------
    def _assemble(self, tool: str, clause: str, m: Mentions, rq: RankQuery, focus: Focus, title, taste: str, score: float,
                  said_users: tuple[str, ...] = ()):
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
                self.extra = [(tool, {"segment_id": s}) for s in dict.fromkeys(segs[1:]) if s != segs[0]]  # "describe segment 1 and segment 2"
            elif tool == "compare_segments":
                segs = self._segments(clause, m, focus, want=2)
                if len(segs) < 2:
                    return self._missing_segment(tool, clause, m)
                args["segment_a"], args["segment_b"] = segs[0], segs[1]
            elif tool == "what_would_move":
                user = self._user(clause, m, focus, said_users)
                if isinstance(user, Question):
                    return user
                args["user_id"] = user
                segs = [s for s in self._segments(clause, m, focus, want=1, pronouns=False)]
                if not segs and self.resolver is not None:  # "become a book reviewer": a name said loosely names the segment
                    weak = [w.segment_ids[0] for w in self.resolver.segments_in(clause, lenient=True) if len(w.segment_ids) == 1]
                    segs = weak[:1]
                if not segs:
                    return self._missing_segment(tool, clause, m)
                args["segment_id"] = segs[0]
            elif tool in USER_TOOLS:
                user = self._user(clause, m, focus, said_users)
                if isinstance(user, Question):
                    return user
                args["user_id"] = user
                others = [u for u in dict.fromkeys(u for u, _ in m.users) if u != user]
                if others and tool != "explain_recommendation" and re.search(r"\band\b|,|&|\bboth\b", low):
                    self.extra = [(tool, {"user_id": u}) for u in others]  # "recommend for u00600 and u00601": one call each
                if tool == "recommend_items":
                    if (k := result_count(clause)) is not None and k <= 50:
                        args["k"] = k
                    if re.search(r"\bwhy\b|\bexplain|\bexplanations?\b|\breasons?\b|\bjustif|\breasoning\b|\bevidence\b|\bbehind\b|\bhow come\b", low):
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
            elif tool == "segment_drift":
                args = drift_args(clause, m, self.resolver)
            elif tool == "audit_segments":
                args = audit_params(clause)
            elif tool == "export_segment":
                args = export_params(low)
                segs = self._segments(clause, m, focus, want=1, pronouns=bool(_SEG_POINTER.search(low)))
                if segs:
                    args["segment_id"] = segs[0]
            elif tool == "write_report":
                if re.search(r"\bmarkdown\b|\bmd\b|\.md\b", low):
                    args["fmt"] = "md"
                segs = self._segments(clause, m, focus, want=1, pronouns=bool(re.search(r"\b(on|for|of|about) (it|that|this|them)\b", low)))
                if segs:
                    args["segment_id"] = segs[0]
            if isinstance(args.get("description"), str):
                args["description"] = as_typed(args["description"], self._typed)  # "space exploration" stays exploration
            checked = validate_args(tool, args)
            self.extra = [(t, validate_args(t, {**{k: v for k, v in checked.items() if k not in a}, **a})) for t, a in self.extra]
            return tool, checked, score
        except SegscopeError as exc:
            return Question(exc.message)

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
                      r"haven'?t|hasn'?t|not|did|does|go|gone|us|it|its|there|their|they|them|"
                      r"rated|rates?|rating|reviewed|reviews?|watched|watch(?:es)?|viewed|views?|ordered|orders?|purchased|shopped|visited|returned|"
                      r"logged|used|engaged)\b", " ", text)
        text = re.sub(r"[^a-z\s-]", " ", text)
        return " ".join(text.split()) if rq.found else ""

    @staticmethod
    def _blank(text: str, spans: list[tuple[int, int]]) -> str:
        chars = list(text)
        for a, b in spans:
            chars[a:b] = " " * (b - a)
        return "".join(chars)

    def _mask(self, clause: str, m: Mentions, title, focus: Focus | None = None, typical=None, users_too: bool = False) -> str:
        extra: list[tuple[int, int, str]] = []
        if typical is not None:
            extra.append((typical[1][0], typical[1][1], "this user"))  # "the biggest segment's most typical user" is a user
        elif focus is not None and users_too and (focus.users or focus.results) and not m.users:
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
        if tool == "audit_segments" and (named := audit_params(body).get("sensitive")):
            return tool, {**args, "sensitive": named}, 1.0  # "and for occupation?", "what about age?"
        m = self.mentions(body)
        segs = [s for s, _ in m.segments]
        if not segs and tool in ("describe_segment", "compare_segments", "list_segments") and self.resolver is not None and (o := _BARE_ORDINAL.match(body)) is not None:
            # "and the third?": of the list just shown, else by size (after "the second largest")
            position = ORDINALS[o.group(1).lower()]
            order = list(focus.listed) or list(self.resolver.segments.ranked)
            if position < len(order):
                segs = [order[position]]
                tool = "describe_segment" if tool == "list_segments" else tool
                args = {} if tool != focus.tool else args
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
