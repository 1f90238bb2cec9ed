"""Bounds on every generation: a token budget fitted to the output, a wall-time budget, and a loop detector.

A weak model (a 270M GGUF on a laptop) can generate to the end of its context
on every call, repeat one line for minutes, or stall before its first token.
So every request carries ``max_tokens``, every stream is read against a
deadline, and the text is watched for degenerate repetition; each stops the
stream at once (closing a stream makes llama.cpp's server stop generating).

Deadlines are carried in a context variable, so the chat model deep inside an
agent graph or a phrasing helper sees the budget of the turn or batch it serves.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import BaseModel

from assistant.llm import LLMError

CHARS_PER_TOKEN = 3.0  # conservative for English prose and JSON: a valid answer always fits
JSON_FIELD_TOKENS = 12  # key, quotes, colon, comma
JSON_WRAP_TOKENS = 16  # braces and a ```json fence


def schema_max_tokens(schema: type[BaseModel]) -> int:
    """The most tokens a reply valid for ``schema`` can need: longer output is rejected anyway, so never generated."""
    total = JSON_WRAP_TOKENS
    for field in schema.model_fields.values():
        limit = next((m.max_length for m in field.metadata if getattr(m, "max_length", None)), None)
        total += JSON_FIELD_TOKENS + math.ceil((limit or 200) / CHARS_PER_TOKEN)
    return total


class BudgetExceeded(LLMError):
    """The wall-time budget of a turn or a batch of generations is used up."""


class Stopped(LLMError):
    """The generation was stopped on purpose (a rejected answer, a cancelled turn)."""


class LLMClock:
    """A wall-time budget that can be paused (while tools run) and stopped (the answer was rejected).

    Not a result: it is the running state of one turn or batch, shared with the
    chat model through ``current_clock()``.
    """

    def __init__(self, seconds: float, what: str, cancel: threading.Event | None = None, agent_steps_only: bool = False) -> None:
        self.seconds = float(seconds)
        self.what = what
        self.cancel = cancel
        # A turn's clock bounds the agent's own steps; a generation a tool makes gets its own budget.
        self.agent_steps_only = agent_steps_only
        self._deadline = time.monotonic() + self.seconds
        self._paused_at: float | None = None
        self._stop_reason: str | None = None

    def remaining(self) -> float:
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return self._deadline - now

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._deadline += time.monotonic() - self._paused_at
            self._paused_at = None

    def stop(self, reason: str) -> None:
        self._stop_reason = reason

    def check(self) -> None:
        """Raise when the generation must end now."""
        if self._stop_reason:
            raise Stopped(self._stop_reason)
        if self.cancel is not None and self.cancel.is_set():
            raise Stopped("cancelled")
        if self.remaining() <= 0:
            raise BudgetExceeded(f"the {self.what} budget of {self.seconds:g} s is used up", "raise it in the settings, or use a faster model")


_CLOCK: ContextVar[LLMClock | None] = ContextVar("segscope_llm_clock", default=None)


def current_clock() -> LLMClock | None:
    return _CLOCK.get()


@contextmanager
def llm_budget(seconds: float, what: str, cancel: threading.Event | None = None, agent_steps_only: bool = False) -> Iterator[LLMClock]:
    """Every generation inside shares one wall-time budget (with ``agent_steps_only``, only the agent's own steps)."""
    clock = LLMClock(seconds, what, cancel, agent_steps_only)
    token = _CLOCK.set(clock)
    try:
        yield clock
    finally:
        _CLOCK.reset(token)


# -- degenerate repetition -----------------------------------------------------------
_DIGITS = re.compile(r"\d+")
MIN_LINE = 6  # shorter lines ("---", "") repeat legitimately
LINE_REPEATS = 3
PERIOD_MAX = 120
PERIOD_SPAN = 48
PERIOD_COPIES = 4
NGRAM = 6
NGRAM_REPEATS = 6
NGRAM_COVERAGE = 0.5


def repetition(text: str) -> str | None:
    """Why ``text`` is a degenerate loop, or None.

    - the same line (of at least 6 characters) three times;
    - the text ends in four or more back-to-back copies of one chunk (``言\\n言\\n…``, ``[root][root]…``);
    - one 6-word phrase, numbers aside ("Describe segment 4.", "… 5.", …), six times, covering half the words.
    """
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= MIN_LINE]
    if lines:
        line, count = Counter(lines).most_common(1)[0]
        if count >= LINE_REPEATS:
            return f"the line “{line[:60]}” repeated {count} times"
    tail = text[-PERIOD_MAX * PERIOD_COPIES :]
    for period in range(1, min(PERIOD_MAX, len(tail) // PERIOD_COPIES) + 1):
        copies = max(PERIOD_COPIES, math.ceil(PERIOD_SPAN / period))
        span = period * copies
        if span > len(tail):
            break
        unit = tail[-period:]
        if unit.strip() and tail[-span:] == unit * copies:
            return f"“{unit.strip()[:40]}” repeated {copies} times in a row"
    words = _DIGITS.sub("#", text).split()
    if len(words) > NGRAM:
        grams = Counter(tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1))
        gram, count = grams.most_common(1)[0]
        if count >= NGRAM_REPEATS and count * NGRAM / len(words) >= NGRAM_COVERAGE:
            return f"the phrase “{' '.join(gram)[:60]}” repeated {count} times"
    return None


class RepetitionGuard:
    """Fed a stream piece by piece; says when it has become a loop (checked every few pieces, cheaply)."""

    def __init__(self, every_chars: int = 24) -> None:
        self.text = ""
        self._every = every_chars
        self._checked = 0

    def feed(self, piece: str) -> str | None:
        self.text += piece
        if len(self.text) - self._checked < self._every and "\n" not in piece:
            return None
        self._checked = len(self.text)
        return repetition(self.text)
