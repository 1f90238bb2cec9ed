"""The deterministic router: slash commands and plain requests mapped to the same tools as the agent.

A request is read in three passes:
1. the workspace resolver finds what it names: user and item ids in the forms the data
   uses, item titles, segments by id, rank or name (tools/explain/resolve.py);
2. each clause ("segment into 5 groups and write a report" has two) is matched to a tool
   by similarity to example phrasings with those mentions replaced by placeholders,
   nudged by telling words and by what it names (assistant/intents.py);
3. the tool's arguments come from the mentions, from plain words (counts, windows,
   filters: assistant/arguments.py) and, for follow-ups ("and segment 3?", "why?",
   "compare it with the smallest"), from the conversation's focus (assistant/followup.py).
A missing or unknown argument gets one question, naming the closest matches; nothing is guessed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from assistant.followup import Focus
from assistant.intents import EXAMPLES, MARGIN, IntentScorer
from assistant.registry import BY_NAME, SLASH
from assistant.routing_clause import ClauseRouter, Question
from tools.core.errors import SegscopeError

__all__ = ["EXAMPLES", "HELP", "Call", "Route", "Router", "parse_slash", "split_clauses"]


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Tool calls to make in order, or one question to ask back."""

    calls: tuple[Call, ...] = ()
    question: str | None = None
    score: float = 0.0

    @property
    def tool(self) -> str | None:
        return self.calls[0].tool if self.calls else None

    @property
    def args(self) -> dict[str, Any]:
        return self.calls[0].args if self.calls else {}


_VERBS = (r"write|make|create|export|generate|produce|save|segment|split|cluster|re-?run|redo|describe|compare|list|show|give|recommend|suggest|"
          r"find|search|explain|justify|tell|rank|count|draw|build|what|why|who|how|which|also|then|now|look")
_NOT_A_NEW_REQUEST = r"(?!(?:segment|seg|cluster|group)s?\s+(?:#|no\.?\s*|number\s+)?(?:\d|one|two|three|four|five|six|seven|eight|nine|ten)\b)"
_SPLITS = (
    r"\s*;\s*", r"(?<=[?!])\s+", r"\.\s+(?=[A-Za-z])", r",?\s+and\s+then\s+", r",\s*then\s+", r"\s+then\s+(?=(?:" + _VERBS + r")\b)",
    r",?\s+and\s+also\s+", r",\s+also\s+", r"\s+and\s+" + _NOT_A_NEW_REQUEST + r"(?=(?:" + _VERBS + r")\b)",
    r",\s+" + _NOT_A_NEW_REQUEST + r"(?=(?:" + _VERBS + r"|justify)\b)",
)


_SMALL_TALK = re.compile(r"^\s*(?:hi|hello|hey|thanks|thank you|ok|okay|please|great|cool)\s*[!.,]*\s*$", re.I)


def split_clauses(text: str) -> list[str]:
    """The requests inside one message, in order ("… and write a report", "…; then …", "…? why?")."""
    parts = [text.strip()]
    for pattern in _SPLITS:
        parts = [p for part in parts for p in re.split(pattern, part, flags=re.I) if p and p.strip(" ,.;")]
    return [p.strip() for p in parts] or [text.strip()]


def parse_slash(text: str, clause_router: ClauseRouter | None = None) -> Route:
    """`/describe 3`, `/compare 1 4`, `/recommend 42 --k 5`, `/explain 42 1197`, `/find gardening`, `/segment k=5`, `/rank churn`."""
    from assistant.arguments import export_params, rank_query, segment_params, slash_audit_params

    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    command, rest = parts[0].lower(), parts[1:]
    tool = SLASH.get(command)
    if tool is None:
        return Route(question=f"Unknown command {command}. Try /help.")
    joined = " ".join(rest)
    args: dict[str, Any] = {}
    if tool == "describe_segment" and rest:
        args["segment_id"] = int(rest[0]) if rest[0].isdigit() else joined
    elif tool == "compare_segments" and len(rest) >= 2:
        args["segment_a"], args["segment_b"] = (int(r) if r.isdigit() else r for r in rest[:2])
    elif tool in ("explain_user_segment", "recommend_items") and rest:
        args["user_id"] = rest[0]
        if tool == "recommend_items":
            if (k := re.search(r"(?:--k\s+|k=)(\d+)", joined)) is not None:
                args["k"] = int(k.group(1))
            if "--explain" in rest or "why" in rest:
                args["explain"] = True
    elif tool == "what_would_move" and rest:  # `/whatif u00042 3`, `/whatif 17 lapsed buyers`
        args["user_id"] = rest[0]
        if len(rest) > 1:
            args["segment_id"] = int(rest[1]) if len(rest) == 2 and rest[1].isdigit() else " ".join(rest[1:])
    elif tool == "explain_recommendation" and len(rest) >= 2:
        args["user_id"], args["item_id"] = rest[0], " ".join(rest[1:])
    elif tool in ("find_users", "find_items") and rest:
        args["description"] = joined
    elif tool == "rank_users" and rest:
        args = rank_query(joined).args() or {"by": rest[0]}
    elif tool == "segment_drift" and rest:  # `/drift 90d`, `/drift previous`, `/drift --since KEY`
        from tools.segment.drift import parse_window

        if rest[0] in ("--since", "since") and len(rest) > 1:
            args["since_run"] = rest[1]
        elif rest[0] in ("previous", "last-run"):
            args["since_run"] = "previous"
        else:
            try:
                args["window_days"] = parse_window(rest[0])
            except SegscopeError as exc:
                return Route(question=exc.message)
    elif tool == "audit_segments":
        args = slash_audit_params(rest)
    elif tool == "export_segment":  # `/export 3 parquet`, `/export all`, `/export lapsed buyers --changed-since previous`
        args = export_params(joined)
        named = [r for r in rest if r.lower() not in ("csv", "parquet", "jsonl", "all") and not r.startswith("--")
                 and r != args.get("changed_since")]
        if named:
            args["segment_id"] = int(named[0]) if len(named) == 1 and named[0].isdigit() else " ".join(named)
    elif tool in ("segment_users", "write_report", "load_data"):
        data = re.search(r"--data[= ](\S+)", joined)
        if data:  # `/segment --data PATH k=5`: another dataset into this workspace
            joined = joined.replace(data.group(0), " ")
        if tool == "segment_users":
            args = segment_params(joined)
        elif tool == "write_report":
            if re.search(r"\bmarkdown\b|\bmd\b", joined, re.I):
                args["fmt"] = "md"
            if (seg := re.search(r"\bsegment\s+(\d+)", joined, re.I)) is not None:
                args["segment_id"] = int(seg.group(1))
        elif (path := re.search(r"(\S+\.(?:csv|tsv|parquet|jsonl|json|gz))\b", joined)) is not None:
            args["path"] = path.group(1)
        if data and tool != "write_report":
            args["data_path" if tool == "segment_users" else "path"] = data.group(1)
    if clause_router is not None:
        try:
            args = clause_router.ground(tool, args)
        except SegscopeError as exc:
            return Route(question=exc.message)
    need = BY_NAME[tool].missing
    if need and need[0] not in args:
        if tool == "explain_recommendation" and "user_id" in args:
            return Route(question="Which item? e.g. “/explain u00042 i00012”.")
        return Route(question=need[1])
    if tool in ("find_users", "find_items") and not args.get("description"):
        return Route(question="What should I look for? e.g. “/find users who love gardening”.")
    return Route((Call(tool, args),), score=1.0)


