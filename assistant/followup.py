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
    shown_items: tuple[str, ...] = ()  # items the last recommendation showed, in order

    def after(self, tool: str, args: dict[str, Any], artifact: dict | None = None) -> Focus:
        """The focus once ``tool`` ran with ``args`` (and returned ``artifact``, when it ran)."""
        art = artifact or {}
        users, items, segments = self.users, self.items, self.segments
        results, listed, shown = self.results, self.listed, self.shown_items
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
            # "the third one" counts the list's segments; their sub-segments are indented under them and are
            # reached by id or name (as ranks are: tools/explain/segment_refs.py).
            shown_segs = [s for s in art.get("segments", []) if isinstance(s, dict) and "id" in s]
            listed = tuple(int(s["id"]) for s in shown_segs if s.get("parent") is None) or tuple(int(s["id"]) for s in shown_segs)
        if tool == "recommend_items" and art.get("items"):
            shown = tuple(str(i["item_id"]) for i in art["items"] if isinstance(i, dict) and "item_id" in i)
        return Focus(tool, dict(args), users, items, segments, results, listed, shown)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str | None) -> Focus:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(raw.get("tool"), dict(raw.get("args") or {}), tuple(raw.get("users") or ()), tuple(raw.get("items") or ()),
                       tuple(int(s) for s in raw.get("segments") or ()), tuple(raw.get("results") or ()), tuple(int(s) for s in raw.get("listed") or ()),
                       tuple(raw.get("shown_items") or ()))
        except (ValueError, TypeError, AttributeError):
            return cls()  # a damaged entry is a fresh start, not a crash


_FILLER = re.compile(r"^(?:(?:and|also|ok(?:ay)?|so|now|then|but|well|great|thanks|thank you|please|pls|plz|hmm|hi|hello|hey|cool)[,!.]?\s+)+", re.I)
# Courtesy typed after a request ("explain pls", "list the segments, thanks!"): never part of what is asked.
_COURTESY = re.compile(r"(?:[\s,;:-]+(?:pls|plz|please|thanks|thank you|thanx|thx|ty|cheers|asap|kthx))+(?=[\s!.?]*$)", re.I)
_ABOUT = re.compile(r"^(?:what|how)\s+about\s+|^(?:(?:and|do|same|the same|same thing|do the same)\s+(?:for|with|in|on|among)\s+)|^(?:same|same thing|the same)\s+(?:for|with)\s+|^(?:for|in|among|with|on)\s+", re.I)
WHY = re.compile(r"^(?:(?:tell me|say|explain|show me|give me|and)\s+)*(?:why|the reasons?|reasons|the reasoning|how come)\b[\s?!.]*(?:not\b.*)?$|"
                 r"^(?:explain|justify)(?:\s+(?:them|it|those|these|that|each(?: one)?|each of them|the recommendations?|why))?[\s?!.]*$|"
                 r"^(?:with|give)\s+(?:me\s+)?(?:the\s+)?reasons[\s?!.]*$", re.I)
_WHY_LEAD = re.compile(r"^(?:(?:and|so|tell me|say|explain|show me|give me|ok)\s+)*(?:why|how come)\b", re.I)
# What may follow "why" and still only point back at the last answer: "why it fits", "why they'd like them", "why these picks".
_WHY_BACK = frozenset(
    "it its it's they they'd they'll them these those that this he she him her their would will might could should do does did you we "
    "like likes liked love fit fits suit suits work works worked make makes sense is are was were so good great right well chosen picked "
    "pick picks item items one ones recommendation recommendations recs rec product products suggestion suggestions match matches for the a "
    "user customer person them them? be been there here ones would've got get gets".split()
)
MORE = re.compile(r"^(?:show\s+|give\s+me\s+|list\s+)?(?:(?:some|a few|\d+)\s+)?more(?:\s+(?:please|of them|results|users|items|recommendations|of those))?[\s?!.]*$|^next(?:\s+page)?[\s?!.]*$|^keep going[\s?!.]*$", re.I)
COUNT_ONLY = re.compile(r"^(?:(?:just|only|show|give me|list)\s+)?(?:the\s+)?(?:top|first)?\s*(\d+)(?:\s+(?:only|please|of them|results|users|items|customers))?[\s.!?]*$|"
                        r"^(?:the\s+)?top\s+(\d+)\s+only[\s.!?]*$", re.I)
