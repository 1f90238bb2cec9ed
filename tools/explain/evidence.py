"""Why an item is recommended to a user: evidence, a plain-language phrasing, and a verifier.

The evidence for a (user, item) pair is computed from the data: the user's own
history items most similar to it, how many members of the user's segment
consumed it, the segment traits it matches, and how many people consumed it
together with the user's history items. The extractive writer phrases only
that evidence; the verifier checks that every item, number and trait a text
mentions is in the evidence, whoever wrote the text.

A popularity figure ("12 of the 544 people in your segment (2%) chose it") is quoted only
from MIN_POPULARITY_COUNT people and a share that rounds to at least 1%: "1 of the 544 (0%)"
says nothing a reader can use, so below that the evidence does not offer the figure, the
extractive text gives its other reasons, and the verifier rejects a text that quotes it.
Only segment traits that passed their test (tools/segment/significance.py) are matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from tools.core.errors import WorkspaceError
from tools.core.run_state import RunState
from tools.data.interactions import InteractionMatrix, interaction_pairs
from tools.data.items import split_categories
from tools.segment.significance import cited

N_SIMILAR = 3
MIN_POPULARITY_COUNT = 5  # people in the segment who chose the item before the figure is quoted...
MIN_POPULARITY_PCT = 1  # ...and its share, as printed (whole percent), at least this
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?%?")


@dataclass(frozen=True)
class HistoryMatch:
    item_id: str
    title: str
    similarity: float  # cosine between item texts, rounded to 2 places
    co_count: int  # users who consumed both this history item and the recommended item


@dataclass(frozen=True)
class Evidence:
    user_id: str
    item_id: str
    item_title: str
    item_categories: tuple[str, ...]
    segment_id: int
    segment_name: str | None
    segment_size: int
    segment_item_count: int  # members of the user's segment who consumed the item
    similar_history: tuple[HistoryMatch, ...]
    matched_traits: tuple[str, ...]  # segment trait labels this item fits

    @property
    def segment_item_pct(self) -> str:
        return f"{100 * self.segment_item_count / max(self.segment_size, 1):.0f}%"

    @property
    def popularity_quotable(self) -> bool:
        """True when the segment's count for the item is large enough to quote (see the module docstring)."""
        return self.segment_item_count >= MIN_POPULARITY_COUNT and int(self.segment_item_pct.rstrip("%")) >= MIN_POPULARITY_PCT

    def allowed_numbers(self) -> set[str]:
        """Every number the evidence states, in the forms a text may write it."""
        nums = {str(self.segment_size), str(self.segment_id)}
        if self.popularity_quotable:
            nums |= {str(self.segment_item_count), self.segment_item_pct}
        for match in self.similar_history:
            nums.add(str(match.co_count))
            nums.add(f"{match.similarity:.2f}")
        return {_norm_number(n) for n in nums}

    def allowed_titles(self) -> set[str]:
        return {self.item_title, *(m.title for m in self.similar_history)}

    def as_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "item": {"id": self.item_id, "title": self.item_title, "categories": list(self.item_categories)},
            "segment": {"id": self.segment_id, "name": self.segment_name, "size": self.segment_size},
            **({"segment_members_who_consumed_item": self.segment_item_count,
                "segment_share_who_consumed_item": self.segment_item_pct} if self.popularity_quotable else
               {"segment_members_who_consumed_item": "too few to quote" if self.segment_item_count else "none"}),
            "similar_items_in_user_history": [
                {"id": m.item_id, "title": m.title, "similarity": f"{m.similarity:.2f}", "people_who_consumed_both": m.co_count}
                for m in self.similar_history
            ],
            "segment_traits_matched": list(self.matched_traits),
        }


@dataclass(frozen=True)
class Verification:
    ok: bool
    problems: tuple[str, ...] = field(default=())


def _norm_number(text: str) -> str:
    return text.replace(",", "").rstrip("%") + ("%" if text.endswith("%") else "")


