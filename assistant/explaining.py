"""Explanations phrased by the configured backend and always checked against their evidence."""

from __future__ import annotations

from pydantic import BaseModel, Field

from assistant.llm import LLMBackend
from assistant.phrasing import generate_json
from prompts import load_prompt
from tools.explain.evidence import (
    ExplanationContext,
    phrase_extractive,
    verify_explanation,
)


class ExplanationText(BaseModel):
    explanation: str = Field(min_length=10, max_length=600)


def explain_pair(ctx: ExplanationContext, backend: LLMBackend, user_id: str, item_id: str) -> dict:
    """{explanation, verified, source, template, notice, evidence, problems} for one recommendation."""
    evidence = ctx.build_evidence(user_id, item_id)

    def check(value: ExplanationText) -> str | None:
        result = verify_explanation(value.explanation, evidence, ctx)
        return None if result.ok else "; ".join(result.problems)

    phrased = generate_json(
        backend,
        load_prompt("explain_recommendation"),
        evidence.as_dict(),
        ExplanationText,
        check,
        lambda: ExplanationText(explanation=phrase_extractive(evidence)),
    )
    final = verify_explanation(phrased.value.explanation, evidence, ctx)
    return {
        "user_id": user_id,
        "item_id": item_id,
        "title": evidence.item_title,
        "explanation": phrased.value.explanation,
        "verified": final.ok,
        "problems": list(final.problems),
        "evidence": evidence.as_dict(),
        **phrased.provenance(),
    }
