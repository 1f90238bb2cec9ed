"""The agent's answer is checked before it is shown: invented facts are replaced, imitated tool output goes to the router.

The scripted server behaves as llama.cpp's does (``llama_cpp=True``): tool-call
deltas repeat the name, null content is refused with HTTP 500, pings between chunks.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.events import Notice, Token, ToolFinished, ToolStarted, TurnDone
from assistant.grounding import Grounding, imitation
from assistant.registry import TOOL_NAMES
from assistant.service import WorkspaceService
from assistant.session import Session, user_text
from assistant.toolbox import Toolbox
from tests.fake_openai import FakeOpenAI, Reply
from tools.embed.embedding import HashingEmbedder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("grounding"), n_users=300, seed=3)


@pytest.fixture(scope="module")
def service(workspace):
    return WorkspaceService(workspace, load_settings(), embedder=HashingEmbedder())


def _grounding(service, prompt: str = "what is special about the biggest segment?") -> Grounding:
    run = service.run
    known = {str(u) for u in run.user_ids} | {str(i) for i in run.item_ids}
    return Grounding(prompt, service.summary(), known.__contains__)


# -- the check itself -------------------------------------------------------------------
def test_an_answer_copied_from_the_tool_results_is_grounded(service):
    g = _grounding(service)
    seg = service.segments()[0]
    g.add_tool_result(user_text(Toolbox(service).describe_segment(0).summary))
    trait = seg["traits"][0]
    share = f"{100 * seg['share']:.1f}%"
    answer = (
        f"The biggest segment is segment 0 “{seg['name']}”: {seg['size']:,} users ({share}).\n"
        f"1. Its top trait is {trait['label']}, {trait['lift']:.1f}× overall.\n"
        f"2. That is about {round(trait['lift'])} times the average, in the {seg['name']} segment.\n"
        f"A typical member is {seg['representative_user_ids'][0]}."
    )
    assert g.problems(answer) == []


@pytest.mark.parametrize(
    "answer, problem",
    [
        ("Segment 0 has 589 users.", "589"),
        ("100% of the people in it buy toys.", "100"),
        ("Look at segment 17: it is the oddest.", "segment 17 does not exist"),
        ("The biggest one is “Book & Toys”.", "“Book & Toys”"),
        ("The Book & Toys segment is the biggest.", "segment “Book & Toys” does not exist"),
        ("Its most typical user is u99999.", "id u99999"),
    ],
)
def test_invented_numbers_segments_names_and_ids_are_found(service, answer, problem):
    g = _grounding(service)
    g.add_tool_result(user_text(Toolbox(service).describe_segment(0).summary))
    found = g.problems(answer)
    assert any(problem in p for p in found), found


PROBED = [  # what Gemma 3 270M wrote on the wire, asked about segments without a tool call
    "user u01701 (segment 2, similarity 0.263)\nuser u01701 (segment 2, similarity 0.263)",
    "12 users closest to <data>churn</data>:",
    '```tool_code\nprint(describe_segment(segment_id=0))\n```',
    '{"name": "describe_segment", "arguments": {"segment_id": 3}}',
    "→ list_segments({})\n✓ list_segments in 0.1s",
]


@pytest.mark.parametrize("text", PROBED)
def test_imitated_tool_output_and_calls_are_recognised(text):
    assert imitation(text, TOOL_NAMES)


def test_prose_is_not_imitation(service):
    assert imitation("The biggest segment buys gadgets and comes back often; compare it with the smallest.", TOOL_NAMES) is None


# -- in a turn, over llama.cpp's wire behaviour -------------------------------------------
def _session(workspace, server: FakeOpenAI) -> Session:
    settings = load_settings(llm="openai:gemma", llm_timeout=5.0, llm_retries=1)
    settings = settings.model_copy(update={"openai_base_url": server.base_url})
    return Session(workspace, settings, service=WorkspaceService(workspace, settings, embedder=HashingEmbedder()))


def _turn(session: Session, prompt: str) -> list:
    events: list = []
    session.run_turn(prompt, events.append, threading.Event())
    return events


def _said(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


def _notices(events) -> list[str]:
    return [e.text for e in events if isinstance(e, Notice)]


def test_a_tool_call_round_trip_survives_llama_cpp_deltas_and_null_content(workspace, service):
    seg = service.segments()[0]
    answer = f"Segment 0 “{seg['name']}” has {seg['size']:,} users, the most of any segment."
    script = [Reply(tool_calls=[{"name": "describe_segment", "args": {"segment_id": 0}}]), Reply(answer)]
    with FakeOpenAI(script, llama_cpp=True) as server:
        session = _session(workspace, server)
        events = _turn(session, "what is special about the biggest segment?")
    assert [e.name for e in events if isinstance(e, ToolStarted)] == ["describe_segment"]  # not "describe_segmentdescribe_segment…"
    assert all(e.ok for e in events if isinstance(e, ToolFinished))
    assistant = [m for m in server.requests[1]["messages"] if m["role"] == "assistant"][0]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["function"]["name"] == "describe_segment"
    assert not _notices(events)
    assert isinstance(events[-1], TurnDone) and events[-1].answer == answer
    assert len([e for e in events if isinstance(e, Token)]) >= 1 and session.last_agent_stats.outcome == "answered"
    assert session.last_agent_stats.model_chunks > 5  # it came as a stream


def test_the_fake_refuses_what_llama_cpp_refuses(workspace):
    with FakeOpenAI([Reply("x")], llama_cpp=True) as server:
        for messages in (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": []}],
            [{"role": "developer", "content": "be terse"}, {"role": "user", "content": "hi"}],
            [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1"}],
        ):
            request = urllib.request.Request(f"{server.base_url}/chat/completions", json.dumps({"model": "m", "messages": messages}).encode(), {"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=5)
            assert err.value.code == 500


def test_imitated_tool_output_without_a_call_falls_back_to_the_router(workspace):
    fake = "12 users closest to <data>churn</data>:\n- user u01701 (segment 2, similarity 0.263)\n- user u01701 (segment 2, similarity 0.263)\n"
    with FakeOpenAI([Reply(fake)], llama_cpp=True) as server:
        events = _turn(_session(workspace, server), "list the segments")
    assert any("wrote tool output or a tool call as text" in n and "router" in n for n in _notices(events)), _notices(events)
    assert [e.name for e in events if isinstance(e, ToolStarted)] == ["list_segments"]  # the router's call
    assert "0.263" not in _said(events) and "u01701" not in _said(events)
    assert isinstance(events[-1], TurnDone) and "segments of" in events[-1].answer


def test_an_invented_figure_after_a_tool_call_is_replaced_by_the_tool_results(workspace):
    script = [Reply(tool_calls=[{"name": "describe_segment", "args": {"segment_id": "biggest"}}]),
              Reply("The biggest segment is “Book & Toys”, with 98,765 users.")]
    with FakeOpenAI(script, llama_cpp=True) as server:
        events = _turn(_session(workspace, server), "what is special about the biggest segment?")
    notices = _notices(events)
    assert any("replaced by the tool results" in n and "98,765" in n for n in notices), notices
    assert "98,765" not in _said(events) and "Book & Toys" not in _said(events)
    assert "Defining traits" in events[-1].answer


def test_an_empty_answer_without_tools_is_a_capability_gap(workspace):
    with FakeOpenAI([Reply("")], llama_cpp=True) as server:  # chatml-function-calling's usual reply
        events = _turn(_session(workspace, server), "list the segments")
    assert any("returned no answer and called no tool" in n and "router" in n for n in _notices(events))
    assert isinstance(events[-1], TurnDone) and "segments of" in events[-1].answer


def test_prose_instead_of_a_needed_tool_call_falls_back_to_the_router(workspace):
    with FakeOpenAI([Reply("Segments are groups of similar users.")], llama_cpp=True) as server:
        events = _turn(_session(workspace, server), "list the segments")
    assert any("answered without calling a tool" in n and "list_segments" in n for n in _notices(events)), _notices(events)
    assert "segments of" in events[-1].answer


def test_small_talk_needs_no_tool(workspace):
    with FakeOpenAI([Reply("Hello! Ask me about your segments.")], llama_cpp=True) as server:
        events = _turn(_session(workspace, server), "hello")
    assert not _notices(events) and events[-1].answer == "Hello! Ask me about your segments."


def test_ticks_and_arrows_in_prose_are_not_imitation():
    assert imitation("✓ Done: the report is written.\n→ Next, compare the two largest segments.", TOOL_NAMES) is None


def test_an_answer_may_cite_a_failed_call_about_a_segment_the_user_named(workspace):
    script = [Reply(tool_calls=[{"name": "describe_segment", "args": {"segment_id": 99}}]), Reply("Segment 99 does not exist in this workspace.")]
    with FakeOpenAI(script, llama_cpp=True) as server:
        events = _turn(_session(workspace, server), "describe segment 99")
    assert [e.ok for e in events if isinstance(e, ToolFinished)] == [False]
    assert not _notices(events) and events[-1].answer == "Segment 99 does not exist in this workspace."


def test_every_tool_rendering_is_grounded_and_an_invented_line_added_to_it_is_not(service):
    box = Toolbox(service)
    segs = service.segments()
    user = segs[0]["representative_user_ids"][0]
    results = [box.list_segments(), box.compare_segments(0, len(segs) - 1), box.explain_user_segment(user), box.recommend_items(user, k=5)]
    results += [box.describe_segment(s["id"]) for s in segs]
    invented = ["That is 7919 users.", f"Segment {len(segs) + 3} is bigger.", "They are the “Midnight Snackers”.",
                "The Weekend Gamers segment leads.", "See user zq9x77 for an example."]
    for result in results:
        text = user_text(result.summary)
        g = _grounding(service, "tell me about it")
        g.add_tool_result(text)
        assert g.problems(text) == [], text  # "segment 44%" in a trait line is a value, not segment 44
        assert imitation(text, TOOL_NAMES, after_tools=True) is None
        for line in invented:
            assert g.problems(f"{text}\n{line}"), line


def test_numbers_pass_as_ids_only_where_said_as_ids(service):
    numeric_ids = {"589", "17850", "1197"}  # MovieLens and retail ids are plain numbers
    g = Grounding("what is special about the biggest segment?", service.summary(), numeric_ids.__contains__)
    assert g.problems("Segment 0 has 589 users.")
    assert g.problems("user 17850 and item #1197 are typical of it.") == []
