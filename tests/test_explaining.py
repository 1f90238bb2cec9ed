"""explain_pair with a generative backend: its text is used only when the verifier passes it; else the extractive one, and why."""

from __future__ import annotations

import json

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.explaining import explain_pair
from assistant.llm import OpenAIBackend
from tests.fake_openai import FakeOpenAI, Reply, Status
from tools.core.run_state import load_run
from tools.explain.evidence import (
    ExplanationContext,
    phrase_extractive,
    verify_explanation,
)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return ExplanationContext(load_run(sample_workspace(tmp_path_factory.mktemp("explaining"), seed=4)))


@pytest.fixture(scope="module")
def pair(ctx):
    """A user and an item their segment took but they did not."""
    run = ctx.run
    user = str(run.user_ids[0])
    mine = set(ctx.user_items(user))
    for peer in run.user_ids[run.labels == run.labels[0]]:
        for item in ctx.user_items(peer):
            if item not in mine:
                return user, str(item)
    raise AssertionError("no candidate pair")


def _backend(server: FakeOpenAI) -> OpenAIBackend:
    settings = load_settings(llm="openai:test-model", llm_retries=0, llm_timeout=5)
    return OpenAIBackend("test-model", settings.model_copy(update={"openai_base_url": server.base_url}))


def _invented(ctx, user, item) -> str:
    ev = ctx.build_evidence(user, item)
    wrong = ev.segment_size + 1000
    while str(wrong) in ev.allowed_numbers():
        wrong += 1
    return f"{wrong} people exactly like you bought this last week."


def test_a_rejected_explanation_falls_back_to_the_extractive_one_and_says_why(ctx, pair):
    user, item = pair
    invented = _invented(ctx, user, item)
    reply = Reply(json.dumps({"explanation": invented}))
    with FakeOpenAI([reply, reply]) as server:
        result = explain_pair(ctx, _backend(server), user, item)
    evidence = ctx.build_evidence(user, item)
    assert result["explanation"] == phrase_extractive(evidence) != invented
    assert result["verified"] is True and result["problems"] == []
    assert result["source"] == "extractive" and result["template"] is None and result["attempts"] == 2
    wrong = invented.split()[0]
    assert "rejected twice" in result["notice"] and f"number {wrong} is not in the evidence" in result["notice"]
    assert result["notice"].startswith("openai:test-model")
    # The model was asked twice, the second time with the verifier's reason, and saw the evidence fenced.
    assert len(server.requests) == 2
    first, second = (r["messages"][-1]["content"] for r in server.requests)
    assert "<data>" in first and evidence.item_title in first
    assert f"Your previous answer was rejected: number {wrong} is not in the evidence" in second


def test_a_verified_second_answer_is_used_with_its_template(ctx, pair):
    user, item = pair
    evidence = ctx.build_evidence(user, item)
    good = phrase_extractive(evidence).replace("We recommend", "You may like", 1)
    assert verify_explanation(good, evidence, ctx).ok
    script = [Reply(json.dumps({"explanation": _invented(ctx, user, item)})), Reply(json.dumps({"explanation": good}))]
    with FakeOpenAI(script) as server:
        result = explain_pair(ctx, _backend(server), user, item)
    assert result["explanation"] == good and result["verified"] is True
    assert (result["source"], result["template"], result["attempts"], result["notice"]) == (
        "openai:test-model", "explain_recommendation.v1", 2, None)
    assert result["evidence"] == evidence.as_dict() and result["title"] == evidence.item_title


def test_a_failing_backend_falls_back_with_a_notice(ctx, pair):
    user, item = pair
    with FakeOpenAI([Status(500)]) as server:
        result = explain_pair(ctx, _backend(server), user, item)
    assert result["source"] == "extractive" and result["verified"] is True
    assert "openai:test-model failed" in result["notice"] and result["attempts"] == 1
