"""What a conversation is about: the entities of its last turns, so follow-ups can refer to them.

"and segment 3?", "why?", "compare it with the smallest", "what about that user?",
"more": each is read against a :class:`Focus`, the last call and the users, items and
segments the last turns named or showed. A Focus is plain data (JSON in the
conversation log), so `segscope ask --continue` picks up where the last `ask` left off.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

KEEP = 8  # entities remembered per kind


def _push(seq: tuple, *values) -> tuple:
    out = list(seq)
    for v in values:
        if v is None:
            continue
        if v in out:
            out.remove(v)
        out.insert(0, v)
    return tuple(out[:KEEP])


@dataclass(frozen=True)
class Focus:
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    users: tuple[str, ...] = ()  # most recent first
    items: tuple[str, ...] = ()
    segments: tuple[int, ...] = ()
    results: tuple[str, ...] = ()  # users the last ranking or search showed, in order
    listed: tuple[int, ...] = ()  # segments the last list showed, in order

    def after(self, tool: str, args: dict[str, Any], artifact: dict | None = None) -> Focus:
        """The focus once ``tool`` ran with ``args`` (and returned ``artifact``, when it ran)."""
        art = artifact or {}
        users, items, segments = self.users, self.items, self.segments
        results, listed = self.results, self.listed
        if tool == "help":
            return self
        users = _push(users, *(str(u) for u in (args.get("user_id"), art.get("user_id")) if u is not None))
        items = _push(items, args.get("item_id") and str(args["item_id"]))
        seg_args = [args.get(k) for k in ("segment_id", "segment_a", "segment_b") if isinstance(args.get(k), int)]
        segments = _push(segments, *reversed(seg_args)) if seg_args else segments
        if tool == "compare_segments" and len(seg_args) == 2:
            segments = _push(self.segments, seg_args[1], seg_args[0])  # "it" after "compare 1 and 4" is 1
        if isinstance(art.get("segment_id"), int) and tool == "explain_user_segment":
            segments = _push(segments, art["segment_id"])
        if tool in ("rank_users", "find_users"):
            found = art.get("users") or []
            results = tuple(str(u["user_id"]) for u in found if isinstance(u, dict) and "user_id" in u)
        if tool == "list_segments":
            listed = tuple(int(s["id"]) for s in art.get("segments", []) if isinstance(s, dict) and "id" in s)
        return Focus(tool, dict(args), users, items, segments, results, listed)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str | None) -> Focus:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(raw.get("tool"), dict(raw.get("args") or {}), tuple(raw.get("users") or ()), tuple(raw.get("items") or ()),
                       tuple(int(s) for s in raw.get("segments") or ()), tuple(raw.get("results") or ()), tuple(int(s) for s in raw.get("listed") or ()))
        except (ValueError, TypeError, AttributeError):
            return cls()  # a damaged entry is a fresh start, not a crash


_FILLER = re.compile(r"^(?:(?:and|also|ok(?:ay)?|so|now|then|but|well|great|thanks|thank you|please|hmm|hi|hello|hey|cool)[,!.]?\s+)+", re.I)
_ABOUT = re.compile(r"^(?:what|how)\s+about\s+|^(?:(?:and|do|same|the same|same thing|do the same)\s+(?:for|with|in|on|among)\s+)|^(?:same|same thing|the same)\s+(?:for|with)\s+|^(?:for|in|among|with|on)\s+", re.I)
WHY = re.compile(r"^(?:(?:tell me|say|explain|show me|give me|and)\s+)*(?:why|the reasons?|reasons|the reasoning|how come)\b[\s?!.]*(?:not\b.*)?$|"
                 r"^(?:explain|justify)(?:\s+(?:them|it|those|these|that|each(?: one)?|each of them|the recommendations?|why))?[\s?!.]*$|"
                 r"^(?:with|give)\s+(?:me\s+)?(?:the\s+)?reasons[\s?!.]*$", re.I)
MORE = re.compile(r"^(?:show\s+|give\s+me\s+|list\s+)?(?:(?:some|a few|\d+)\s+)?more(?:\s+(?:please|of them|results|users|items|recommendations|of those))?[\s?!.]*$|^next(?:\s+page)?[\s?!.]*$|^keep going[\s?!.]*$", re.I)
NARROW = re.compile(r"^(?:only|just|but only|limit (?:it |that )?to|restrict (?:it |that )?to|filter (?:it |that )?(?:to|by)|narrow (?:it |that )?(?:down )?to)\s+", re.I)


def strip_filler(clause: str) -> str:
    return _FILLER.sub("", clause.strip()).strip()


def elliptical_body(clause: str) -> str | None:
    """The entity part of "and segment 3?", "what about u01235?", "same for u02223"; None when the clause is a full request."""
    text = strip_filler(clause)
    stripped = _ABOUT.sub("", text, count=1)
    if stripped != text or clause.strip().lower().startswith(("and ", "also ", "then ")):
        return stripped.strip(" ?!.")
    return None


def bumped(tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """``args`` asking for twice as many results ("more"); None when the tool has no count."""
    if tool == "recommend_items":
        return {**args, "k": min(50, 2 * int(args.get("k", 10)))}
    if tool in ("rank_users", "find_users", "find_items"):
        return {**args, "n": min(50 if tool != "rank_users" else 200, 2 * int(args.get("n", 10)))}
    return None


def with_why(focus: Focus) -> tuple[str, dict[str, Any]] | None:
    """What "why?" asks after the last call: explanations for recommendations, a user's segment after a ranking."""
    if focus.tool == "recommend_items":
        return "recommend_items", {**focus.args, "explain": True}
    if focus.tool in ("explain_recommendation", "explain_user_segment"):
        return focus.tool, dict(focus.args)
    if focus.tool in ("rank_users", "find_users") and focus.results:
        return "explain_user_segment", {"user_id": focus.results[0]}
    return None


def replace_args(focus: Focus, **changes: Any) -> Focus:
    return replace(focus, args={**focus.args, **changes})
