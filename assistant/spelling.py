"""Typos in the words that decide a request ("recomend", "descirbe", "segmnet", "itmes", "whcih") put right.

Only a small vocabulary of command words is corrected, and only by one edit (a
transposition counts as one; two for long words), so ordinary words, names and ids
pass untouched; a "y" standing for "why" ("tell me y") is read as one. The correction
only decides the route: free text handed to a tool (a search's description) gets the
words back as typed (``typed_words`` / ``as_typed``), so "space exploration" is never
searched as "space explanation".
"""

from __future__ import annotations

import re

VOCABULARY = frozenset(
    "recommend recommendation recommendations recommended suggest suggestions describe description compare comparison segment segments "
    "segmentation cluster clusters clustering report reports list explain explanation customers customer users items products product "
    "something which find search show biggest largest smallest reviewers churn spenders active markdown export different difference "
    "between characterise characterize summarise summarize justify purchases people shoppers segments".split()
)
_WORD = re.compile(r"[A-Za-z]{4,}")


def _osa(a: str, b: str) -> int:
    from rapidfuzz.distance import OSA

    return OSA.distance(a, b)


_SUFFIX = re.compile(r"(?:ations?|ings?|ed|es|ers?|s|ly|d)$")


def _stem(word: str) -> str:
    return _SUFFIX.sub("", word)


def _fix(word: str) -> str:
    low = word.lower()
    if low in VOCABULARY or any(low.startswith(v) or v.startswith(low) or _stem(low) == _stem(v) for v in VOCABULARY if abs(len(v) - len(low)) <= 3):
        return word  # the word itself or a form of it ("purchased" is not a typo of "purchases")
    best, best_d = None, 99
    for v in VOCABULARY:
        if abs(len(v) - len(low)) > 2 or v[0] != low[0] and not (len(low) >= 6 and v[1:3] == low[1:3]):
            continue
        d = _osa(low, v)
        if d < best_d:
            best, best_d = v, d
    if best is None or best_d > 2 or (best_d == 2 and (len(low) < 7 or low[:3] != best[:3])):
        return word  # two edits only in a long word that starts like the command ("compair"), never "highest" -> "biggest"
    if len(low) == 4 and sorted(low) != sorted(best):
        return word  # four letters: only a swap ("lsit" -> "list"), never a different word
    return best


# Chat shorthand for the one word that decides a follow-up: "tell me y", "y?", "and y is that"
_Y_FOR_WHY = re.compile(r"(?:(?<=^)|(?<=\bme )|(?<=\band )|(?<=, ))y(?=\s*(?:$|[?!.]|is\b|was\b|does\b|did\b|would\b|not\b))", re.I)


def typed_words(text: str) -> dict[str, str]:
    """{corrected word: the word as typed} for every word ``correct`` would change."""
    out: dict[str, str] = {}
    for m in _WORD.finditer(text):
        fixed = _fix(m.group(0))
        if fixed != m.group(0) and fixed.lower() != m.group(0).lower():
            out.setdefault(fixed, m.group(0))
    return out


def as_typed(text: str, typed: dict[str, str]) -> str:
    """``text`` (taken from a corrected request) with corrected words put back as typed: a search embeds the analyst's words."""
    for fixed, original in typed.items():
        text = re.sub(rf"\b{re.escape(fixed)}\b", original, text)
    return text


def correct(text: str) -> str:
    """``text`` with misspelt command words (and a "y" for "why") corrected; everything else as written."""
    return _Y_FOR_WHY.sub("why", _WORD.sub(lambda m: _fix(m.group(0)), text))