class Router:
    """Maps a request (and the conversation's focus) to a Route; ``embed`` turns texts into L2-normalised vectors."""

    def __init__(self, embed, resolver=None) -> None:
        self.scorer = IntentScorer(embed)
        self.resolver = resolver
        self.clauses = ClauseRouter(self.scorer, resolver)

    def use_resolver(self, resolver) -> None:
        """Ground requests in this resolver's workspace (None: no run yet, so nothing to resolve)."""
        self.resolver = resolver
        self.clauses.resolver = resolver

    def scores(self, text: str) -> dict[str, float]:
        return self.scorer.scores(text, {})

    def route(self, text: str, focus: Focus | None = None) -> Route:
        text = text.strip()
        if not text:
            return Route(question="What would you like to know? Try /help.")
        if text.startswith("/"):
            return parse_slash(text, self.clauses)
        local = focus or Focus()
        calls: list[Call] = []
        score = 1.0
        for clause in split_clauses(text):
            if _SMALL_TALK.match(clause):
                continue  # "hi, what is this tool for": the greeting is not a request
            said = tuple(str(c.args["user_id"]) for c in calls if c.args.get("user_id") is not None)
            result = self.clauses.route(clause, local, first=not calls, said_users=said)
            if isinstance(result, Question):
                return Route(question=result.text, score=result.score)
            tool, args, s = result
            score = min(score, s)
            if calls and tool == calls[-1].tool and args == calls[-1].args:
                continue  # "which cluster is u00060 in and why": the why is the same call
            if calls and tool == calls[-1].tool and tool == "recommend_items" and args.get("user_id") == calls[-1].args.get("user_id"):
                calls[-1] = Call(tool, {**calls[-1].args, **args})  # "recommend … and tell me why": one call, explained
            elif calls and tool == calls[-1].tool == "export_segment" and "segment_id" not in args:
                calls[-1] = Call(tool, {**calls[-1].args, **args})  # "… since the last run? csv please": how, not what
            else:
                calls.append(Call(tool, args))
            local = local.after(tool, args)
            for more_tool, more_args in self.clauses.extra:
                calls.append(Call(more_tool, more_args))
                local = local.after(more_tool, more_args)
        if not calls:
            return Route(question="I am not sure what you need. Try /help for what I can do.")
        if calls[0].tool == "help":
            return Route((Call("help", {}),), score=score)
        return Route(tuple(calls), score=score)


HELP = """I can work on this workspace's data. Ask in your own words, or use a command:

- `/segment [k=N] [alpha A] [hdbscan|agglomerative] [--data PATH]`: split users into segments
- `/segments`: list them · `/describe 3` · `/compare 1 4` (ids, ranks such as “biggest”, or names)
- `/why-user u00042`: why a user is in their segment
- `/find users who …` · `/find-items wireless headphones`: search by taste
- `/rank churn` · `/rank top 20 spenders`: rank or count users by behaviour
- `/recommend u00042 [--k 5] [--explain]` · `/explain u00042 i00012` (an item id or title)
- `/audit [gender,age,…] [top] [--no-recommendations]`: is any segment a proxy for an attribute; recommendations per group
- `/report [md] [segment N]`: write a shareable report
- `/data`: what data is loaded

Follow-ups work: “and segment 3?”, “why?”, “compare it with the smallest”, “more”.
"""

_ = MARGIN  # re-exported for callers that tune the ambiguity margin
