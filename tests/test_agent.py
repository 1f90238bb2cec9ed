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


# -- the agent's tools resolve what a model passes, with the router's resolver -------------------------------
def test_a_model_may_name_segments_and_items_as_people_do(workspace):
    service = WorkspaceService(workspace, load_settings(), embedder=HashingEmbedder())
    segments = service.segments()
    named = min(segments, key=lambda s: s["size"])  # words of a name, not an id
    title = service.run.data.items.drop_duplicates("title", keep=False).iloc[0]
    script = [
        call("describe_segment", "c1", segment_id=named["name"].lower()),
        call("compare_segments", "c2", segment_a="the biggest", segment_b="the smallest"),
        call("explain_recommendation", "c3", user_id="user 1", item_id=title["title"]),
        AIMessage(content="Done."),
    ]
    events = _run(_session(workspace, script), "tell me about them")
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [f.ok for f in finished] == [True, True, True], [f.summary for f in finished]
    assert finished[0].artifact["description"]["segment_id"] == named["id"]
    tops = [s for s in segments if s.get("parent") is None]  # ranks are among the top level of a two-level run
    by_size = [s["id"] for s in sorted(tops, key=lambda s: (-s["size"], s["id"]))]
    cmp = finished[1].artifact["comparison"]
    assert (cmp["a"]["segment_id"], cmp["b"]["segment_id"]) == (by_size[0], by_size[-1])
    assert finished[2].artifact["item_id"] == str(title["item_id"]) and finished[2].artifact["user_id"] == "u00001"


def test_an_unknown_user_from_a_model_is_a_tool_error_naming_the_closest(workspace):
    script = [call("recommend_items", "c1", user_id="u99999"), AIMessage(content="There is no such user.")]
    events = _run(_session(workspace, script), "recommend for u99999")
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert not finished[0].ok and "u99999" in finished[0].summary and "Did you mean u0" in finished[0].summary
    assert isinstance(events[-1], TurnDone)


def test_rank_users_through_the_agent_cites_what_it_ranked_by(workspace):
    script = [call("rank_users", "c1", by="churn_risk", n=5), call("rank_users", "c2", filters=[{"feature": "recency_days", "op": ">", "value": 30}], segment_id="biggest"),
              AIMessage(content="Ranked.")]
    events = _run(_session(workspace, script), "who is about to churn?")
    first, second = [e for e in events if isinstance(e, ToolFinished)]
    assert first.ok and first.artifact["ranking"]["by"] == "churn_risk" and len(first.artifact["users"]) == 5
    assert all({"recency_days", "active_days", "typical_gap_days", "churn_risk"} <= set(u) for u in first.artifact["users"])
    assert "last active" in first.summary and "usual gap" in first.summary
    assert second.ok and second.artifact["ranking"]["segment_id"] == 0 and all(u["recency_days"] > 30 for u in second.artifact["users"])


def test_the_agent_audits_the_segments_and_the_audit_reaches_the_ui(workspace):
    script = [call("audit_segments", "c1", sensitive=["country"], recommendations=False), call("audit_segments", "c2", sensitive=["religion"]),
              AIMessage(content="The audit is above.")]
    events = _run(_session(workspace, script), "is any segment a proxy for country?")
    first, second = [e for e in events if isinstance(e, ToolFinished)]
    assert first.ok and [a["attribute"] for a in first.artifact["audit"]["attributes"]] == ["country"]
    assert "Cramér's V" in first.summary and first.artifact["audit"]["recommendations"] is None
    assert not second.ok and "religion" in second.summary  # a tool error the model can read, not a crash
    assert isinstance(events[-1], TurnDone)


def test_what_the_agent_looked_at_is_the_focus_of_the_next_router_turn(workspace):
    session = _session(workspace, [call("describe_segment", "c1", segment_id=0), AIMessage(content="Segment 0.")])
    _run(session, "describe segment 0")
    conversation = session.conversation_id
    settings = load_settings()
    router_session = Session(workspace, settings, service=WorkspaceService(workspace, settings, embedder=HashingEmbedder()), conversation=conversation)
    events = _run(router_session, "compare it with the smallest")
    tops = [s for s in router_session.service.segments() if s.get("parent") is None]  # ranks: the top level
    smallest = min(tops, key=lambda s: (s["size"], -s["id"]))["id"]
    assert [(e.name, e.args) for e in events if isinstance(e, ToolStarted)] == [("compare_segments", {"segment_a": 0, "segment_b": smallest})]


def test_resolver_backed_tools_over_an_openai_compatible_server(workspace):
    """The real OpenAI client against the scripted server: a segment named in words and an item by title reach the tools."""
    from tests.fake_openai import FakeOpenAI, Reply

    service = WorkspaceService(workspace, load_settings(), embedder=HashingEmbedder())
    title = service.run.data.items.drop_duplicates("title", keep=False).iloc[3]
    script = [Reply(tool_calls=[{"name": "describe_segment", "args": {"segment_id": "the smallest"}},
                                {"name": "explain_recommendation", "args": {"user_id": "#u00002", "item_id": title["title"].upper()}}]),
              Reply("The smallest segment, and why that item.")]
    with FakeOpenAI(script) as server:
        settings = load_settings(llm="openai:test-model", llm_timeout=10.0, llm_retries=0).model_copy(update={"openai_base_url": server.base_url})
        session = Session(workspace, settings, service=WorkspaceService(workspace, settings, embedder=HashingEmbedder()))
        events = _run(session, "what is the smallest segment like, and why that item for user 2?")
        sent_tools = {t["function"]["name"]: t["function"] for t in server.requests[0]["tools"]}
    assert "rank_users" in sent_tools and "segment_id" in sent_tools["describe_segment"]["parameters"]["properties"]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [f.ok for f in finished] == [True, True], [f.summary for f in finished]
    # The two calls run side by side: they finish in either order, so each result is found by its tool's name.
    result = {f.name: f for f in finished}
    tops = [s for s in service.segments() if s.get("parent") is None]  # ranks: the top level
    smallest = min(tops, key=lambda s: (s["size"], -s["id"]))["id"]
    assert result["describe_segment"].artifact["description"]["segment_id"] == smallest
    assert result["explain_recommendation"].artifact["item_id"] == str(title["item_id"]) and isinstance(events[-1], TurnDone)
