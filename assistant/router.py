"""The deterministic router: slash commands and plain requests mapped to the same tools as the agent.

A plain request is matched to an intent by semantic similarity (the workspace's
sentence embedder) to example phrasings, nudged by a few telling words; the
arguments (ids, k, alpha, dates, format) are pulled out with patterns. When an
argument is missing or two intents are too close to call, it asks one short
question instead of guessing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EXAMPLES: dict[str, list[str]] = {
    "segment_users": [
        "split my customers into groups", "segment the users", "cluster my users into 5 segments",
        "group customers by behaviour", "find segments in my data", "re-run the segmentation with k=4",
        "divide users into clusters", "run segmentation with alpha 0.3", "create customer segments",
        "can you segment my audience", "make 6 groups of shoppers", "redo the clustering using hdbscan",
    ],
    "list_segments": [
        "list the segments", "show me the segments", "what segments do we have", "what groups are there",
        "give me an overview of the clusters", "how many segments are there", "show all groups with their sizes",
        "summarise the segments", "which customer groups exist",
    ],
    "describe_segment": [
        "what is special about the biggest segment", "describe segment 3", "tell me about cluster 2",
        "what defines group 1", "who are the people in segment 0", "details of the smallest segment",
        "what makes segment 4 different", "characterise the largest group", "explain segment 2 to me",
        "profile of cluster 5",
    ],
    "compare_segments": [
        "compare segment 1 and 4", "how does segment 2 differ from segment 3", "segment 0 vs segment 5",
        "what is the difference between group 1 and group 2", "contrast clusters 3 and 4",
        "compare the biggest and the smallest segment",
    ],
    "explain_user_segment": [
        "why is user 42 in their segment", "why was customer 17 put in this group", "which segment is user 5 in and why",
        "explain the segment of user u00001", "what group does user 12 belong to", "why does user 7 belong to segment 2",
    ],
    "find_users": [
        "find users who love gardening", "show me customers interested in electronics", "who buys running shoes",
        "find people who write long reviews about books", "users similar to tech enthusiasts in segment 2",
        "which customers like horror movies", "search for shoppers who bought baby products recently",
        "find big spenders who like fashion",
    ],
    "find_items": [
        "find items like wireless headphones", "search products about camping", "which movies are about space",
        "show me products similar to a yoga mat", "look for items matching kitchen knives", "find books about history",
    ],
    "recommend_items": [
        "recommend something for user 42", "what should we suggest to customer 17", "top 5 recommendations for user 3",
        "recommend items for user u00001 and tell me why", "what would user 12 like", "suggest products to user 8",
        "give user 99 some recommendations", "next best offer for customer 5",
    ],
    "explain_recommendation": [
        "why recommend item 1197 to user 42", "explain why user 5 should get product i00012",
        "why is movie 318 recommended for user 1", "justify recommending item 50 to user 3",
        "what is the evidence for recommending 260 to user 12",
    ],
    "write_report": [
        "write a report", "make a shareable report", "export the segments as html", "create a markdown report",
        "generate a report for segment 2", "produce a summary document of the segments", "save a report I can share",
    ],
    "load_data": [
        "what data is loaded", "summarise the data", "describe the dataset", "how many users and events are there",
        "load the file data/events.csv", "what is in my data",
    ],
    "help": ["help", "what can you do", "how do I use this", "list the commands", "what can I ask"],
}

SLASH = {
    "/segment": "segment_users", "/segments": "list_segments", "/describe": "describe_segment",
    "/compare": "compare_segments", "/why-user": "explain_user_segment", "/find": "find_users",
    "/find-items": "find_items", "/recommend": "recommend_items", "/explain": "explain_recommendation",
    "/report": "write_report", "/data": "load_data", "/help": "help",
}

KEYWORDS: dict[str, tuple[str, ...]] = {
    "segment_users": ("split", "cluster", "segment my", "segment the", "segmentation", "group my", "groups of", "into"),
    "compare_segments": ("compare", " vs ", "versus", "differ", "difference", "contrast"),
    "recommend_items": ("recommend", "suggest", "would like", "next best"),
    "explain_recommendation": ("why recommend", "why is item", "evidence for recommending", "justify"),
    "write_report": ("report", "export", "shareable", "document"),
    "find_users": ("find users", "find people", "find customers", "who buys", "which customers", "which users"),
    "find_items": ("find items", "find products", "search products", "similar to a", "which movies", "find books"),
    "explain_user_segment": ("belong", "which segment is user", "why is user", "why was user", "why was customer"),
}

MARGIN = 0.03  # two intents closer than this are ambiguous


@dataclass(frozen=True)
class Route:
    """A tool to call with arguments, or a question to ask back."""

    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)
    question: str | None = None
    score: float = 0.0


_USER = re.compile(r"\b(?:user|customer|client|shopper|visitor|person)\s*(?:id\s*)?#?\s*([A-Za-z0-9_.:-]*\d[A-Za-z0-9_.:-]*)", re.I)
_ITEM = re.compile(r"\b(?:item|product|movie|film|book|sku|article)\s*(?:id\s*)?#?\s*([A-Za-z0-9_.:-]*\d[A-Za-z0-9_.:-]*)", re.I)
_SEG = re.compile(r"\b(?:segment|group|cluster)s?\s*(?:#|no\.?|number)?\s*(\d+)", re.I)
_ALPHA = re.compile(r"(?:alpha|α)\s*(?:=|of|to|:)?\s*([01](?:\.\d+)?|\.\d+)", re.I)
_K = re.compile(r"(?:\bk\s*=\s*(\d+)|\binto\s+(\d+)\s|\b(\d+)\s+(?:segments|groups|clusters)\b|\btop\s+(\d+)\b|\b(\d+)\s+(?:recommendations|items|suggestions|products)\b)", re.I)
_DAYS = re.compile(r"(?:last|past|within)\s+(\d+)\s+days?", re.I)
_SPEND = re.compile(r"(?:spent|spend|spending)\s+(?:more than|over|at least|>)\s*\$?(\d+(?:\.\d+)?)", re.I)
_NUM = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def _words(text: str) -> str:
    return " " + " ".join(text.lower().split()) + " "


def extract_args(tool: str, text: str) -> dict[str, Any]:
    """Arguments for ``tool`` found in ``text`` (only those present)."""
    low = _words(text)
    args: dict[str, Any] = {}
    users = _USER.findall(text)
    items = _ITEM.findall(text)
    segs = [int(s) for s in _SEG.findall(text)]
    if re.search(r"\b(biggest|largest)\b", low):
        segs.append("biggest")  # type: ignore[arg-type]
    if re.search(r"\bsmallest\b", low):
        segs.append("smallest")  # type: ignore[arg-type]
    k_match = _K.search(text)
    k_value = next((int(g) for g in k_match.groups() if g), None) if k_match else None
    if tool == "segment_users":
        if k_value:
            args["k"] = k_value
        if (m := _ALPHA.search(text)):
            args["alpha"] = float(m.group(1))
        for algo in ("hdbscan", "agglomerative", "kmeans"):
            if algo in low.replace("k-means", "kmeans"):
                args["algorithm"] = algo
    elif tool in ("describe_segment",):
        if segs:
            args["segment_id"] = segs[0]
    elif tool == "compare_segments":
        if len(segs) < 2:
            nums = [int(n) for n in _NUM.findall(text)]
            segs = segs + [n for n in nums if n not in segs]
        if len(segs) >= 2:
            args["segment_a"], args["segment_b"] = segs[0], segs[1]
    elif tool in ("explain_user_segment", "recommend_items"):
        if users:
            args["user_id"] = users[0]
        if tool == "recommend_items":
            if k_value and k_value <= 50:
                args["k"] = k_value
            if re.search(r"\bwhy\b|\bexplain|\breason", low):
                args["explain"] = True
    elif tool == "explain_recommendation":
        if users:
            args["user_id"] = users[0]
        if items:
            args["item_id"] = items[0]
    elif tool in ("find_users", "find_items"):
        args["description"] = text.strip()
        if tool == "find_users":
            if segs and isinstance(segs[0], int):
                args["segment_id"] = segs[0]
            if (m := _DAYS.search(text)):
                args["active_within_days"] = float(m.group(1))
            elif re.search(r"\brecently\b|\brecent\b", low):
                args["active_within_days"] = 30.0
            if (m := _SPEND.search(text)):
                args["min_spend"] = float(m.group(1))
    elif tool == "write_report":
        if re.search(r"\bmarkdown\b|\bmd\b|\.md\b", low):
            args["fmt"] = "md"
        if segs and isinstance(segs[0], int):
            args["segment_id"] = segs[0]
    elif tool == "load_data":
        path = re.search(r"(\S+\.(?:csv|tsv|parquet|jsonl|json|gz))\b", text)
        if path:
            args["path"] = path.group(1)
    return args


REQUIRED = {
    "describe_segment": ("segment_id", "Which segment? Give its id (0 is the biggest), e.g. “describe segment 2”."),
    "compare_segments": ("segment_b", "Which two segments? e.g. “compare 1 and 4”."),
    "explain_user_segment": ("user_id", "Which user? e.g. “why is user 42 in their segment”."),
    "recommend_items": ("user_id", "For which user? e.g. “recommend something for user 42”."),
    "explain_recommendation": ("item_id", "Which user and item? e.g. “/explain 42 1197”."),
}


def parse_slash(text: str) -> Route:
    """`/describe 3`, `/compare 1 4`, `/recommend 42 --k 5`, `/explain 42 1197`, `/find gardening`, `/segment k=5`."""
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    command, rest = parts[0].lower(), parts[1:]
    tool = SLASH.get(command)
    if tool is None:
        return Route(None, question=f"Unknown command {command}. Try /help.")
    joined = " ".join(rest)
    args: dict[str, Any] = {}
    if tool == "describe_segment" and rest:
        args["segment_id"] = int(rest[0]) if rest[0].isdigit() else rest[0]
    elif tool == "compare_segments" and len(rest) >= 2:
        args["segment_a"], args["segment_b"] = (int(r) if r.isdigit() else r for r in rest[:2])
    elif tool in ("explain_user_segment", "recommend_items") and rest:
        args["user_id"] = rest[0]
        if tool == "recommend_items":
            k = re.search(r"(?:--k\s+|k=)(\d+)", joined)
            if k:
                args["k"] = int(k.group(1))
            if "--explain" in rest or "why" in rest:
                args["explain"] = True
    elif tool == "explain_recommendation" and len(rest) >= 2:
        args["user_id"], args["item_id"] = rest[0], rest[1]
    elif tool in ("find_users", "find_items") and rest:
        args = extract_args(tool, joined)
    elif tool in ("segment_users", "write_report", "load_data"):
        data = re.search(r"--data[= ](\S+)", joined)
        if data:  # `/segment --data PATH k=5`: another dataset into this workspace
            joined = joined.replace(data.group(0), " ")
        args = extract_args(tool, joined)
        if data and tool != "write_report":
            args["data_path" if tool == "segment_users" else "path"] = data.group(1)
    return _check_required(Route(tool, args, score=1.0))


def _check_required(route: Route) -> Route:
    need = REQUIRED.get(route.tool or "")
    if need and need[0] not in route.args:
        if route.tool == "explain_recommendation" and "user_id" in route.args and "item_id" not in route.args:
            return Route(None, question="Which item? e.g. “why recommend item 1197 to user 42”.")
        return Route(None, question=need[1])
    if route.tool in ("find_users", "find_items") and not route.args.get("description"):
        return Route(None, question="What should I look for? e.g. “/find users who love gardening”.")
    return route


class Router:
    """Maps a request to a Route; ``embed`` turns texts into L2-normalised vectors."""

    def __init__(self, embed) -> None:
        self.embed = embed
        self._intents: list[str] = []
        self._matrix: np.ndarray | None = None

    def _bank(self) -> np.ndarray:
        if self._matrix is None:
            texts = []
            for intent, examples in EXAMPLES.items():
                texts += examples
                self._intents += [intent] * len(examples)
            self._matrix = np.asarray(self.embed(texts), dtype=np.float32)
        return self._matrix

    def scores(self, text: str) -> dict[str, float]:
        bank = self._bank()
        query = np.asarray(self.embed([text]), dtype=np.float32)[0]
        sims = bank @ query
        best: dict[str, float] = {}
        for intent, s in zip(self._intents, sims):
            best[intent] = max(best.get(intent, -1.0), float(s))
        low = _words(text)
        for intent, words in KEYWORDS.items():
            if any(w in low for w in words):
                best[intent] += 0.1
        # What the request names is telling, whatever its wording.
        has_user, has_item = bool(_USER.search(text)), bool(_ITEM.search(text))
        segment_words = bool(re.search(r"\bsegment|\bgroup|\bcluster|belong", low))
        n_segments = len(_SEG.findall(text)) + len(re.findall(r"\b(?:biggest|largest|smallest)\b", low))
        if has_user and has_item:
            best["explain_recommendation"] += 0.15
        elif has_user and segment_words:
            best["explain_user_segment"] += 0.15
        elif has_user:
            best["recommend_items"] += 0.05
        if has_user:  # a request about one user is not about the list of segments
            best["list_segments"] -= 0.15
            best["describe_segment"] -= 0.1
        if n_segments == 1 and not has_user:
            best["describe_segment"] += 0.1
            best["list_segments"] -= 0.1
        elif n_segments >= 2 or re.search(r"\b(?:segments?|groups?|clusters?)\s+\d+\s+(?:and|vs\.?|versus|&)\s+\d+", low):
            best["compare_segments"] += 0.1
        people = re.search(r"\b(users?|customers?|people|shoppers?|buyers?|clients?|members?|audience|who)\b", low)
        things = re.search(r"\b(items?|products?|movies?|films?|books?|articles?|things?|skus?)\b", low)
        if people and not has_user:
            best["find_users"] += 0.1
        if things and not people:
            best["find_items"] += 0.1
        return best

    def route(self, text: str) -> Route:
        text = text.strip()
        if not text:
            return Route(None, question="What would you like to know? Try /help.")
        if text.startswith("/"):
            return parse_slash(text)
        scores = self.scores(text)
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        (top, s1), (second, s2) = ranked[0], ranked[1]
        if s1 < 0.3:
            return Route(None, question="I am not sure what you need. Try /help for what I can do.", score=s1)
        if s1 - s2 < MARGIN and {top, second} != {"describe_segment", "list_segments"}:
            args_top, args_second = extract_args(top, text), extract_args(second, text)
            if len(args_second) > len(args_top):
                top = second
            elif len(args_top) == len(args_second):
                return Route(None, question=f"Do you want me to {_verb(top)} or to {_verb(second)}?", score=s1)
        if top == "help":
            return Route("help", score=s1)
        return _check_required(Route(top, extract_args(top, text), score=s1))


def _verb(intent: str) -> str:
    return {
        "segment_users": "segment the users", "list_segments": "list the segments", "describe_segment": "describe a segment",
        "compare_segments": "compare two segments", "explain_user_segment": "explain a user's segment",
        "find_users": "find users", "find_items": "find items", "recommend_items": "recommend items",
        "explain_recommendation": "explain a recommendation", "write_report": "write a report",
        "load_data": "summarise the data", "help": "show help",
    }[intent]


HELP = """I can work on this workspace's data. Ask in your own words, or use a command:

- `/segment [k=N] [alpha A] [hdbscan|agglomerative] [--data PATH]`: split users into segments
- `/segments`: list them · `/describe 3` · `/compare 1 4`
- `/why-user 42`: why a user is in their segment
- `/find users who …` · `/find-items wireless headphones`
- `/recommend 42 [--k 5] [--explain]` · `/explain 42 1197`
- `/report [md] [segment N]`: write a shareable report
- `/data`: what data is loaded
"""
