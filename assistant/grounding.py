"""Is an agent's answer grounded? Every number, id and segment it names must come from this turn or the workspace.

The agent's final answer is checked like explanations are: each number must be
one a tool result of this turn, the user's request or the workspace states
(rounding allowed: 17.1% may be said 17%); each segment id must exist; each
quoted name and each capitalised name before "segment" must be in a tool result,
the request or the workspace; each id-like token (u00042, B00X4WHP5E, 17850)
must be a user or item of the workspace or be said by a tool.

``imitation`` recognises a model that writes tool calls or tool output as text
instead of calling tools (the 270M Gemma does: "user u01701 (segment 2,
similarity 0.263)" again and again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from tools.explain.wording import fmt_compact

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_LIST_MARKER = re.compile(r"^(\s*(?:[-*]\s+)?)\d+[.)](?=\s)", re.M)
_ID_LIKE = re.compile(r"(?<![\w-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z0-9][\w-]{2,}(?![\w-])")
_TOKEN = re.compile(r"[\w-]+")
_NOT_AN_ID = re.compile(r"^\d+(?:st|nd|rd|th|s|x|k|m|h|d|px|kb|mb|gb|pm|am)$", re.I)
_ID_CONTEXT = re.compile(r"\b(?:users?|items?|customers?|movies?|products?|households?|sessions?|ids?)\s*(?:id\s*)?[#:]?\s*$|#\s*$", re.I)
_SEGMENT_REF = re.compile(r"\b(?:segment|cluster|group)s?\s+(?:#|no\.?\s*|number\s+)?(\d+)(?![\d%]|[.,]\d)", re.I)  # not "segment 44%"
_QUOTED = re.compile(r"[“\"]([^”\"\n]{3,80})[”\"]")
_NAMED_SEGMENT = re.compile(r"((?:[A-Z][\w&'’-]*\s+(?:(?:&|and|of|the)\s+)?){1,6})(?:segment|cluster|group)s?\b")
_LEADING_WORDS = {
    "the", "this", "that", "these", "those", "each", "every", "a", "an", "which", "what", "your", "our", "its", "their",
    "biggest", "largest", "smallest", "second", "third", "first", "last", "next", "one", "two", "three", "same", "other",
    "another", "overall", "whole", "entire", "current", "new", "top", "bottom", "in", "on", "for", "from", "of", "to",
    "with", "by", "at", "and", "or", "but", "so", "because", "compare", "describe", "every", "any", "no", "my",
}


def norm_number(raw: str) -> str:
    n = raw.replace(",", "").rstrip(".")
    if "." in n:
        n = n.rstrip("0").rstrip(".")
    return n or "0"


def numbers_in(text: str) -> set[str]:
    """The numbers of a text, normalised, with the roundings a writer may use (17.14 → 17.1, 17)."""
    out: set[str] = set()
    for raw in _NUMBER.findall(text):
        n = norm_number(raw)
        out.add(n)
        if "." in n:
            whole, frac = n.split(".")
            value = float(n)
            for places in range(len(frac)):
                out.add(norm_number(f"{value:.{places}f}"))
    return out


_PERCENT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.I)
_FRACTION = re.compile(r"(?<![\w.])0?\.\d+(?![\d.])")  # a share strictly between 0 and 1 (0.431); 0 and 1 say too little


def percents_in(text: str, shares: bool = True) -> set[str]:
    """The percentages a text states: numbers written with %, and (``shares``) its shares (0..1) as
    percentages, with roundings. "100% of them buy toys" is grounded by a share or a percentage,
    never by the count 100 in "more than 100 events"."""
    out: set[str] = set()
    for raw in _PERCENT.findall(text):
        out |= numbers_in(raw)
    for raw in _FRACTION.findall(text) if shares else ():
        out |= numbers_in(f"{100 * float(raw):.4f}")
    return out


def workspace_percents(summary: dict) -> set[str]:
    """The workspace's shares as percentages: each segment's share of users and its share-valued traits
    (the raw segments.json holds p-values and statistics too, which are no percentage of anything)."""
    out: set[str] = set()
    for seg in summary.get("segments", []):
        values = [seg.get("share")]
        for t in [*seg.get("traits", []), *seg.get("profile", [])]:
            if t.get("unit") == "share":
                values += [t.get("segment_value"), t.get("population_value")]
        for v in values:
            if isinstance(v, (int, float)) and 0 <= v <= 1:
                out |= numbers_in(f"{100 * float(v):.4f}")
    return out


def workspace_text(summary: dict) -> str:
    """The facts of segments.json as the tools write them (sizes, shares, trait values, lifts), plus its raw values."""
    data = summary.get("data", {})
    lines = [f"{summary.get('k', '')} segments of {data.get('n_users', '')} users, {data.get('n_items', '')} items, {data.get('n_events', '')} events"]
    for seg in summary.get("segments", []):
        lines.append(f"segment {seg['id']} “{seg.get('name', '')}”: {seg['size']} users ({100 * seg['share']:.1f}%). {seg.get('description', '')}")
        for t in seg.get("traits", []):
            lift = "" if t.get("lift") is None else f", {t['lift']:.1f}× overall"
            lines.append(f"{t['label']}: {fmt_compact(t['segment_value'], t['unit'])} vs {fmt_compact(t['population_value'], t['unit'])}{lift}")
        lines.append(", ".join(str(k) for k in seg.get("keywords", [])))
    return "\n".join(lines) + "\n" + json.dumps(summary, ensure_ascii=False, default=str)


class Grounding:
    """What an answer of this turn may state: grows with each tool result."""

    def __init__(self, prompt: str, summary: dict | None, known_id: Callable[[str], bool] = lambda _id: False,
                 known_title: Callable[[str], bool] = lambda _title: False) -> None:
        self.summary = summary or {}
        self._known_id = known_id
        self._known_title = known_title  # an item title of the workspace's catalogue
        self._texts: list[str] = [prompt, workspace_text(self.summary) if summary else ""]
        self._numbers = set().union(*(numbers_in(t) for t in self._texts))
        self._percents = percents_in(prompt) | percents_in(self._texts[1], shares=False) | workspace_percents(self.summary)
        self._lower = "\n".join(self._texts).lower()
        self._tokens = set(_TOKEN.findall(self._lower))
        self.segment_ids = {int(s["id"]) for s in self.summary.get("segments", [])}
        self.tool_results: list[str] = []

    def add_tool_result(self, text: str, ok: bool = True) -> None:
        """A tool's result; a failed call's error may be cited ("segment 99 does not exist") but is not shown as the answer."""
        if ok:
            self.tool_results.append(text)
        self._texts.append(text)
        self._numbers |= numbers_in(text)
        self._percents |= percents_in(text)
        self._lower += "\n" + text.lower()
        self._tokens |= set(_TOKEN.findall(text.lower()))

    def said(self, phrase: str) -> bool:
        return phrase.strip().lower() in self._lower

    def problems(self, text: str) -> list[str]:
        """What ``text`` states that nothing of this turn or the workspace supports (empty: grounded)."""
        found: list[str] = []
        claims = _LIST_MARKER.sub(r"\1", text)
        for quoted in _QUOTED.findall(claims):
            if not self.said(quoted) and not self._known_title(quoted):
                found.append(f"“{quoted}” is not in the tool results or the workspace")
            claims = claims.replace(quoted, " ")  # numbers inside a supported title are not claims
        for match in _NAMED_SEGMENT.finditer(claims):
            words = match.group(1).split()
            while words and words[0].lower() in _LEADING_WORDS:
                words.pop(0)
            name = " ".join(words)
            if name and any(w[0].isupper() for w in words) and not self.said(name):
                found.append(f"segment “{name}” does not exist")
        if self.segment_ids:
            for match in _SEGMENT_REF.finditer(claims):
                sid = match.group(1)
                said_as_id = re.search(rf"\bsegment {sid}(?![\d%]|[.,]\d)", self._lower)
                if int(sid) not in self.segment_ids and not said_as_id:
                    found.append(f"segment {sid} does not exist (ids are 0–{max(self.segment_ids)})")
        for token in _ID_LIKE.findall(claims):
            if not _NOT_AN_ID.match(token) and token.lower() not in self._tokens and not self._known_id(token):
                found.append(f"id {token} is not in this workspace")
        for match in _NUMBER.finditer(claims):
            raw, n = match.group(0), norm_number(match.group(0))
            # A number is an id only where it is said as one ("user 42", "item #1197"): numeric ids
            # (MovieLens' 1..193609) would otherwise let almost any number pass.
            as_id = _ID_CONTEXT.search(claims[max(0, match.start() - 24) : match.start()])
            if _PERCENT.match(claims, match.start()):  # a percentage needs a percentage or a share behind it
                if n not in self._percents:
                    found.append(f"the percentage {raw.rstrip(',.')}% is not in the tool results or the workspace")
                continue
            if n not in self._numbers and not (as_id and self._known_id(raw.replace(",", ""))):
                found.append(f"the number {raw.rstrip(',.')} is not in the tool results or the workspace")
        return list(dict.fromkeys(found))

    def rendering(self) -> str:
        """The grounded answer: the tool results of this turn, as the router would show them."""
        return "\n\n".join(t.strip() for t in self.tool_results if t.strip())


# -- a model that writes tool calls or tool output instead of calling tools -----------
_OUTPUT_SHAPES = [
    re.compile(p, re.I | re.M)
    for p in (
        r"^\s*[-*]?\s*user \S+ \(segment \d+, similarity",
        r"similarity \d\.\d{2,}\)",
        r"^\s*\d[\d,]* (?:users|items) closest to",
        r"^\s*\d+ segments of [\d,]+ users",
        r"^\s*Top \d+ items for user",
        r"^\s*Segmented [\d,]+ users into",
        r"^\s*User \S+ is in segment \d+",
        r"</?data>",
        r"\bTool error:",
        r"<\|?tool_call|```tool|<function[=>]|\[TOOL_CALLS\]|<\|python_tag\|>",
    )
]
# Chat-template markup in an answer means the server formats the chat for another model family
# (llama-cpp-python falls back to llama-2's for Gemma): the model is continuing a transcript.
_CHAT_MARKUP = re.compile(
    r"<</?SYS>>|<SYS>>|\[/?INST\]|<\|im_(?:start|end)\|>|<(?:start|end)_of_turn>|<\|(?:user|assistant|system|eot_id)\|>"
    r"|^\s*</?(?:USER|ASSISTANT|SYSTEM)>\s*$|^\s*### (?:Instruction|Response):",
    re.M,
)


def imitation(text: str, tool_names: Iterable[str], after_tools: bool = False) -> str | None:
    """Why ``text`` looks like tool calls or tool output written as prose, or None.

    ``after_tools``: this turn has tool results, so text shaped like them may quote
    them (the grounding check decides); markup and written-out calls still count.
    """
    names = "|".join(re.escape(n) for n in tool_names)
    patterns = [] if after_tools else list(_OUTPUT_SHAPES)
    if names:
        patterns.append(re.compile(rf"\b(?:{names})\s*\(|[\"'](?:name|function|tool)[\"']\s*:\s*[\"'](?:{names})[\"']|[→✓✗]\s*(?:{names})\b"))
    markup = _CHAT_MARKUP.search(text)
    if markup:
        return f"wrote chat-template markup (“{markup.group(0).strip()[:30]}”): the server's chat format does not fit this model"
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            line = text[text.rfind("\n", 0, match.start()) + 1 :].split("\n", 1)[0].strip()
            return f"wrote tool output or a tool call as text (“{line[:70]}”) instead of calling a tool"
    return None
