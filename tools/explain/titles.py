"""Find items by what an analyst calls them: "Toy Story", "the vitamin C serum", "The Matrix".

Titles are normalised once (lower case, "Matrix, The (1999)" -> "the matrix", year
kept apart) into an inverted index of words. A mention matches a title when every
one of its words is a word of the title (typos allowed, through rapidfuzz on the
vocabulary); among those, the titles the mention covers best win. A tie between
different items is ambiguous and says so, so the caller can ask which one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_YEAR = re.compile(r"\((\d{4})\)\s*$")
_ARTICLE = re.compile(r"^(?P<body>.+),\s*(?P<art>the|a|an|les|la|le|il|el|die|der|das)$", re.I)
WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    "a an the of and or to for in on at by with from as is are was be it its this that these those my our your their "
    "me you we they he she him her them i what which who whom why how when where".split()
)
FUZZY_MIN_LEN = 5  # shorter words must be spelled exactly
FUZZY_CUTOFF = 85
FUZZY_CUTOFF_LONG = 80  # eight letters or more may be two edits away ("ultralite" for "ultralight")
LOOSE = 0.75  # below this share of its title named, a mention that fits several titles is ambiguous between them


def title_words(title: str) -> tuple[tuple[str, ...], int | None]:
    """("Matrix, The (1999)") -> (("the", "matrix"), 1999): the words as people say them, and the year."""
    text = str(title).strip()
    year = None
    if (m := _YEAR.search(text)) is not None:
        year = int(m.group(1))
        text = text[: m.start()].strip()
    if (m := _ARTICLE.match(text)) is not None:
        text = f"{m['art']} {m['body']}"
    return tuple(WORD.findall(text.lower().replace("&", " and ").replace("'", ""))), year


@dataclass(frozen=True)
class TitleHit:
    """Items whose titles a span of the text names; more than one id means the mention is ambiguous."""

    item_ids: tuple[str, ...]
    start: int  # word positions in the text (end exclusive)
    end: int
    words: tuple[str, ...]


class TitleIndex:
    """An inverted index of item titles (built once per run)."""

    def __init__(self, item_ids: Sequence[str], titles: Sequence[str]) -> None:
        self.item_ids = [str(i) for i in item_ids]
        self.titles = [str(t) for t in titles]
        parsed = [title_words(t) for t in self.titles]
        self.words = [w for w, _ in parsed]
        self.years = [y for _, y in parsed]
        self.postings: dict[str, set[int]] = {}
        for row, words in enumerate(self.words):
            for w in set(words):
                self.postings.setdefault(w, set()).add(row)
        self._vocabulary = [w for w in self.postings if len(w) >= FUZZY_MIN_LEN and not w.isdigit()]
        self._expand_cache: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self.item_ids)

    def _expand(self, word: str) -> frozenset[str]:
        """Title words a text word may stand for: itself, and close spellings of longer words."""
        if word in self._expand_cache:
            return self._expand_cache[word]
        out = {word} if word in self.postings else set()
        if len(word) >= FUZZY_MIN_LEN and not word.isdigit() and self._vocabulary:
            from rapidfuzz import fuzz, process

            cutoff = FUZZY_CUTOFF_LONG if len(word) >= 8 else FUZZY_CUTOFF
            for match, score, _ in process.extract(word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff, limit=5):
                if score >= FUZZY_CUTOFF or abs(len(match) - len(word)) <= 1:  # a typo keeps the length: "godfather" is not "father"
                    out.add(match)
        # A plural in the text finds the singular in a title ("serums" -> "serum") and back.
        for variant in (word[:-1] if word.endswith("s") else word + "s",):
            if variant in self.postings:
                out.add(variant)
        result = frozenset(out)
        self._expand_cache[word] = result
        return result

    def _rows_with(self, words: Sequence[str]) -> set[int]:
        rows: set[int] | None = None
        for w in words:
            hits: set[int] = set()
            for v in self._expand(w):
                hits |= self.postings.get(v, set())
            rows = hits if rows is None else rows & hits
            if not rows:
                return set()
        return rows or set()

    def best(self, words: Sequence[str], year: int | None = None) -> tuple[list[int], float]:
        """Rows of the titles containing all ``words`` that they cover best, and that coverage (0..1)."""
        content = [w for w in words if w not in STOP]
        if not content:
            return [], 0.0
        rows = self._rows_with(content)
        if year is not None:
            rows = {r for r in rows if self.years[r] == year} or rows
        if not rows:
            return [], 0.0
        said = set(words)

        def coverage(r: int) -> float:
            # A title word said exactly counts 1, one reached through a typo 0.9: "Titanic" is Titanic, not Titanica.
            title = self.words[r]
            got = sum(1.0 if w in said else 0.9 if any(w in self._expand(x) for x in words) else 0.0 for w in title)
            return got / max(len(title), 1)

        scored = {r: coverage(r) for r in rows}
        top = max(scored.values())
        if top < LOOSE:  # "Star Wars" names a little of each of many titles: ask which, do not pick the shortest
            return sorted(scored, key=lambda r: (-scored[r], self.titles[r])), top
        return sorted(r for r, s in scored.items() if s >= top - 1e-9), top

    def find(self, words: Sequence[str], blocked: Sequence[bool], max_len: int = 10) -> TitleHit | None:
        """The longest span of ``words`` (none of it ``blocked``) that names titles; None when nothing does."""
        n = len(words)
        best: tuple[tuple, TitleHit] | None = None
        for length in range(min(max_len, n), 0, -1):
            for start in range(n - length + 1):
                span = words[start : start + length]
                if any(blocked[start : start + length]) or span[-1] in STOP or (span[0] in STOP and span[0] != "the"):
                    continue
                content = [w for w in span if w not in STOP]
                if not content or (len(content) == 1 and (len(content[0]) < 4 or content[0].isdigit())):
                    continue
                year = None
                if start + length < n and re.fullmatch(r"(19|20)\d\d", words[start + length]):
                    year = int(words[start + length])
                rows, cov = self.best(span, year)
                if not rows:
                    continue
                # Titles duplicated under several ids are one title: ambiguous between those ids.
                hit = TitleHit(tuple(self.item_ids[r] for r in rows), start, start + length, tuple(span))
                key = (len(content), cov, -len(rows))
                if best is None or key > best[0]:
                    best = (key, hit)
            if best is not None and best[0][0] >= length:
                break  # no shorter span can name more words
        if best is None:
            return None
        # One word that only partly names a long title is too weak to act on ("fun" in a long title).
        if best[0][0] == 1 and best[0][1] < 0.5:
            return None
        return best[1]

    def closest(self, phrase: str, limit: int = 3) -> list[int]:
        """Rows of the titles that look most like ``phrase`` (for "did you mean …?")."""
        if not self.titles:
            return []
        from rapidfuzz import fuzz, process

        joined = [" ".join(w) for w in self.words]
        return [row for _m, _s, row in process.extract(phrase.lower(), joined, scorer=fuzz.WRatio, limit=limit)]