class ExplanationContext:
    """Per-run lookups (who consumed what, titles, categories) built once, reused per explanation."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        data = run.data
        ev = data.events
        self.user_index = run.user_index
        self.users = run.user_ids
        items = data.items
        ids = pd.Index(pd.unique(ev["item_id"].dropna()))
        if items is not None:
            ids = ids.union(pd.Index(items["item_id"]), sort=False)
        self.item_ids = ids
        self.item_pos = {item: i for i, item in enumerate(ids)}
        self.ui = InteractionMatrix.from_pairs(interaction_pairs(ev), user_ids=run.user_ids, item_ids=ids.to_numpy()).csr
        self.iu = self.ui.T.tocsr()
        titles = pd.Series(ids.astype(str), index=ids)
        cats = pd.Series([()] * len(ids), index=ids, dtype=object)
        if items is not None:
            known = items.drop_duplicates("item_id").set_index("item_id")
            t = known["title"].dropna().astype(str)
            titles.loc[t.index] = t
            cat_lists = split_categories(known["category"])
            cats.loc[known.index] = [tuple(c) for c in cat_lists]
        self.titles = titles
        self.categories = cats
        self.vec_pos = {item: i for i, item in enumerate(run.item_ids.tolist())}

    @cached_property
    def all_categories(self) -> set[str]:
        return {c for cs in self.categories for c in cs}

    def title(self, item_id: str) -> str:
        return str(self.titles.get(item_id, item_id))

    def user_items(self, user_id: str) -> np.ndarray:
        row = self.run.row_of(user_id)
        return self.item_ids[self.ui.indices[self.ui.indptr[row] : self.ui.indptr[row + 1]]].to_numpy()

    def build_evidence(self, user_id: str, item_id: str, segment_name: str | None = None) -> Evidence:
        run = self.run
        row = run.row_of(user_id)
        if item_id not in self.item_pos:
            raise WorkspaceError(f"item {item_id!r} is not in this workspace's data", "check the id as written in your items or events file")
        col = self.item_pos[item_id]
        seg = int(run.labels[row])
        members = run.labels == seg
        consumers = self.iu.indices[self.iu.indptr[col] : self.iu.indptr[col + 1]]
        seg_count = int(members[consumers].sum())

        history = self.user_items(user_id)
        similar: list[HistoryMatch] = []
        target_vec = self.vec_pos.get(item_id)
        if target_vec is not None and len(history):
            hist_vec = [(h, self.vec_pos[h]) for h in history if h in self.vec_pos and h != item_id]
            if hist_vec:
                mat = run.item_vectors[[p for _, p in hist_vec]]
                sims = mat @ run.item_vectors[target_vec]
                order = np.argsort(-sims, kind="stable")[:N_SIMILAR]
                consumer_set = set(consumers.tolist())
                for j in order:
                    h = hist_vec[j][0]
                    hcol = self.item_pos[h]
                    h_consumers = self.iu.indices[self.iu.indptr[hcol] : self.iu.indptr[hcol + 1]]
                    co = len(consumer_set.intersection(h_consumers.tolist()))
                    similar.append(HistoryMatch(h, self.title(h), round(float(sims[j]), 2), co))

        cats = tuple(self.categories.get(item_id, ()))
        matched = []
        for trait in cited(run.segment(seg).get("traits")):
            feature = trait["feature"]
            if trait["effect"] > 0 and feature.startswith("category_") and feature[len("category_") :] in cats:
                matched.append(trait["label"])
        return Evidence(
            user_id=str(user_id),
            item_id=str(item_id),
            item_title=self.title(item_id),
            item_categories=cats,
            segment_id=seg,
            segment_name=segment_name or run.segment(seg).get("name"),
            segment_size=int(members.sum()),
            segment_item_count=seg_count,
            similar_history=tuple(similar),
            matched_traits=tuple(matched),
        )


def phrase_extractive(ev: Evidence) -> str:
    """A plain-language explanation that states only the evidence (a popularity figure only when quotable)."""
    parts = []
    liked = [m for m in ev.similar_history if m.similarity >= 0.3][:2]
    if liked:
        titles = " and ".join(f"“{m.title}”" for m in liked)
        parts.append(f"It is similar to {titles}, which you already chose")
    who = f"“{ev.segment_name}”" if ev.segment_name else f"#{ev.segment_id}"
    if ev.popularity_quotable:
        parts.append(f"{ev.segment_item_count} of the {ev.segment_size} people in your segment {who} ({ev.segment_item_pct}) chose it")
    best_co = max(ev.similar_history, key=lambda m: m.co_count, default=None)
    if best_co is not None and best_co.co_count >= 2:
        parts.append(f"{best_co.co_count} people who chose “{best_co.title}” also chose it")
    if ev.matched_traits:
        parts.append(f"it fits what defines your segment ({ev.matched_traits[0]})")
    if not parts:
        if ev.segment_item_count:  # chosen in the segment, but by too few to quote a figure
            few = ("only a few people in your segment " + who + " have" if ev.segment_item_count < MIN_POPULARITY_COUNT
                   else "only a small share of your segment " + who + " has")
            return f"We recommend “{ev.item_title}”: it scores high for activity like yours, though {few} chosen it so far."
        return f"“{ev.item_title}” is popular with people whose activity resembles yours."
    text = "; ".join(parts)
    return f"We recommend “{ev.item_title}”: {text[0].lower() + text[1:]}."


def verify_explanation(text: str, ev: Evidence, ctx: ExplanationContext) -> Verification:
    """Every item, number and trait in ``text`` must be in ``ev``."""
    problems = []
    allowed_numbers = ev.allowed_numbers()
    stripped = text
    # Titles may contain digits ("Toy Story (1995)"); numbers inside allowed titles are not claims.
    for title in sorted(ev.allowed_titles(), key=len, reverse=True):
        stripped = stripped.replace(title, " ")
    if ev.segment_name:
        stripped = stripped.replace(ev.segment_name, " ")
    for raw in _NUMBER.findall(stripped):
        if _norm_number(raw) not in allowed_numbers:
            problems.append(f"number {raw} is not in the evidence")
    if not ev.popularity_quotable and ev.segment_item_count:
        # The count may coincide with another allowed number (a segment id, a co-count): its popularity form may not.
        said = rf"\b{ev.segment_item_count}\s+(?:of|out of)\s+(?:the\s+)?{ev.segment_size}\b"
        if re.search(said, stripped) or re.search(rf"(?<![\d.]){re.escape(ev.segment_item_pct)}", stripped):
            problems.append(f"popularity figure {ev.segment_item_count} of {ev.segment_size} is below the minimum to quote "
                            f"({MIN_POPULARITY_COUNT} people and {MIN_POPULARITY_PCT}%)")
    allowed_titles = ev.allowed_titles()
    # Searched with the evidence's own titles taken out: "9 (2009)" inside "District 9 (2009)" is no claim.
    for title in _mentioned_titles(stripped.lower(), ctx):
        if title not in allowed_titles:
            problems.append(f"item “{title}” is not in the evidence")
    for quoted in re.findall(r"[“\"]([^”\"]{3,})[”\"]", text):
        if quoted not in allowed_titles and quoted != ev.segment_name:
            problems.append(f"“{quoted}” is not an item or segment in the evidence")
    # Ids with letters and digits ("B00X4WHP5E", "i00123"); purely numeric ids are numbers, checked above.
    for item in re.findall(r"\b(?=\w*[A-Za-z])(?=\w*\d)\w{3,}\b", stripped):
        if item in ctx.item_pos and item not in {ev.item_id, *(m.item_id for m in ev.similar_history)}:
            problems.append(f"item id {item} is not in the evidence")
    allowed_cats = {c.lower() for c in ev.item_categories} | {t.lower() for t in ev.matched_traits}
    # Category words inside the evidence's own titles or segment name are not claims.
    claims = stripped.lower()
    for cat in ctx.all_categories:
        if len(cat) >= 4 and re.search(rf"\b{re.escape(cat.lower())}\b", claims) and not any(cat.lower() in a for a in allowed_cats):
            problems.append(f"trait or category “{cat}” is not in the evidence")
    return Verification(ok=not problems, problems=tuple(dict.fromkeys(problems)))


def _mentioned_titles(lowered: str, ctx: ExplanationContext) -> list[str]:
    """Catalogue titles (of at least 8 characters, to avoid common words) that appear in the text."""
    titles = ctx.titles
    found = []
    for title in titles.to_numpy():
        t = str(title)
        if len(t) >= 8 and t.lower() in lowered:
            found.append(t)
    return found
