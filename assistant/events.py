"""What a turn of the conversation emits, whoever answers it (the agent or the router).

The UI subscribes to these and never cares which one produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TurnStarted:
    turn_id: int
    prompt: str
    responder: str  # "agent (openai:MODEL)" or "router (extractive)"


@dataclass(frozen=True)
class Token:
    """A piece of the answer's Markdown text, in order."""

    turn_id: int
    text: str


@dataclass(frozen=True)
class ToolStarted:
    turn_id: int
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolProgress:
    turn_id: int
    call_id: str
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class ToolFinished:
    turn_id: int
    call_id: str
    name: str
    ok: bool
    summary: str  # the short text the model reads
    duration_s: float
    artifact: Any = field(default=None, compare=False)  # the full result for the UI (dicts/lists of plain data)


@dataclass(frozen=True)
class TurnDone:
    turn_id: int
    answer: str
    responder: str = ""  # who answered: "agent (…)", or "router (…)" also when the router stood in for a failed model


@dataclass(frozen=True)
class TurnFailed:
    turn_id: int
    prompt: str  # restored into the input box
    error: str


@dataclass(frozen=True)
class TurnCancelled:
    turn_id: int
    prompt: str


@dataclass(frozen=True)
class Notice:
    """Something the user should see that is not part of the answer (e.g. an LLM fallback)."""

    turn_id: int
    text: str
    level: str = "warning"


Event = TurnStarted | Token | ToolStarted | ToolProgress | ToolFinished | TurnDone | TurnFailed | TurnCancelled | Notice
