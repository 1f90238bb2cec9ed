"""Segment names and descriptions polished by the configured LLM, checked against the segment's facts.

The extractive label is always computed first: it is the fallback, and its
name reserves a place so no two segments end up with names that share all their
content words (the same rule as the extractive names: tools/explain/names.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.llm import LLMBackend
from assistant.phrasing import generate_json
from prompts import load_prompt
from tools.core.privacy import mask_identifiers
from tools.explain.labels import MAX_NAME_WORDS, SegmentLabel, label_segments
from tools.explain.names import first_clash, has_number
from tools.explain.quality import apply_labels, label_distinctiveness
from tools.explain.wording import Voice, fmt_pct, trait_fact

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


class LabelText(BaseModel):
    name: str = Field(min_length=2, max_length=60)
    description: str = Field(min_length=10, max_length=600)


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def label_check(value: LabelText, evidence_text: str, taken: list[str]) -> str | None:
    """Why a proposed label is unacceptable, or None. ``taken``: the other segments' names."""
    if len(value.name.split()) > MAX_NAME_WORDS:
        return f"the name has more than {MAX_NAME_WORDS} words"
    if has_number(value.name):
        return "the name has a number in it: say what sets the segment apart instead"
    clash = first_clash(value.name, taken)
    if clash is not None:
        return f"the name is too close to another segment's name ({clash!r}): every one of its words is in the other"
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", value.description.strip()) if s]
    if len(sentences) != 2:
        return "the description must be exactly two sentences"
    invented = sorted(_numbers(value.name + " " + value.description) - _numbers(evidence_text))
    if invented:
        return f"numbers not in the data: {', '.join(invented)}"
    return None


def polish_labels(workspace: str | Path, backend: LLMBackend, embedder, min_segment_size: int = 10, budget_s: float = 60.0) -> list[str]:
    """Replace the run's labels with LLM-written ones where they pass the checks; returns notices.

    All the names share one wall-time budget: once it is used up, the remaining
    segments keep their extractive names and one notice says how many.
    """
    from assistant.llm_bounds import llm_budget
    from tools.core.run_state import load_run

    if not backend.info.generative:
        return []
    run = load_run(workspace)
    summary = run.summary
    extractive = label_segments(summary)
    kind = summary["data"]["kind"]
    voice = Voice.of(summary)
    chosen: list[SegmentLabel] = []
    notices: list[str] = []
    skipped = 0
    with llm_budget(budget_s, "segment names") as clock:
        for seg, ext in zip(summary["segments"], extractive):
            if clock.remaining() <= 0:
                chosen.append(ext)
                skipped += 1
                continue
            label, notice = _polish_one(backend, seg, ext, extractive, chosen, kind, min_segment_size, voice)
            chosen.append(label)
            if notice:
                notices.append(f"segment {seg['id']}: {notice}")
    if skipped:
        notices.append(f"the LLM budget of {budget_s:g} s for segment names is used up: {skipped} of {len(chosen)} segments keep their extractive names")
    text_source = summary["parameters"].get("text_source", "embedder")
    distinct = label_distinctiveness(chosen, run, embedder) if text_source == "embedder" else None
    apply_labels(workspace, chosen, distinct, run_key=summary["run_key"])
    return notices


def _polish_one(backend: LLMBackend, seg: dict, ext: SegmentLabel, extractive: list[SegmentLabel], chosen: list[SegmentLabel],
                kind: str, min_segment_size: int, voice: Voice) -> tuple[SegmentLabel, str | None]:
    """One segment's label from the LLM when it passes the checks, else its extractive label, with the reason."""
    import json

    # Every other extractive name stays reserved (each is some segment's fallback), and so
    # does every name already chosen.
    taken = [lab.name for lab in chosen] + [lab.name for lab in extractive if lab.segment_id != seg["id"]]
    evidence = {
        "segment_id": seg["id"],
        "size": seg["size"],
        "share": fmt_pct(seg["share"], 1),
        "traits": [trait_fact(t, voice) for t in seg["traits"][:5]],
        "keywords": seg["keywords"][:10],
        "names_taken": taken,
        "draft_name": ext.name,
        "draft_description": ext.description,
    }
    if kind == "text" and seg["size"] >= min_segment_size:
        evidence["example_texts"] = [mask_identifiers(t)[:200] for t in seg.get("representative_texts", [])[:3]]
    evidence_text = json.dumps(evidence, ensure_ascii=False)
    phrased = generate_json(
        backend,
        load_prompt("label_segment"),
        evidence,
        LabelText,
        lambda v: label_check(v, evidence_text, taken),
        lambda: LabelText(name=ext.name, description=ext.description),
    )
    label = SegmentLabel(seg["id"], phrased.value.name, phrased.value.description, phrased.source, phrased.template, ext.facts)
    return label, phrased.notice
