"""Typos in the words that decide a request ("recomend", "descirbe", "segmnet", "itmes", "whcih") put right.

Only a small vocabulary of command words is corrected, and only by one edit (a
transposition counts as one; two for long words), so ordinary words, names and ids
pass untouched. Ids and titles are resolved from the original text, not from this.
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


def correct(text: str) -> str:
    """``text`` with misspelt command words corrected; everything else as written."""
    return _WORD.sub(lambda m: _fix(m.group(0)), text)
