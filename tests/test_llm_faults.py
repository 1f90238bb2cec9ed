"""LLM faults against a scripted OpenAI-compatible server on loopback: the session always answers."""

from __future__ import annotations

import re
import threading

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.events import Notice, Token, ToolFinished, ToolStarted, TurnDone
from assistant.service import WorkspaceService
from assistant.session import Session
from tests.fake_openai import BrokenStream, Delay, FakeOpenAI, Reply, Status
from tools.embed.embedding import HashingEmbedder

# The list's first line: "4 segments of 300 users", or in a two-level run "2 segments (3 sub-segments) of 300 users".
LIST_HEADER = re.compile(r"\d+ segments(?: \(\d+ sub-segments?\))? of [\d,]+ users")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("faults"), seed=6)


def _session(workspace, server: FakeOpenAI, timeout: float = 2.0, retries: int = 1) -> Session:
    settings = load_settings(llm="openai:test-model", llm_timeout=timeout, llm_retries=retries)
    settings = settings.model_copy(update={"openai_base_url": server.base_url})
    service = WorkspaceService(workspace, settings, embedder=HashingEmbedder())
    return Session(workspace, settings, service=service)


def _turn(session: Session, prompt: str) -> list:
    events: list = []
    session.run_turn(prompt, events.append, threading.Event())
    return events


@pytest.mark.parametrize(
    "script",
    [
        [Status(500)],
        [Status(429, "rate limited")],
        [Delay(5.0, Reply("too late"))],
        [BrokenStream("this answer will be cut off halfway through the stream")],
    ],
    ids=["http-500", "http-429", "timeout", "broken-stream"],
)
def test_model_faults_fall_back_to_the_router_and_the_session_goes_on(workspace, script):
    with FakeOpenAI(script) as server:
        session = _session(workspace, server)
        events = _turn(session, "/segments")
        assert events[0].responder == "agent (openai:test-model)"  # the agent was asked first
        notices = [e for e in events if isinstance(e, Notice)]
        assert len(notices) == 1 and "the LLM failed" in notices[0].text and "built-in router" in notices[0].text, events
        done = events[-1]
        assert isinstance(done, TurnDone) and done.responder == "router (after openai:test-model failed)"
        # The router's own answer, not the model's: its one tool call, then the tool's text.
        assert [e.name for e in events if isinstance(e, ToolStarted)] == ["list_segments"]
        top = [seg for seg in session.service.run.summary["segments"] if seg.get("parent") is None]
        assert LIST_HEADER.match(done.answer) and done.answer.startswith(f"{len(top)} segments "), done.answer
        assert events.index(notices[0]) < next(i for i, e in enumerate(events) if isinstance(e, ToolStarted))
        # The next turn is again offered to the model first, and again answered.
        again = _turn(session, "/describe 0")
        assert isinstance(again[-1], TurnDone) and any(isinstance(e, Notice) for e in again)
    assert len(server.requests) >= 2


def test_retries_then_success(workspace):
    script = [Status(500), Reply("All good: there are segments.")]
    with FakeOpenAI(script) as server:
        events = _turn(_session(workspace, server, retries=2), "hello")
    assert isinstance(events[-1], TurnDone) and "All good" in events[-1].answer
    assert events[-1].responder == "agent (openai:test-model)"
    assert not any(isinstance(e, Notice) for e in events)
    assert len(server.requests) == 2


def test_a_real_tool_call_over_http(workspace):
    script = [Reply(tool_calls=[{"name": "list_segments", "args": {}}]), Reply("Listed them.")]
    with FakeOpenAI(script) as server:
        events = _turn(_session(workspace, server), "what segments are there?")
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished and finished[0].name == "list_segments" and finished[0].ok and "segments" in finished[0].artifact
    assert isinstance(events[-1], TurnDone) and "Listed them." in "".join(e.text for e in events if isinstance(e, Token))
    assert events[-1].responder == "agent (openai:test-model)" and not any(isinstance(e, Notice) for e in events)
    # The tool result went back to the model with data text fenced: every segment's name inside its own fence.
    tool_message = [m for m in server.requests[1]["messages"] if m["role"] == "tool"][0]
    content = tool_message["content"]
    assert LIST_HEADER.match(content), content
    names = [s["name"] for s in finished[0].artifact["segments"]]
    assert [re.findall(r"<data>(.*?)</data>", line)[0] for line in content.splitlines()[1:]] == names
    assert not any(name in re.sub(r"<data>.*?</data>", "", content) for name in names)


def test_malformed_tool_call_is_survived(workspace):
    script = [Reply(tool_calls=[{"name": "no_such_tool", "args": {"x": 1}}]), Reply("Sorry about that.")]
    with FakeOpenAI(script) as server:
        events = _turn(_session(workspace, server), "do something odd")
    # The agent reads the tool error and answers itself: the router is not needed.
    assert isinstance(events[-1], TurnDone) and events[-1].responder == "agent (openai:test-model)"
    assert not any(isinstance(e, Notice) for e in events)
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [(f.name, f.ok) for f in finished] == [("no_such_tool", False)]
    assert events[-1].answer == "Sorry about that."
