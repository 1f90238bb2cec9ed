"""LLM backends and the validate / verify / retry / fall back path, against a scripted server on loopback."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from assistant.config import load_settings
from assistant.llm import ExtractiveBackend, LLMError, OpenAIBackend, make_backend
from assistant.phrasing import extract_json, generate_json
from prompts import load_prompt
from tests.fake_openai import FakeOpenAI, Reply, Status


class Label(BaseModel):
    name: str
    description: str


def _check(label: Label) -> str | None:
    return "name longer than 5 words" if len(label.name.split()) > 5 else None


def _fallback() -> Label:
    return Label(name="Extractive Name", description="From evidence. Only.")


def _backend(server: FakeOpenAI, **extra) -> OpenAIBackend:
    settings = load_settings(llm="openai:test-model", llm_retries=0, llm_timeout=5, **extra)
    settings = settings.model_copy(update={"openai_base_url": server.base_url})
    return OpenAIBackend("test-model", settings)


def test_extractive_backend_is_default_and_never_generates():
    backend = make_backend(load_settings())
    assert isinstance(backend, ExtractiveBackend)
    assert backend.info.generative is False and backend.info.supports_tools is False
    result = generate_json(backend, load_prompt("label_segment"), {}, Label, _check, _fallback)
    assert result.source == "extractive" and result.template is None and result.value.name == "Extractive Name"


def test_valid_answer_is_used_and_records_template_and_backend():
    with FakeOpenAI([Reply('{"name": "Gadget Fans", "description": "A. B."}')]) as server:
        result = generate_json(_backend(server), load_prompt("label_segment"), {"size": 3}, Label, _check, _fallback)
    assert result.value.name == "Gadget Fans"
    assert result.source == "openai:test-model" and result.template == "label_segment.v2" and result.attempts == 1
    # The evidence went out fenced as data.
    sent = server.requests[0]["messages"][-1]["content"]
    assert "<data>" in sent and '"size": 3' in sent


def test_invalid_json_is_retried_once_then_falls_back():
    with FakeOpenAI([Reply("not json at all"), Reply("{broken")]) as server:
        result = generate_json(_backend(server), load_prompt("label_segment"), {}, Label, _check, _fallback)
    assert len(server.requests) == 2
    assert result.source == "extractive" and result.value.name == "Extractive Name"
    assert "rejected twice" in result.notice


def test_unfaithful_answer_retried_with_reason_then_accepted():
    script = [Reply('{"name": "One Two Three Four Five Six", "description": "x"}'), Reply('```json\n{"name": "Short Name", "description": "x"}\n```')]
    with FakeOpenAI(script) as server:
        result = generate_json(_backend(server), load_prompt("label_segment"), {}, Label, _check, _fallback)
    assert result.value.name == "Short Name" and result.attempts == 2
    assert "name longer than 5 words" in server.requests[1]["messages"][-1]["content"]


def test_http_error_falls_back_with_notice():
    with FakeOpenAI([Status(500)]) as server:
        result = generate_json(_backend(server), load_prompt("label_segment"), {}, Label, _check, _fallback)
    assert result.source == "extractive" and "failed" in result.notice


def test_local_only_refuses_remote_but_allows_loopback(monkeypatch):
    settings = load_settings(llm="openai:gpt-4o-mini", local_only=True)
    with pytest.raises(LLMError, match="local-only"):
        OpenAIBackend("gpt-4o-mini", settings)
    with FakeOpenAI([Reply("{}")]) as server:
        backend = _backend(server, local_only=True)  # a loopback endpoint is allowed: no LLMError
        assert backend.info.detail == server.base_url


def test_identifiers_are_masked_before_sending():
    with FakeOpenAI([Reply('{"name": "A", "description": "B."}')]) as server:
        backend = _backend(server)
        generate_json(backend, load_prompt("label_segment"), {"review": "mail me at jane.doe@example.com or +44 20 7946 0958"}, Label, _check, _fallback)
    sent = server.requests[0]["messages"][-1]["content"]
    assert "jane.doe@example.com" not in sent and "[email]" in sent
    assert "7946" not in sent and "[phone]" in sent


def test_extract_json_tolerates_chatter():
    assert extract_json('Sure! {"a": 1} hope this helps') == {"a": 1}
    with pytest.raises(ValueError):
        extract_json("no braces")


def test_segment_labels_polished_by_an_llm_with_fallbacks(tmp_path):
    """Valid names are used; invalid JSON and invented numbers fall back to the extractive label."""
    import json

    from helpers import sample_workspace

    from assistant.labelling import polish_labels
    from tools.embed.embedding import HashingEmbedder

    ws = sample_workspace(tmp_path, n_users=300, seed=3)
    before = json.loads((ws / "segments.json").read_text())
    k = before["k"]
    script = [Reply('{"name": "Gadget Lovers", "description": "They love gadgets. They spend a lot."}'),
              Reply("not json"), Reply("still not json"),
              Reply('{"name": "Big Spenders", "description": "They are 97% of buyers. Really."}'),
              Reply('{"name": "Big Spenders", "description": "They are many. They buy."}')]
    script += [Reply("nope")] * (2 * k)
    with FakeOpenAI(script) as server:
        notices = polish_labels(ws, _backend(server), HashingEmbedder(), 10)
    after = json.loads((ws / "segments.json").read_text())
    segs = after["segments"]
    assert segs[0]["name"] == "Gadget Lovers" and segs[0]["label_source"] == "openai:test-model"
    assert segs[0]["label_template"] == "label_segment.v2"
    assert segs[1]["name"] == before["segments"][1]["name"] and segs[1]["label_source"] == "extractive"
    assert segs[2]["name"] == "Big Spenders"  # the invented "97%" was rejected, the retry accepted
    assert any("segment 1" in n for n in notices)
    names = [s["name"].lower() for s in segs]
    assert len(set(names)) == len(names)
    assert after["labels"]["distinctiveness"] is not None
