"""A scripted OpenAI-compatible server on loopback, for testing LLM fallbacks and faults.

Each request to /v1/chat/completions takes the next scripted step:
- ``Reply(text)``: a normal completion with that content (streamed when asked).
- ``Reply(tool_calls=[...])``: a completion that calls tools.
- ``Status(code)``: an HTTP error (429, 500, ...).
- ``Delay(seconds, then)``: wait, then behave as ``then`` (for timeouts).
- ``BrokenStream(text)``: start streaming, then drop the connection.
- ``Babble(line)``: stream ``line`` again and again, as a weak model does, until
  ``max_tokens`` words (or the context, 2048, when none is sent) or the client
  hangs up; ``server.disconnects`` counts the streams the client closed early.
When the script runs out, the last step repeats. Requests are recorded.

``FakeOpenAI(script, llama_cpp=True)`` behaves as llama-cpp-python's server does
(0.3.x, seen on the wire; README "LLM backends"):
- ``max_completion_tokens`` is ignored, only ``max_tokens`` bounds a reply;
- HTTP 500 with a pydantic "validation errors" message for an assistant message
  whose content is null, a role it does not know ("developer"), or a tool
  message without content;
- a stream opens with a ``{"role": "assistant"}`` delta, sends no usage, and has
  ``: ping - <time>`` comment lines between chunks;
- a streamed tool call repeats its id and name in every delta, arguments come a
  few characters at a time, a legacy ``function_call`` delta rides along, and ids
  read ``call__0_<name>_cmpl-<uuid>``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)


@dataclass
class Status:
    code: int
    message: str = "scripted error"


@dataclass
class Delay:
    seconds: float
    then: object = field(default_factory=Reply)


@dataclass
class BrokenStream:
    text: str = "partial answer"


@dataclass
class Babble:
    line: str = "user u01701 (segment 2, similarity 0.263)"
    delay: float = 0.0  # seconds between words


LLAMA_CONTEXT = 2048
ROLES = {"system", "user", "assistant", "tool", "function"}


def llama_cpp_validation(body: dict) -> str | None:
    """The error llama-cpp-python's pydantic request model raises for this body, or None."""
    for i, m in enumerate(body.get("messages", [])):
        role = m.get("role")
        if role not in ROLES:
            return f"7 validation errors:\n  {{'type': 'literal_error', 'loc': ('body', 'messages', {i}, 'ChatCompletionRequestSystemMessage', 'role'), 'msg': \"Input should be 'system'\", 'input': {role!r}}}"
        if role == "assistant" and "content" in m and m["content"] is None:
            return f"7 validation errors:\n  {{'type': 'string_type', 'loc': ('body', 'messages', {i}, 'ChatCompletionRequestAssistantMessage', 'content'), 'msg': 'Input should be a valid string', 'input': None}}"
        if role in ("tool", "assistant") and "content" not in m:
            return "'content'"
    return None


