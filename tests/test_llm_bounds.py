"""Bounded generations: max_tokens fitted to each template, wall-time budgets, and loops stopped in the stream.

The scripted server behaves as llama.cpp's does (``llama_cpp=True``): it honours
only ``max_tokens``, and a babbling model repeats one line until the client hangs up.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.events import Notice, Token, ToolFinished, TurnDone
from assistant.explaining import ExplanationText
from assistant.labelling import LabelText, polish_labels
from assistant.llm import make_backend
from assistant.llm_bounds import repetition, schema_max_tokens
from assistant.service import WorkspaceService
from assistant.session import Session
from tests.fake_openai import Babble, FakeOpenAI, Reply
from tools.embed.embedding import HashingEmbedder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    import langchain_openai  # noqa: F401 - imported once here, not inside a budget under test

    return sample_workspace(tmp_path_factory.mktemp("bounds"), n_users=300, seed=3)


# Forty distinct words, no digits: slow, but never a loop.
PROSE = " ".join(f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(40))


def _settings(server: FakeOpenAI, **overrides):
    settings = load_settings(llm="openai:gemma", llm_timeout=5.0, llm_retries=1, **overrides)
    return settings.model_copy(update={"openai_base_url": server.base_url})


# -- max_tokens ---------------------------------------------------------------------
def test_token_budgets_fit_the_output_schemas():
    label, explanation = schema_max_tokens(LabelText), schema_max_tokens(ExplanationText)
    # A valid label is at most 60 + 600 characters of JSON strings, an explanation 600.
    assert (60 + 600) / 4 < label <= 300
    assert 600 / 4 < explanation <= 260 and explanation < label


def test_every_label_request_carries_max_tokens_that_llama_cpp_honours(tmp_path):
    ws = sample_workspace(tmp_path, n_users=300, seed=3)
    with FakeOpenAI([Reply('{"name": "Gadget Lovers", "description": "They love gadgets. They buy them."}'), Reply("nope")], llama_cpp=True) as server:
        polish_labels(ws, make_backend(_settings(server)), HashingEmbedder(), 10, budget_s=30)
    assert server.requests
    for body in server.requests:
        # langgraph-openai sends max_completion_tokens, which llama.cpp ignores: max_tokens must ride along.
        assert body["max_tokens"] == schema_max_tokens(LabelText) == body["max_completion_tokens"]
        assert body["stream"] is True


def test_agent_steps_carry_the_answer_budget(workspace):
    script = [Reply(tool_calls=[{"name": "list_segments", "args": {}}]), Reply("The segments are listed above.")]
    with FakeOpenAI(script, llama_cpp=True) as server:
        events = _turn(_session(workspace, server, llm_answer_tokens=200), "what segments are there?")
    assert isinstance(events[-1], TurnDone)
    assert [b["max_tokens"] for b in server.requests] == [200, 200]


# -- loops --------------------------------------------------------------------------
LOOPS = [
    "user u01701 (segment 2, similarity 0.263)\n" * 5,  # the invented tool output
    "Hi\u3067\u884c\n" + "\u8a00\n" * 40,  # Gemma on "Hi", seen on the wire
    "    [root]\n    [root][root][root]\n    [root]\n    [root]\n    [root][root][root]\n",
    "Hello. bahawamodel\nCatagory model\nCatagory model\ncatagory model\ncatagory model\ncatagory model\n",
    "".join(f"Describe segment {i}.nutritiona " for i in range(4, 14)),
    "Proceeding the model. " + "".join(f"{i}." for i in range(4, 26)) + "the segment is the segment is the segment is the segment is the segment is the segment is ",
]


@pytest.mark.parametrize("text", LOOPS, ids=["tool-output", "cjk-line", "brackets", "line", "counting", "phrase"])
def test_degenerate_loops_are_recognised(text):
    assert repetition(text)


def test_real_answers_are_not_loops(workspace):
    service = WorkspaceService(workspace, load_settings(), embedder=HashingEmbedder())
    from assistant.toolbox import Toolbox

    box = Toolbox(service)
    texts = [box.list_segments().summary, box.describe_segment(0).summary, box.compare_segments(0, 1).summary]
    texts += [s["description"] for s in service.segments()]
    texts.append("The biggest segment buys mostly gadgets. It spends twice as much per order as everyone else, and it came back recently.")
    for text in texts:
        assert repetition(text) is None, text


def test_a_babbling_model_is_stopped_in_the_stream_and_the_labels_fall_back(tmp_path):
    ws = sample_workspace(tmp_path, n_users=300, seed=3)
    before = json.loads((ws / "segments.json").read_text())
    with FakeOpenAI([Babble(delay=0.005)], llama_cpp=True) as server:
        started = time.perf_counter()
        notices = polish_labels(ws, make_backend(_settings(server)), HashingEmbedder(), 10, budget_s=60)
        elapsed = time.perf_counter() - started
    after = json.loads((ws / "segments.json").read_text())
    assert [s["name"] for s in after["segments"]] == [s["name"] for s in before["segments"]]
    assert {s["label_source"] for s in after["segments"]} == {"extractive"}
    assert len(notices) == before["k"]
    # Each attempt was cut after a few repeated lines, not read to max_tokens (264 words at 5 ms = 1.3 s each).
    assert server.disconnects == len(server.requests) == 2 * before["k"]
    assert elapsed < 0.6 * len(server.requests)


def test_the_names_budget_bounds_a_slow_model(workspace, tmp_path):
    ws = sample_workspace(tmp_path, n_users=300, seed=3)
    k = json.loads((ws / "segments.json").read_text())["k"]
    slow = Babble(line=PROSE, delay=0.1)  # 10 words a second, no loop for 12 s
    with FakeOpenAI([slow], llama_cpp=True) as server:
        started = time.perf_counter()
        notices = polish_labels(ws, make_backend(_settings(server)), HashingEmbedder(), 10, budget_s=1.5)
        elapsed = time.perf_counter() - started
    assert elapsed < 1.5 + 2.0
    assert len(server.requests) == 1  # the budget ran out inside the first generation
    assert any("budget of 1.5 s for segment names is used up" in n and f"{k - 1} of {k}" in n for n in notices), notices


# -- the agent turn -------------------------------------------------------------------
def _session(workspace, server: FakeOpenAI, **overrides) -> Session:
    settings = _settings(server, **overrides)
    return Session(workspace, settings, service=WorkspaceService(workspace, settings, embedder=HashingEmbedder()))


def _turn(session: Session, prompt: str) -> list:
    events: list = []
    session.run_turn(prompt, events.append, threading.Event())
    return events


def _said(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


def test_a_babble_after_a_tool_call_is_stopped_and_replaced_by_the_tool_results(workspace):
    loop = Babble("A segment is a subset of the data set.", delay=0.005)  # Gemma's own loop, seen on the wire
    script = [Reply(tool_calls=[{"name": "list_segments", "args": {}}]), loop]
    with FakeOpenAI(script, llama_cpp=True) as server:
        started = time.perf_counter()
        events = _turn(_session(workspace, server), "list the segments")
        elapsed = time.perf_counter() - started
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("replaced by the tool results" in n and "repeating itself" in n for n in notices), notices
    assert _said(events).count("A segment is a subset") <= 2 and "segments of" in events[-1].answer
    assert server.disconnects == 1
    assert elapsed < 5, elapsed


def test_the_turn_budget_stops_a_slow_model_and_the_router_answers(workspace):
    slow = Babble(line=PROSE, delay=0.1)
    with FakeOpenAI([slow], llama_cpp=True) as server:
        started = time.perf_counter()
        events = _turn(_session(workspace, server, llm_turn_seconds=1.5), "/segments")
        elapsed = time.perf_counter() - started
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("turn budget of 1.5 s is used up" in n and "router" in n for n in notices), notices
    assert isinstance(events[-1], TurnDone) and "segments of" in events[-1].answer
    assert "waa" not in _said(events)  # the slow line was never released: it had not ended
    assert server.disconnects == 1, (len(server.requests), elapsed, notices)  # the stream was closed, so the server stopped generating
    assert elapsed < 1.5 + 5.0, elapsed  # the budget, then the router's own answer


def test_an_explanation_inside_an_agent_tool_has_its_own_budget(workspace):
    service = WorkspaceService(workspace, load_settings(), embedder=HashingEmbedder())
    user = service.segments()[0]["representative_user_ids"][0]
    item = service.recommend(user, k=1)[0].item_id
    call = {"name": "explain_recommendation", "args": {"user_id": user, "item_id": item}}
    script = [Reply(tool_calls=[call]), Babble(line=PROSE, delay=0.1), Reply("The explanation is above.")]
    with FakeOpenAI(script, llama_cpp=True) as server:
        started = time.perf_counter()
        events = _turn(_session(workspace, server, llm_batch_seconds=1.5), f"why is {item} recommended to {user}?")
        elapsed = time.perf_counter() - started
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished and finished[0].ok, events
    # The turn's clock waits while tools run; the explanation's generation had its own 1.5 s.
    assert finished[0].artifact["source"] == "extractive" and "budget of 1.5 s" in finished[0].artifact["notice"]
    assert elapsed < 1.5 + 5.0, elapsed
    assert isinstance(events[-1], TurnDone)
