"""A scripted OpenAI-compatible server on loopback, for testing LLM fallbacks and faults.

Each request to /v1/chat/completions takes the next scripted step:
- ``Reply(text)``: a normal completion with that content (streamed when asked).
- ``Reply(tool_calls=[...])``: a completion that calls tools.
- ``Status(code)``: an HTTP error (429, 500, ...).
- ``Delay(seconds, then)``: wait, then behave as ``then`` (for timeouts).
- ``BrokenStream(text)``: start streaming, then drop the connection.
When the script runs out, the last step repeats. Requests are recorded.
"""

from __future__ import annotations

import json
import threading
import time
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


class FakeOpenAI:
    """Start with ``with FakeOpenAI([...]) as server: server.base_url``."""

    def __init__(self, script: list) -> None:
        self.script = list(script)
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
                model = body.get("model", "fake")
                if isinstance(step, BrokenStream) or body.get("stream"):
                    self._stream(step, model)
                    return
                self._json(200, _completion(step, model))

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
        self._server.shutdown()
        self._server.server_close()