def _completion(step: Reply, model: str) -> dict:
    message: dict = {"role": "assistant", "content": step.text or None}
    if step.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c.get("args", {}))}}
            for i, c in enumerate(step.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if step.tool_calls else "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _llama_completion(step: Reply, model: str, limit: int) -> dict:
    """A whole completion as llama.cpp sends it: cut at max_tokens words, with real usage and call ids."""
    words = step.text.split(" ") if step.text else []
    body = _completion(Reply(" ".join(words[:limit]), step.tool_calls), model)
    body["id"] = f"chatcmpl-{uuid.uuid4()}"
    choice = body["choices"][0]
    for i, call in enumerate(choice["message"].get("tool_calls", [])):
        call["id"] = f"call__{i}_{call['function']['name']}_{body['id']}"
    if len(words) > limit:
        choice["finish_reason"] = "length"
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": min(len(words), limit), "total_tokens": 10 + min(len(words), limit)}
    return body


class FakeOpenAI:
    """Start with ``with FakeOpenAI([...]) as server: server.base_url``."""

    def __init__(self, script: list, llama_cpp: bool = False) -> None:
        self.script = list(script)
        self.llama_cpp = llama_cpp
        self.disconnects = 0  # streams the client closed before the end
        self._active = 0  # babbles being streamed (handler threads are daemons: nothing joins them)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def next_step(self):
        with self._lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(body)
                step = owner.next_step()
                while isinstance(step, Delay):
                    time.sleep(step.seconds)
                    step = step.then
                if isinstance(step, Status):
                    self._json(step.code, {"error": {"message": step.message, "type": "scripted", "code": step.code}})
                    return
                invalid = llama_cpp_validation(body) if owner.llama_cpp else None
                if invalid:
                    self._json(500, {"error": {"message": invalid, "type": "internal_server_error", "param": None, "code": None}})
                    return
                model = body.get("model", "fake")
                if isinstance(step, Babble):
                    self._babble(step, model, self._limit(body), stream=bool(body.get("stream")))
                    return
                if isinstance(step, BrokenStream) or body.get("stream"):
                    if owner.llama_cpp and isinstance(step, Reply):
                        self._llama_stream(step, model, self._limit(body))
                    else:
                        self._stream(step, model)
                    return
                if owner.llama_cpp and isinstance(step, Reply):
                    self._json(200, _llama_completion(step, model, self._limit(body)))
                    return
                self._json(200, _completion(step, model))

            def _limit(self, body: dict) -> int:
                """How many words a reply may have: llama.cpp honours only max_tokens."""
                keys = ("max_tokens",) if owner.llama_cpp else ("max_tokens", "max_completion_tokens")
                given = [body[k] for k in keys if body.get(k)]
                return min(given) if given else LLAMA_CONTEXT

            def _chunk(self, cid: str, model: str, delta: dict, finish: str | None = None) -> bytes:
                chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
                return f"data: {json.dumps(chunk)}\n\n".encode()

            def _ping(self) -> bytes:
                return f": ping - {time.strftime('%Y-%m-%d %H:%M:%S')}.000000+00:00\n\n".encode()

            def _start_sse(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()

            def _babble(self, step: Babble, model: str, limit: int, stream: bool) -> None:
                words = [w + " " for w in (step.line + "\n").split(" ")] * (LLAMA_CONTEXT // max(1, len(step.line.split())) + 1)
                words = words[:limit]
                if not stream:
                    time.sleep(step.delay * len(words))
                    self._json(200, _completion(Reply("".join(words)), model) | {"choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "length"}]})
                    return
                cid = f"chatcmpl-{uuid.uuid4()}"
                self._start_sse()
                with owner._lock:
                    owner._active += 1
                try:
                    self.wfile.write(self._chunk(cid, model, {"role": "assistant"}))
                    for i, word in enumerate(words):
                        if step.delay:
                            time.sleep(step.delay)
                        self.wfile.write(self._chunk(cid, model, {"content": word}))
                        if owner.llama_cpp and i % 16 == 15:
                            self.wfile.write(self._ping())
                        self.wfile.flush()
                    self.wfile.write(self._chunk(cid, model, {}, "length") + b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    with owner._lock:
                        owner.disconnects += 1
                finally:
                    with owner._lock:
                        owner._active -= 1

            def _llama_stream(self, step: Reply, model: str, limit: int) -> None:
                cid = f"chatcmpl-{uuid.uuid4()}"
                self._start_sse()
                self.wfile.write(self._chunk(cid, model, {"role": "assistant", "content": None, "function_call": None, "tool_calls": None}))
                words = [w + " " for w in step.text.split(" ")] if step.text else []
                for i, word in enumerate(words[:limit]):
                    self.wfile.write(self._chunk(cid, model, {"content": word}))
                    if i % 8 == 7:
                        self.wfile.write(self._ping())
                    self.wfile.flush()
                for i, call in enumerate(step.tool_calls):
                    call_id = f"call__{i}_{call['name']}_{cid}"
                    args = json.dumps(call.get("args", {}))
                    for start in range(0, len(args), 3):
                        piece = args[start : start + 3]
                        delta = {"role": None, "content": None, "function_call": {"name": call["name"], "arguments": piece},
                                 "tool_calls": [{"index": i, "id": call_id, "type": "function", "function": {"name": call["name"], "arguments": piece}}]}
                        self.wfile.write(self._chunk(cid, model, delta))
                finish = "tool_calls" if step.tool_calls else ("length" if len(words) > limit else "stop")
                self.wfile.write(self._chunk(cid, model, {"role": None, "content": None, "function_call": None, "tool_calls": None}, finish) + b"data: [DONE]\n\n")
                self.wfile.flush()

            def _stream(self, step, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                text = step.text
                words = text.split(" ") if text else []
                for i, word in enumerate(words):
                    chunk = {"id": "x", "object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {"content": word + (" " if i < len(words) - 1 else "")}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if isinstance(step, BrokenStream) and i >= len(words) // 2:
                        self.connection.shutdown(2)
                        return
                if isinstance(step, Reply) and step.tool_calls:
                    for i, c in enumerate(step.tool_calls):
                        chunk = {"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"tool_calls": [
                            {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c.get("args", {}))}}]}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                end = {"id": "x", "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if getattr(step, "tool_calls", None) else "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        deadline = time.monotonic() + 5.0  # let a babble the client closed notice it, so disconnects is counted
        while self._active and time.monotonic() < deadline:
            time.sleep(0.02)
        self._server.shutdown()
        self._server.server_close()
