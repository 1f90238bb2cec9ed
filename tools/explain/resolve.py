"""Resolve what an analyst calls a user, an item or a segment to this run's ids.

One index per run: user and item ids in sets (a 100,000-user run indexes in well
under a second, and nothing reads the events), titles in a word index, and the
segments' names, keywords and sizes. The router resolves whole requests with it
and the tools resolve their arguments with it, so "the book reviewers", "u42",
"#42", "the second largest" or "Toy Story" mean the same thing to both.

A mention that names nothing, or several things, raises :class:`Unresolved`,
whose message is the one question to ask back, naming the closest matches.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.core.errors import ParameterError
from tools.explain.segment_refs import (
    SegmentInfo,
    SegmentMention,
    SegmentNames,
    find_segment_mentions,
)
from tools.explain.titles import STOP, WORD, TitleIndex, title_words

USER_NOUNS = frozenset("user users customer customers client clients shopper shoppers visitor visitors person member buyer viewer account household".split())
ITEM_NOUNS = frozenset("item items product products movie movies film films book books sku skus article articles title titles".split())
# A number right after one of these is a count, an amount or a segment, never an id.
_NOT_ID_BEFORE = frozenset(
    "segment segments group groups cluster clusters seg top k alpha than over under least most last past within "
    "below above about around into first next only $ n".split()
)
_NOT_ID_AFTER = re.compile(
    r"^(?:items?|recommendations?|recs|products?|movies?|films?|books?|things?|picks?|ideas?|suggestions?|groups?|segments?|"
    r"clusters?|cohorts?|days?|weeks?|months?|years?|purchases?|events?|orders?|users?|customers?|people|stars?|times|"
    r"ratings?|reviews?|more|%|percent|dollars?|euros?|pounds?)$"
)
# A bare number right after one of these sits where a user goes ("recommend something for 42", "what segment does 42 belong to"):
# where ids are shaped like u00042 it is read as that user (or as an unknown user), never as a count.
_USER_SLOT_BEFORE = frozenset("for to does did is was should would will can could might".split())
_ID_WORDS = frozenset("id no no. number nr num".split())
_TOKEN = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9_.:\-]*[A-Za-z0-9]|#?[A-Za-z0-9]")
_NOT_AN_ID = re.compile(r"^(?:\d+(?:st|nd|rd|th|k|m|s|x|h|d|%)|k=?\d+|v\d+(?:\.\d+)*|mp\d|\d+(?:\.\d+)+|[a-z]+-[a-z]+|covid-?19)$", re.I)


class Unresolved(ParameterError):
    """A mention that matches nothing in the workspace, or several things: ``message`` is the question to ask."""

    def __init__(self, kind: str, mention: str, candidates: Sequence[str], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.mention = mention
        self.candidates = tuple(candidates)


@dataclass(frozen=True)
class IdMention:
    """A token of the text that is (or looks like) a user or item id; ``user``/``item`` are the ids it resolves to."""

    start: int
    end: int
    token: str
    user: str | None
    item: str | None
    noun: str | None  # "user" / "item" when a noun in front says which
    unknown: str | None = None  # "user" / "item": looks like one of those ids, but is none


def _id_shape(ids: Sequence[str]) -> tuple[str, int] | None:
    """('u', 5) when (nearly) every id is that prefix and that many digits, as in u00042."""
    sample = ids[:: max(1, len(ids) // 2000)]
    shapes = Counter((m.group(1).lower(), len(m.group(2))) for i in sample if (m := re.fullmatch(r"([A-Za-z_-]*)(\d+)", i)))
    if not shapes:
        return None
    (shape, count), = shapes.most_common(1)
    return shape if count >= 0.9 * len(sample) and shape[0] else None


class IdSet:
    """The ids of one kind (users or items), with the forms people type them in."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = [str(i) for i in ids]
        self.set = frozenset(self.ids)
        self.numeric = bool(self.ids) and all(i.isdigit() for i in self.ids[:: max(1, len(self.ids) // 500)])
        self.lower = {} if self.numeric else {i.lower(): i for i in self.ids}
        self.shape = None if self.numeric else _id_shape(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, token: str, with_noun: bool = False) -> str | None:
        """The id ``token`` stands for (u00042, U00042, #42, u42; a bare 42 only ``with_noun`` "user 42"), else None."""
        token = token.strip().lstrip("#")
        if token in self.set:
            return token
        if (hit := self.lower.get(token.lower())) is not None:
            return hit
        if self.numeric and token.isdigit() and token.lstrip("0") in self.set:
            return token.lstrip("0")
        if self.shape is not None and (m := re.fullmatch(r"([A-Za-z_-]*)(\d+)", token)):
            prefix, width = self.shape
            if m.group(1).lower() == prefix or (not m.group(1) and with_noun):
                padded = prefix + m.group(2).lstrip("0").zfill(width)
                return self.lower.get(padded)
        return None

    def looks_like(self, token: str) -> bool:
        """Shaped like this set's ids (u09999 next to u00042) without being one."""
        token = token.lstrip("#")
        if self.shape is None:
            return False
        m = re.fullmatch(r"([A-Za-z_-]*)(\d+)", token)
        return bool(m) and m.group(1).lower() == self.shape[0]

    def closest(self, token: str, limit: int = 3) -> list[str]:
        from rapidfuzz import fuzz, process

        token = token.lstrip("#")
        out: list[str] = []
        if self.shape is not None and (m := re.search(r"(\d+)$", token)):
            digits = m.group(1).lstrip("0") or "0"
            prefix, width = self.shape
            for guess in (prefix + digits.zfill(width), prefix + digits[-width:].zfill(width)):
                if (hit := self.lower.get(guess)) and hit not in out:
                    out.append(hit)
        for match, _score, _ in process.extract(token, self.ids, scorer=fuzz.ratio, limit=limit + len(out)):
            if match not in out:
                out.append(match)
        return out[:limit]


def _quote(text: str) -> str:
    """Data text in a question: fenced, so a model reading it takes it as data."""
    return "<data>" + " ".join(str(text).split())[:80].replace("</data>", "<\\/data>") + "</data>"


def _or_list(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


class WorkspaceIndex:
    """What a run calls its users, items and segments, indexed for resolution."""

    def __init__(self, user_ids: Sequence[str], item_ids: Sequence[str], item_titles: Sequence[str] | None, segments: Sequence[SegmentInfo]) -> None:
        self.users = IdSet(user_ids)
        self.items = IdSet(item_ids)
        titled = [(i, t) for i, t in zip(item_ids, item_titles or []) if isinstance(t, str) and t.strip()]
        self.titles = TitleIndex([i for i, _ in titled], [t for _, t in titled])
        self.title_of = {str(i): t for i, t in titled}
        self.segments = SegmentNames(segments)

    @classmethod
    def load(cls, run_dir: str | Path) -> WorkspaceIndex:
        """From a finished run's folder: reads ids, titles and segments.json only (never the events or vectors)."""
        run_dir = Path(run_dir)
        summary = json.loads((run_dir / "segments.json").read_text())
        with np.load(run_dir / "profiles.npz", allow_pickle=False) as profiles:
            users = [str(u) for u in profiles["user_ids"].tolist()]
            item_ids = [str(i) for i in profiles["item_ids"].tolist()] if "item_ids" in profiles.files else []
        titles: list[str] | None = None
        items_path = run_dir / "items.parquet"
        if items_path.exists():
            import pyarrow.parquet as pq

            table = pq.ParquetFile(items_path).read(columns=["item_id", "title"])
            item_ids = [str(i) for i in table.column("item_id").to_pylist()]
            titles = [t if isinstance(t, str) else "" for t in table.column("title").to_pylist()]
        elif (run_dir / "events.parquet").exists() and not item_ids:
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            column = pq.ParquetFile(run_dir / "events.parquet").read(columns=["item_id"]).column("item_id")
            item_ids = [str(i) for i in pc.unique(column.drop_null()).to_pylist()]
        return cls(users, item_ids, titles, [SegmentInfo.from_summary(s) for s in summary.get("segments", [])])


class Resolver:
    """Mentions in a text, and single references, resolved against one :class:`WorkspaceIndex`."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index

    # -- single references (tool arguments) -----------------------------------------
    def user(self, ref: object) -> str:
        """A user id from ``ref`` as anyone may write it ("u00042", "user 42", "#42"); Unresolved naming the closest."""
        return self._one(ref, "user")

    def item(self, ref: object) -> str:
        """An item id from an id or a title ("i00494", "the Aquara vitamin C serum", "Toy Story")."""
        text = str(ref).strip()
        try:
            return self._one(text, "item")
        except Unresolved:
            if not len(self.index.titles):
                raise
        words = WORD.findall(text.lower().replace("&", " and ").replace("'", ""))
        hit = self.index.titles.find(words, [False] * len(words))
        if hit is None:
            raise self.unknown_title(text)
        if len(hit.item_ids) > 1:
            raise self.ambiguous_title(text, hit.item_ids)
        return hit.item_ids[0]

    def _one(self, ref: object, kind: str) -> str:
        ids = self.index.users if kind == "user" else self.index.items
        text = str(ref).strip()
        words = text.split()
        noun = len(words) == 2 and words[0].lower() in (USER_NOUNS if kind == "user" else ITEM_NOUNS)
        token = words[-1] if noun else text
        if (hit := ids.get(token, with_noun=True)) is not None:
            return hit
        raise self.unknown_id(kind, text)

    def segment(self, ref: object) -> int:
        """One segment id from an id, a rank ("biggest", "second smallest") or words of its name."""
        if isinstance(ref, (int, np.integer)) or (isinstance(ref, str) and ref.strip().lstrip("#").isdigit()):
            return self.segments.check(int(str(ref).strip().lstrip("#")))
        found = self.segments_in(str(ref), lenient=True)
        ids = [sid for m in found for sid in m.segment_ids]
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise Unresolved("segment", str(ref), [str(i) for i in ids], f"“{ref}” names {len(ids)} segments ({', '.join(map(str, ids))}); which one do you mean?")
        raise self.segments.unknown(str(ref))

    @property
    def segments(self) -> SegmentNames:
        return self.index.segments

    # -- mentions in a whole request ------------------------------------------------------
    def ids_in(self, text: str) -> list[IdMention]:
        """Every token that is a user or item id of this workspace, or is shaped like one."""
        tokens = list(_TOKEN.finditer(text))
        out: list[IdMention] = []
        for n, m in enumerate(tokens):
            token = m.group(0)
            bare = token.lstrip("#")
            before = tokens[n - 1].group(0).lower() if n else ""
            after = tokens[n + 1].group(0).lower() if n + 1 < len(tokens) else ""
            if before in _ID_WORDS and n >= 2:  # "customer id 42", "user no. 42", "item number 12": the noun before the id word says which
                before = tokens[n - 2].group(0).lower()
            noun = "user" if before in USER_NOUNS else "item" if before in ITEM_NOUNS else None
            if bare.isdigit() and not token.startswith("#") and noun is None and (before in _NOT_ID_BEFORE or _NOT_ID_AFTER.match(after)):
                continue
            if bare.replace(".", "", 1).isdigit() and "." in bare:
                continue
            if re.fullmatch(r"(?:19|20)\d\d", bare) and text[max(0, m.start() - 1) : m.start()] == "(":
                continue  # "Titanic (1997)": a year
            if (noun is None and before in _USER_SLOT_BEFORE and bare.isdigit() and len(bare) >= 2 and not token.startswith("#")
                    and self.index.users.shape is not None):
                user = self.index.users.get(bare, with_noun=True)
                out.append(IdMention(m.start(), m.end(), token, user, None, None, None if user else "user"))
                continue
            user = self.index.users.get(bare, with_noun=noun == "user" or token.startswith("#"))
            item = self.index.items.get(bare, with_noun=noun == "item" or token.startswith("#"))
            # The noun says which a bare number is: "user 611" where no user is 611 is an unknown user, not item 611.
            if noun == "user":
                item = None if (user or bare.isdigit()) else item
            elif noun == "item":
                user = None if (item or bare.isdigit()) else user
            if user or item:
                out.append(IdMention(m.start(), m.end(), token, user, item, noun))
                continue
            unknown = self._unknown_kind(bare, noun)
            if unknown:
                out.append(IdMention(m.start(), m.end(), token, None, None, noun, unknown))
        return out

    def _unknown_kind(self, token: str, noun: str | None) -> str | None:
        has_digit = any(c.isdigit() for c in token)
        if not has_digit or _NOT_AN_ID.match(token) or (len(token) < 2 and noun is None):
            return None  # one digit is an id only when said as one ("user 0")
        if self.index.users.looks_like(token):
            return "user"
        if self.index.items.looks_like(token):
            return "item"
        if noun is not None and (token.isdigit() or any(c.isalpha() for c in token)):
            return noun
        if token.isdigit() and len(token) >= 3 and (self.index.users.numeric or self.index.items.numeric):
            return "id"  # "recommend something for 99999" where ids are numbers
        if any(c.isalpha() for c in token) and len(token) >= 3:
            shape = self.index.users.shape
            return "user" if shape and token.lower().startswith(shape[0]) else "id"
        return None

    def segments_in(self, text: str, lenient: bool = False) -> list[SegmentMention]:
        """Segment references in the order written: ids, ranks, names (``lenient``: weaker name matches too)."""
        return find_segment_mentions(text, self.index.segments, lenient=lenient)

    def title_in(self, text: str, blocked: Sequence[tuple[int, int]] = ()) -> tuple[tuple[str, ...], tuple[int, int]] | None:
        """(item ids, character span) of the title a text names, skipping character spans in ``blocked``."""
        words, spans = [], []
        lowered = text.lower().replace("&", " ").replace("'", "")
        for m in WORD.finditer(lowered):
            words.append(m.group(0))
            spans.append((m.start(), m.end()))
        mask = [any(s < e2 and e > s2 for s2, e2 in blocked) for s, e in spans]
        hit = self.index.titles.find(words, mask)
        if hit is None:
            return None
        return hit.item_ids, (spans[hit.start][0], spans[hit.end - 1][1])

    # -- the questions to ask back ------------------------------------------------------------
    def unknown_id(self, kind: str, mention: str) -> Unresolved:
        ids = self.index.users if kind == "user" else self.index.items
        close = ids.closest(mention)
        if kind == "item" and len(self.index.titles):
            close = close[:2] + [self.index.titles.item_ids[r] for r in self.index.titles.closest(mention, 1)]
        named = [self.label(kind, c) for c in close]
        ask = f" Did you mean {_or_list(named)}?" if named else ""
        return Unresolved(kind, mention, close, f"There is no {kind} {_quote(mention)} in this workspace.{ask}")

    def unknown_title(self, mention: str) -> Unresolved:
        rows = self.index.titles.closest(mention)
        ids = [self.index.titles.item_ids[r] for r in rows]
        named = [self.label("item", i) for i in ids]
        ask = f" The closest titles are {_or_list(named)}." if named else ""
        return Unresolved("item", mention, ids, f"No item is called {_quote(mention)}.{ask} Which one do you mean?")

    def ambiguous_title(self, mention: str, ids: Sequence[str]) -> Unresolved:
        named = [self.label("item", i) for i in ids[:6]]
        more = f" (and {len(ids) - 6} more)" if len(ids) > 6 else ""
        return Unresolved("item", mention, ids, f"{_quote(mention)} matches {len(ids)} items: {_or_list(named)}{more}. Which one do you mean?")

    def label(self, kind: str, entity_id: str) -> str:
        if kind == "item" and entity_id in self.index.title_of:
            return f"{entity_id} {_quote(self.index.title_of[entity_id])}"
        return entity_id


def words_of(text: str) -> list[str]:
    """Lower-case words as the title index sees them."""
    return [w for w in WORD.findall(text.lower()) if w not in STOP]


__all__ = ["IdMention", "Resolver", "SegmentInfo", "SegmentMention", "Unresolved", "WorkspaceIndex", "title_words", "words_of"]
