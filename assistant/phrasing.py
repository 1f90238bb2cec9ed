"""Ask an LLM for JSON, validate it, check it against the evidence, or fall back.

Every result records which template and version, and which backend, produced
it. Each request's ``max_tokens`` is fitted to the output schema. Invalid or unfaithful output is retried once with the reason; after that the
deterministic extractive result is used and a notice says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from assistant.llm import LLMBackend, LLMError
from prompts import PromptTemplate

T = TypeVar("T", bound=BaseModel)
SYSTEM = "You write short, factual marketing copy from evidence. You answer with JSON only."


@dataclass(frozen=True)
class Phrased(Generic[T]):
    value: T
    source: str  # backend name, or "extractive"
    template: str | None  # e.g. "label_segment.v1"; None for the extractive writer
    attempts: int
    notice: str | None = None  # why the LLM's answer was not used

    def provenance(self) -> dict:
        return {"source": self.source, "template": self.template, "attempts": self.attempts, "notice": self.notice}


def extract_json(text: str) -> dict:
    """The first JSON object in a reply, tolerating code fences and chatter around it."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, flags=re.S)
    candidate = fenced.group(1) if fenced else text
    start = candidate.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    obj, _ = json.JSONDecoder().raw_decode(candidate[start:])
    if not isinstance(obj, dict):
        raise ValueError("the reply's JSON is not an object")
    return obj


def generate_json(
    backend: LLMBackend,
    template: PromptTemplate,
    evidence: object,
    schema: type[T],
    check: Callable[[T], str | None],
    fallback: Callable[[], T],
    max_attempts: int = 2,
) -> Phrased[T]:
    """Validated, evidence-checked output from ``backend``, or ``fallback()`` with a notice."""
    if not backend.info.generative:
        return Phrased(fallback(), "extractive", None, 0)
    from assistant.llm_bounds import schema_max_tokens

    prompt = template.render(evidence)
    max_tokens = schema_max_tokens(schema)  # a longer reply would fail validation anyway
    problem = ""
    for attempt in range(1, max_attempts + 1):
        message = prompt if not problem else f"{prompt}\n\nYour previous answer was rejected: {problem}. Answer again, following the rules."
        try:
            reply = backend.complete(SYSTEM, message, max_tokens=max_tokens)
        except LLMError as exc:
            return Phrased(fallback(), "extractive", None, attempt, notice=f"{backend.info.name} failed ({exc.message}); used the extractive result")
        try:
            value = schema.model_validate(extract_json(reply))
        except (ValueError, ValidationError) as exc:
            problem = f"invalid JSON for the schema ({str(exc).splitlines()[0][:200]})"
            continue
        problem = check(value) or ""
        if not problem:
            return Phrased(value, backend.info.name, template.id, attempt)
    return Phrased(fallback(), "extractive", None, max_attempts, notice=f"{backend.info.name} output rejected twice ({problem}); used the extractive result")
