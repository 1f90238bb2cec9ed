"""The plain-word arguments of a request: counts, k, alpha, algorithm, time windows, amounts,
behaviour rankings and filters, and the description a search should embed.

Ids, titles and segments are not found here: the workspace resolver finds those
(tools/explain/resolve.py), and the router has already put placeholders in their place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tools.explain.segment_refs import NUMBER_WORDS

_NUM = r"(\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")"
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}


def number(word: str) -> float | None:
    word = word.lower()
    if word in ("a", "an"):
        return 1.0
    if re.fullmatch(r"\d+(?:\.\d+)?", word):
        return float(word)
    return float(NUMBER_WORDS[word]) if word in NUMBER_WORDS else None


def _low(text: str) -> str:
    return " " + " ".join(text.lower().replace("’", "'").split()) + " "


# -- counts ---------------------------------------------------------------------------------
_COUNT_NOUNS = r"(?:recommendations?|recs|items?|products?|things?|picks?|ideas?|suggestions?|movies?|films?|books?|options?|titles?)"


_PEOPLE_NOUNS = r"(?:users|customers|people|shoppers|buyers|clients|members|viewers|accounts)"


def result_count(text: str) -> int | None:
    """How many results are asked for: "top 5", "5 recommendations", "give them five", "the 15 least …"."""
    low = _low(text)
    for pattern in (rf"\btop\s+(?!one\b){_NUM}\b",
                    rf"^\s*(?:please\s+)?(?:recommend|suggest|pick)\s+(?:me\s+)?(?!one\b){_NUM}\s+(?=for|to)\b",  # "recommend 3 for u00042"
                    rf"\b{_NUM}\s+(?:more\s+)?{_COUNT_NOUNS}\b", rf"\b(?:the|our|my)\s+{_NUM}\s+(?:most|least|best|biggest|highest|lowest|newest|top)\b",
                    rf"\b{_NUM}\s+(?:most|least|best|biggest|highest|lowest|newest)\b", rf"\b(?:first|show|list|give me)\s+(?!one\b){_NUM}\b(?!\s*(?:days?|weeks?|months?))",
                    rf"\bn\s*=\s*{_NUM}\b",
                    rf"^\s*(?:(?:show|list|give|get|find)\s+(?:me\s+)?)?(?:the\s+)?{_NUM}\s+{_PEOPLE_NOUNS}\b(?!\s+(?:and|or)\b)"):  # "20 users most at risk"
        if (m := re.search(pattern, low)) is not None:
            value = number(m.group(1))
            if value is not None and 1 <= value <= 500 and value == int(value):
                return int(value)
    return None


# -- segmentation parameters ------------------------------------------------------------------
def segment_params(text: str) -> dict[str, Any]:
    low = _low(text).replace("k-means", "kmeans")
    args: dict[str, Any] = {}
    for pattern in (rf"\bk\s*(?:=|:|of|to|is)?\s*{_NUM}\b", rf"\binto\s+{_NUM}\b", rf"\b{_NUM}\s+(?:segments|groups|clusters|cohorts|buckets|segment|group|cluster)\b",
                    rf"\bwith\s+{_NUM}\s+(?:segments|groups|clusters)\b"):
        if (m := re.search(pattern, low)) is not None and (value := number(m.group(1))) is not None and 2 <= value <= 500:
            args["k"] = int(value)
            break
    if "k" not in args and re.search(r"\b(auto(matic(ally)?)?|pick the number|choose the number|choose k|pick k|best k|number of (segments|groups|clusters) (itself|automatically))\b", low):
        args["k"] = "auto"
    if (m := re.search(r"(?:alpha|α|text weight|weight (?:of )?(?:the )?text(?: at| to| of)?)\s*(?:=|of|to|at|:)?\s*([01](?:\.\d+)?|\.\d+)", low)) is not None:
        args["alpha"] = float(m.group(1))
    elif re.search(r"\b(behaviou?r only|only (?:on |by |from )?(?:the |their )?behaviou?r|ignore the (?:review )?texts?|without (?:the )?(?:review )?texts?)\b", low):
        args["alpha"] = 0.0
    elif re.search(r"\b(text only|only (?:on |from |by )?(?:the |their )?(?:review |written )?(?:texts?|reviews|words)|ignore (the )?behaviou?r)\b", low):
        args["alpha"] = 1.0
    for algo, words in (("hdbscan", ("hdbscan", "density")), ("agglomerative", ("agglomerative", "hierarchical", "ward")), ("kmeans", ("kmeans",))):
        if any(w in low for w in words):
            args["algorithm"] = algo
            break
    return args


# -- time windows and amounts ------------------------------------------------------------------
def active_within_days(text: str) -> float | None:
    low = _low(text)
    if (m := re.search(rf"\b(?:last|past|within|previous)\s+(?:the\s+)?{_NUM}\s+(days?|weeks?|months?|years?)\b", low)) is not None:
        return float(number(m.group(1)) or 0) * _UNIT_DAYS[m.group(2)]
    if (m := re.search(r"\b(?:last|past|this)\s+(day|week|month|year)\b", low)) is not None:
        return float(_UNIT_DAYS[m.group(1)])
    if re.search(r"\brecent(ly)?\b", low):
        return 30.0
    return None


def min_spend(text: str) -> float | None:
    low = _low(text)
    m = re.search(r"\b(?:spent|spend|spending|spends)\s+(?:more than|over|at least|above|>=?)\s*[$€£]?\s*(\d+(?:\.\d+)?)", low)
    return float(m.group(1)) if m else None


# -- behaviour: rankings and filters -------------------------------------------------------------
@dataclass(frozen=True)
class RankQuery:
    by: str | None = None
    order: str | None = None
    filters: tuple[dict, ...] = ()
    n: int | None = None
    spans: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # what it consumed, in the padded lower-cased text
    filter_spans: tuple[tuple[int, int], ...] = field(default_factory=tuple)  # the filters' part of ``spans``

    @property
    def found(self) -> bool:
        return self.by is not None or bool(self.filters)

    def args(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.by is not None:
            out["by"] = self.by
        if self.order is not None:
            out["order"] = self.order
        if self.filters:
            out["filters"] = [dict(f) for f in self.filters]
        if self.n is not None:
            out["n"] = self.n
        return out


_DESC = r"(?:most|highest|top|biggest|best|largest|greatest|heaviest)"
_ASC = r"(?:least|lowest|fewest|smallest|bottom|worst)"
# (pattern, by, order): order None = the measure's natural order; the first match wins.
_RANKINGS: tuple[tuple[str, str, str | None], ...] = (
    ((r"\bchurn\w*|\bat[- ]risk\b|\blapsing\b|\b(?:are|they're|they are|is|be|been)\s+leaving\b|\bslipping away|\bretention risk|"
      r"\b(?:likely|about|going|set|starting|ready|liable) to (?:soon )?(?:stop|leave|lapse|drop|go|quit)\b|"
      r"\b(?:might|may|could|will|would) (?:soon )?(?:stop|quit|leave|lapse|drop off|drop out|churn)\b"), "churn_risk", None),
    (rf"\b{_ASC} recently active|\blongest inactive|\blapsed|\bdormant|\binactive (users|customers|people|shoppers)|\bgone quiet|\bstopped (coming|buying|visiting|shopping|rating)|"
     r"\bin (a long time|ages|a while)\b|\bnot been back|\bhaven'?t been back|\bwent quiet|\bno longer active|\blost customers|"
     r"\binactive (?:the )?longest|\b(?:been )?away (?:the )?longest|\bgone (?:the )?longest", "recency_days", "desc"),
    (rf"\b{_DESC} recently active|\brecently active (users|customers|people|shoppers)|\bactive most recently", "recency_days", "asc"),
    (rf"\b(?:{_ASC}) (?:spenders?|spending)|\bspen(?:t|d|ds) the least|\blow spenders|\bleast valuable|\blowest[- ]value", "monetary", "asc"),
    (rf"\b(?:top|best|most important|biggest)\s+(?:\d+\s+|{_NUM}\s+)?(?:customers|clients|buyers|shoppers|accounts)\b|\bspenders?\b|\b(?:{_DESC}) spend(?:ing)?\b|\bspen(?:t|d|ds) the most|\bmost valuable|\bhighest[- ]value|\bby (revenue|spend|value|sales|money)|\brevenue|\bbest customers|\bmost money", "monetary", "desc"),
    (rf"\b(?:{_ASC}) (?:active|engaged)|\b(?:least|fewest) (?:events|movies|films|items|ratings|reviews|views|products|books)\b|\b(?:rated|reviewed|viewed|watched|rate|review|view|watch)\w* the (?:least|fewest)\b", "frequency", "asc"),
    (rf"\b(?:{_DESC}) (?:active|engaged)|\bheaviest|\bpower users|\bmost loyal|\bloyal\b|\bnumber of events|\bmost (?:events|movies|films|ratings|reviews|views)\b|"
     r"\b(?:rated|reviewed|viewed|watched|rate|review|view|watch)\w* the most\b", "frequency", "desc"),
    (r"\bnew(est)? (customers|users|shoppers|signups|members|buyers|clients|viewers)|\bnewest\b|\bmost recent (customers|users|shoppers|signups|members|buyers|clients)|\bsigned up|\bjoined (most )?recently|\brecent signups|\bnewcomers|\bfirst[- ]time", "first_seen_days", "asc"),
    (r"\bwith us the longest|\boldest customers|\blongest[- ](standing|time) (customers|users)|\blongest-standing", "first_seen_days", "desc"),
    (r"\bmost expensive|\bpremium (items|products)|\bhigh[- ]end", "avg_price", "desc"),
    (rf"\b(?:{_DESC}) (?:purchases|orders)|\b(?:bought|ordered|purchased|buys|orders) (?:the )?most(?: often)?\b|\bmade the most purchases|\bmost orders", "purchases", "desc"),
    (r"\bmost (?:often|frequently)\b|\bmost frequent (?:users|customers|visitors|shoppers)|\b(?:top|most active|heaviest)\s+(?:\d+\s+)?(?:raters|reviewers|viewers|watchers)\b",
     "frequency", "desc"),
    (rf"\b(?:{_ASC}) (?:average |mean )?rat(?:ings?|es|ed)\b|\bharshest|\brates? \w+ the lowest|\bmost critical", "rating_mean", "asc"),
    (rf"\b(?:{_DESC}) (?:average |mean )?rat(?:ings?|es|ed)\b|\bmost generous|\brates? \w+ the highest|\bgives? the highest", "rating_mean", "desc"),
)
_CMP = (
    (r"more than|over|above|greater than|>", ">"), (r"at least|>=|or more", ">="), (r"less than|under|below|fewer than|<", "<"),
    (r"at most|<=|or less|or fewer|no more than", "<="),
)
_INACTIVE = (r"(?:have ?n[o']t|has ?n[o']t|have not|has not|haven'?t|hasn'?t|not|weren'?t|didn'?t|never)\s+(?:been\s+)?(?:active|back|visited|visit|shown up|come back|bought|purchased|"
             r"rated|reviewed|logged in|returned|shopped|ordered|watched|viewed|used|engaged|played|listened|streamed|clicked|browsed|read|interacted|"
             r"signed in|opened)(?:\s+(?:anything|any\w*|a thing|with us))?")


def _op(words: str) -> str:
    for pattern, op in _CMP:
        if re.search(pattern, words):
            return op
    return ">"


def rank_query(text: str) -> RankQuery:
    """The behaviour ranking and filters a request asks for (empty when it asks for none)."""
    low = _low(text)
    spans: list[tuple[int, int]] = []
    by = order = None
    for pattern, measure, direction in _RANKINGS:
        if (m := re.search(pattern, low)) is not None:
            by, order = measure, direction
            spans.append(m.span())
            break
    if by is None and (m := re.search(r"\b(?:rank|sort|order)\w*\b.*?\bby\s+(spend|spending|revenue|value|activity|events|recency|purchases|orders|rating|price|tenure|"
                                      r"number of events|number of purchases|number of orders)", low)):
        by = {"spend": "monetary", "spending": "monetary", "revenue": "monetary", "value": "monetary", "activity": "frequency", "events": "frequency",
              "number of events": "frequency", "recency": "recency_days", "purchases": "purchases", "orders": "purchases", "rating": "rating_mean",
              "number of purchases": "purchases", "number of orders": "purchases",
              "price": "avg_price", "tenure": "first_seen_days"}[m.group(1)]
        order = "asc" if re.search(r"\b(ascending|lowest first|least first)\b", low) else "desc"
        spans.append(m.span())
    filters: list[dict] = []
    # "haven't been active in 90 days", "inactive for more than 60 days", "not shown up for over 200 days"
    window = rf"(?P<q>(?:more than|over|at least)\s+)?(?P<n>{_NUM}|an?)\s*(?P<plus>\+)?\s*(?P<u>days?|weeks?|months?|years?)"
    m = re.search(_INACTIVE + r"[^.?!]*?\b(?:in|for|within|during)\s+(?:the\s+)?(?:last\s+|past\s+)?" + window, low)
    m = m or re.search(r"\binactive\s+(?:for\s+)?" + window, low)
    if m is not None:
        op = ">=" if m.group("plus") or (m.group("q") or "").startswith("at least") else ">"
        filters.append({"feature": "recency_days", "op": op, "value": float(number(m.group("n")) or 0) * _UNIT_DAYS[m.group("u")]})
        spans.append(m.span())
    elif (m := re.search(rf"\bactive\s+(?:in|within|during)\s+(?:the\s+)?(?:last|past)\s+(?:(?P<n>{_NUM})\s+)?(?P<u>days?|weeks?|months?|years?)", low)) is not None:
        qty = number(m.group("n")) if m.group("n") else 1.0
        filters.append({"feature": "recency_days", "op": "<=", "value": float(qty or 0) * _UNIT_DAYS[m.group("u")]})
        spans.append(m.span())
    if (m := re.search(r"\b(?:spent|spend|spending|spends)\s+((?:more than|over|above|at least|less than|under|below|at most|>=?|<=?)\s*)[$€£]?\s*(\d+(?:\.\d+)?)", low)) is not None:
        filters.append({"feature": "monetary", "op": _op(m.group(1)), "value": float(m.group(2))})
        spans.append(m.span())
    if (m := re.search(r"\b(?:spent|spend|spending)\s+(?:nothing|no money|zero|0)\b|\bnever spent\b", low)) is not None:
        filters.append({"feature": "monetary", "op": "==", "value": 0.0})
        spans.append(m.span())
    if (m := re.search(r"\bnever\s+(?:purchased|bought|ordered)|\bno purchases\b|\bwithout (?:a |any )?purchases?\b", low)) is not None:
        filters.append({"feature": "purchases", "op": "==", "value": 0.0})
        spans.append(m.span())
    elif (m := re.search(rf"(?P<q>(?:more than|over|at least|fewer than|less than|under|at most)\s+)?(?P<n>{_NUM})\s*(?P<r>or more\s+|or fewer\s+|\+\s*)?(?:purchases|orders|items bought)|"
                         rf"\bbought\s+(?P<q2>(?:more than|at least|fewer than|less than)\s+)?(?P<n2>{_NUM})\s+(?P<r2>or more\s+|or fewer\s+)?(?:items|things|products)", low)) is not None:
        qualifier = " ".join(x for x in (m.group("q"), m.group("r"), m.group("q2"), m.group("r2")) if x).strip()
        qty = m.group("n") if m.group("n") is not None else m.group("n2")
        op = ">=" if qualifier in ("", "+") else _op(qualifier)
        filters.append({"feature": "purchases", "op": op, "value": float(number(qty) or 0)})
        spans.append(m.span())
    if (m := re.search(r"\baverage rating\s+((?:above|over|more than|below|under|less than|at least|at most)\s+)(\d(?:\.\d+)?)", low)) is not None:
        filters.append({"feature": "rating_mean", "op": _op(m.group(1)), "value": float(m.group(2))})
        spans.append(m.span())
    if (m := re.search(rf"\b((?:more than|over|at least|fewer than|less than)\s+){_NUM}\s+(?:events|movies|films|ratings|reviews|views|visits)\b", low)) is not None:
        filters.append({"feature": "frequency", "op": _op(m.group(1)), "value": float(number(m.group(2)) or 0)})
        spans.append(m.span())
    filter_spans = spans[1:] if by is not None else spans
    rest = list(low)
    for a, b in filter_spans:  # a filter's number is never the count ("rated more than 100 movies")
        rest[a:b] = " " * (b - a)
    n = result_count("".join(rest)) if (by or filters) else None
    return RankQuery(by, order, tuple(filters), n, tuple(spans), tuple(filter_spans))


# -- the description a search embeds ----------------------------------------------------------
_LEAD = [
    r"^(?:please|can you|could you|pls|hey|so|ok|now|i want to|i'd like to|help me|i need to)\s+",
    r"^(?:search (?:in )?the catalog(?:ue)?(?: for)?|catalog(?:ue)? search:?|do we (?:sell|have|carry|stock)(?: any(?:thing)?)?(?: in the way of)?|"
    r"find|search(?: for)?|look(?: for| up)?|show(?: me)?|list|get|give me|fetch|any(?:one)?|which|who(?:'s| is| are)?|what(?: items| products)?)\s+",
    r"^(?:me\s+)?(?:the\s+|all\s+|some\s+)?(?:users?|customers?|people|shoppers?|buyers?|clients?|members?|viewers?|items?|products?|things?|movies?|films?|books?|anything|someone|somebody)\s+",
    r"^(?:who|that|which)(?:'s|'re| is| are)?\s+",
    r"^(?:are|is|do we have)\s+",
    r"^(?:similar to|like|about|matching|for|into|interested in|in the catalog(?:ue)?)\s+",
]
_TRAIL = r"\s+(?:in the catalog(?:ue)?|please|for me|in my data|in the data)$"


def search_description(text: str, remove: list[tuple[int, int]]) -> str:
    """``text`` without its command words and the spans already turned into arguments (filters, segment)."""
    chars = list(text)
    for start, end in remove:
        for i in range(max(0, start), min(len(chars), end)):
            chars[i] = " "
    out = re.sub(r"[?!.]+$", "", " ".join("".join(chars).replace(":", " ").split())).strip()
    out = re.sub(r"(?:\s+(?:and|who|that|with|in|among|from|of|within|for|at|,))+\s*$", "", out)
    changed = True
    while changed:
        changed = False
        for pattern in _LEAD:
            new = re.sub(pattern, "", out, flags=re.I)
            if new != out and new.strip():
                out, changed = new.strip(), True
        new = re.sub(_TRAIL, "", out, flags=re.I)
        if new != out:
            out, changed = new.strip(), True
    out = re.sub(r"\b(?:who|that)\s+(?:and\s+)?", "", out, flags=re.I) if re.match(r"^(?:and|who|that)\b", out, re.I) else out
    out = re.sub(r"^(?:and|,)\s+", "", out)
    return " ".join(out.split()) or text.strip()


# -- fairness audit ------------------------------------------------------------------------------
# Words for an attribute, and the name the audit looks for (it also matches synonyms and prefixes:
# "gender" finds a column called sex, "age" one called age_band; tools/explain/audit_attributes.py).
_ATTRIBUTE_WORDS = (
    (r"genders?|sex(?:es)?|wom[ae]n|m[ae]n|females?|males?|girls?|boys?", "gender"),
    (r"ages?|aged|older|younger|old|young|seniors?|teen(?:ager)?s?|age[ -]?(?:bands?|groups?|brackets?)", "age"),
    (r"occupations?|jobs?|professions?|careers?", "occupation"),
    (r"countr(?:y|ies)|nationalit(?:y|ies)", "country"),
    (r"race|races|ethnicit(?:y|ies)", "race"),
    (r"religions?", "religion"),
    (r"incomes?", "income"),
)
_AUDIT_FLAGS = {"top", "top-level", "leaf", "--top", "--level", "--no-recommendations", "segments-only", "--sensitive"}


def audit_params(text: str) -> dict[str, Any]:
    """What a fairness-audit request names: the attributes ("a proxy for gender", "worse for older users"),
    the level ("top-level segments") and whether to leave recommendations out ("segments only")."""
    low = _low(text)
    args: dict[str, Any] = {}
    hits = sorted((m.start(), name) for pattern, name in _ATTRIBUTE_WORDS if (m := re.search(rf"\b(?:{pattern})\b", low)))
    if hits:
        args["sensitive"] = list(dict.fromkeys(name for _, name in hits))  # in the order they are named
    if re.search(r"\btop[- ]level\b|\btop segments\b|--level top\b|\btop\s*$", low):
        args["level"] = "top"
    if re.search(r"\b(?:segments? only|only (?:the )?segments|without (?:the )?recommendations|no recommendations|not the recommendations)\b|--no-recommendations|segments-only", low):
        args["recommendations"] = False
    return args


def slash_audit_params(rest: list[str]) -> dict[str, Any]:
    """`/audit gender,age top --no-recommendations`: names as given (any attribute of the data), then the flags."""
    args = audit_params(" ".join(rest))
    names = [n for part in rest if part.lower() not in _AUDIT_FLAGS for n in part.split(",") if n.strip()]
    if names:
        args["sensitive"] = names
    return args
