"""The agent with a scripted tool-calling fake model: tool order, artifacts, errors, cancellation, fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import sample_workspace
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from assistant.config import load_settings
from assistant.events import (
    Notice,
    Token,
    ToolFinished,
    ToolStarted,
    TurnCancelled,
    TurnDone,
    TurnFailed,
    TurnStarted,
)
from assistant.service import WorkspaceService
from assistant.session import Session
from tools.embed.embedding import HashingEmbedder


class ScriptedToolModel(GenericFakeChatModel):
    """A fake chat model that 'calls tools': bind_tools returns itself, replies come from a script."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolModel:
        return self

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        if isinstance(message, Exception):
            raise message
        if message.tool_calls:
            chunks = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i} for i, c in enumerate(message.tool_calls)]
            yield ChatGenerationChunk(message=AIMessageChunk(content=message.content, tool_call_chunks=chunks))
            return
        for word in message.content.split(" "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def call(name: str, call_id: str, **args) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("agent"), seed=2)


def _session(workspace, script) -> Session:
    settings = load_settings()
    service = WorkspaceService(workspace, settings, embedder=HashingEmbedder())
    return Session(workspace, settings, service=service, chat_model=ScriptedToolModel(messages=iter(script)))


def _run(session: Session, prompt: str, cancel: threading.Event | None = None) -> list:
    events: list = []
    session.run_turn(prompt, events.append, cancel or threading.Event())
    return events


def test_tools_run_in_order_and_artifacts_reach_the_ui(workspace):
    script = [
        call("list_segments", "c1"),
        call("describe_segment", "c2", segment_id="biggest"),
        AIMessage(content="The biggest segment is described above."),
    ]
    events = _run(_session(workspace, script), "what is special about the biggest segment?")
    assert isinstance(events[0], TurnStarted) and events[0].responder.startswith("agent")
    started = [e.name for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert started == ["list_segments", "describe_segment"]
    assert [f.name for f in finished] == started and all(f.ok for f in finished)
    assert "segments" in finished[0].artifact and finished[1].artifact["description"]["segment_id"] == 0
    tokens = "".join(e.text for e in events if isinstance(e, Token))
    assert "biggest segment" in tokens
    assert isinstance(events[-1], TurnDone) and "biggest segment" in events[-1].answer


def test_a_failing_tool_is_reported_and_the_turn_recovers(workspace):
    script = [
        call("describe_segment", "c1", segment_id=99),
        call("list_segments", "c2"),
        AIMessage(content="Segment 99 does not exist; here are the segments."),
    ]
    events = _run(_session(workspace, script), "describe segment 99")
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished[0].name == "describe_segment" and not finished[0].ok and "99" in finished[0].summary
    assert finished[1].ok
    assert isinstance(events[-1], TurnDone)


def test_invalid_tool_arguments_are_a_tool_error_not_a_crash(workspace):
    script = [call("recommend_items", "c1", user_id="u1", k=500), AIMessage(content="Sorry, k is too large.")]
    events = _run(_session(workspace, script), "recommend 500 items")
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished and not finished[0].ok
    assert isinstance(events[-1], TurnDone)


def test_cancellation_stops_the_turn(workspace):
    cancel = threading.Event()
    session = _session(workspace, [call("list_segments", "c1"), AIMessage(content="never said")])
    events: list = []

    def emit(event):
        events.append(event)
        if isinstance(event, ToolFinished):
            cancel.set()  # the user presses Esc while the tool runs

    session.run_turn("list the segments", emit, cancel)
    assert isinstance(events[-1], TurnCancelled) and events[-1].prompt == "list the segments"
    assert not any(isinstance(e, TurnDone) for e in events)


def test_a_segmentation_the_agent_started_is_stopped_by_esc_and_the_run_stays(tmp_path):
    from assistant.events import ToolProgress
    from tools.core.workspace import Workspace

    ws = sample_workspace(tmp_path, n_users=1200, seed=4)
    live = Workspace(ws).current_run()
    before = (ws / "segments.json").read_bytes()
    cancel = threading.Event()
    session = _session(ws, [call("segment_users", "c1", k=3), AIMessage(content="never said")])
    events: list = []

    def emit(event):
        events.append(event)
        if isinstance(event, ToolProgress) and event.stage == "embedding texts":
            cancel.set()  # Esc while the child process is embedding

    session.run_turn("split them into 3 groups", emit, cancel)
    assert isinstance(events[-1], TurnCancelled)
    assert any(isinstance(e, ToolProgress) and e.stage == "loading data" for e in events), "progress came from the child"
    assert Workspace(ws).current_run() == live and (ws / "segments.json").read_bytes() == before
    assert not list((ws / ".segscope" / "runs").glob(".*.tmp"))


def test_model_failure_falls_back_to_the_router_with_a_notice(workspace):
    events = _run(_session(workspace, [RuntimeError("connection reset")]), "/segments")
    assert any(isinstance(e, Notice) and "router" in e.text for e in events)
    assert [e.name for e in events if isinstance(e, ToolStarted)] == ["list_segments"]
    assert isinstance(events[-1], TurnDone)


def test_history_is_stored_and_reloaded(workspace):
    session = _session(workspace, [AIMessage(content="Hello there.")])
    _run(session, "hi")
    again = _session(workspace, [AIMessage(content="x")])
    history = again.history()
    assert ("user", "hi") in history and ("assistant", "Hello there.") in history


def test_router_turn_for_unknown_segment_asks_which_one(workspace):
    settings = load_settings()
    service = WorkspaceService(workspace, settings, embedder=HashingEmbedder())
    session = Session(workspace, settings, service=service)
    assert session.responder.startswith("router")
    events = _run(session, "/describe 42")
    # No tool runs on a segment that does not exist: one question names the ones that do.
    assert not [e for e in events if isinstance(e, ToolStarted)]
    answer = events[-1].answer
    assert isinstance(events[-1], TurnDone) and "42" in answer and answer.endswith("?")
    assert all(seg["name"] in answer for seg in service.segments())