NARROW = re.compile(r"^(?:only|just|but only|limit (?:it |that )?to|restrict (?:it |that )?to|filter (?:it |that )?(?:to|by)|narrow (?:it |that )?(?:down )?to)\s+", re.I)


def strip_filler(clause: str) -> str:
    return _FILLER.sub("", clause.strip()).strip()


def why_back(clause: str) -> bool:
    """ "tell me why it fits", "why would they like them": a why that names nothing new, so it asks about the last answer."""
    lead = _WHY_LEAD.match(clause.strip())
    if lead is None:
        return False
    rest = re.findall(r"[a-z']+|\S", clause.strip()[lead.end():].lower().replace("’", "'"))
    return all(w in _WHY_BACK or not w[0].isalnum() for w in rest)


def strip_courtesy(clause: str) -> str:
    """``clause`` without the "pls", "thanks!" or "asap" typed after it (its closing punctuation kept)."""
    out = _COURTESY.sub("", clause.strip()).strip()
    return out if out.strip(" ?!.,") else clause.strip()


def elliptical_body(clause: str) -> str | None:
    """The entity part of "and segment 3?", "what about u01235?", "same for u02223", "now 3 and 4"; None when the clause is a full request."""
    text = strip_filler(clause)
    stripped = _ABOUT.sub("", text, count=1)
    if stripped != text or text != clause.strip() or clause.strip().lower().startswith(("and ", "also ", "then ")):
        return stripped.strip(" ?!.")
    return None


def with_count(tool: str, args: dict[str, Any], n: int) -> dict[str, Any] | None:
    """``args`` asking for ``n`` results ("top 3 only"); None when the tool has no count."""
    if tool == "recommend_items":
        return {**args, "k": max(1, min(50, n))}
    if tool in ("rank_users", "find_users", "find_items"):
        return {**args, "n": max(1, min(200 if tool == "rank_users" else 50, n))}
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


_PICK = re.compile(r"^(?:why|explain|justify|how come)\b.*?\b(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|top|#?\d{1,2})"
                   r"(?:st|nd|rd|th)?(?:\s+(?:one|item|recommendation|pick|product|suggestion))?\b", re.I)
_POSITIONS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split())}


_PICK_AGAIN = re.compile(r"^(?:and|what about|how about)?\s*(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|#?\d{1,2})"
                         r"(?:st|nd|rd|th)?(?:\s+(?:one|item|recommendation|pick|product|suggestion))?[\s?!.]*$", re.I)


def picked_item(clause: str, focus: Focus) -> tuple[str, dict[str, Any]] | None:
    """ "explain the first one", "why the third?" after a recommendation (and "and the third?" after such an explanation): that item, explained."""
    if focus.tool not in ("recommend_items", "explain_recommendation") or not focus.shown_items or "user_id" not in focus.args:
        return None
    m = _PICK.match(clause.strip()) if focus.tool == "recommend_items" else None
    m = m or (_PICK_AGAIN.match(clause.strip()) if focus.tool == "explain_recommendation" or clause.lower().startswith(("and", "what about")) else None)
    if m is None:
        return None
    word = m.group(1).lower().lstrip("#")
    position = 0 if word == "top" else len(focus.shown_items) - 1 if word == "last" else _POSITIONS.get(word, int(word) - 1 if word.isdigit() else -1)
    if not 0 <= position < len(focus.shown_items):
        return None
    return "explain_recommendation", {"user_id": focus.args["user_id"], "item_id": focus.shown_items[position]}


def replace_args(focus: Focus, **changes: Any) -> Focus:
    return replace(focus, args={**focus.args, **changes})
