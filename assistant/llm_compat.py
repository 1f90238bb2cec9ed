"""ChatOpenAI made safe for OpenAI-compatible servers that differ from OpenAI, and bounded in time.

What llama.cpp's server (llama-cpp-python 0.3) does that OpenAI does not, each
seen on the wire (see README "LLM backends"):
- it ignores ``max_completion_tokens`` (what langchain-openai sends) and honours
  only ``max_tokens``: without it a small model generates to the end of its context;
- it answers HTTP 500 to an assistant message whose ``content`` is null (what
  langchain-openai sends with tool calls);
- its streamed tool-call deltas repeat the call's id and name in every chunk
  (LangChain then concatenates them into "describe_segmentdescribe_segment…"),
  with a legacy ``function_call`` delta beside them.

Every stream is read against the current ``LLMClock`` (a turn's or a batch's
wall-time budget): each request's timeout is what is left of it, retries are
ours (the SDK's are off) and never outlive it, and the stream is closed the
moment the clock says stop, which makes the server stop generating.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import openai
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from assistant.llm_bounds import current_clock

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


class BoundedChatOpenAI(ChatOpenAI):
    compat: bool = False  # a server other than OpenAI's: send max_tokens too, never a null content
    retries: int = 2  # our own retries, bounded by the clock (the SDK's max_retries is 0)
    _tool_fields_seen: dict = PrivateAttr(default_factory=dict)

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if self.compat:
            if payload.get("max_completion_tokens") is not None:
                payload["max_tokens"] = payload["max_completion_tokens"]
            for message in payload.get("messages", []):
                if message.get("role") == "assistant" and message.get("content") is None:
                    message["content"] = ""
        return payload

    def _convert_chunk_to_generation_chunk(self, chunk: dict, default_chunk_class: type, base_generation_info: dict | None) -> ChatGenerationChunk | None:
        return super()._convert_chunk_to_generation_chunk(self._dedupe_tool_deltas(chunk), default_chunk_class, base_generation_info)

    def _dedupe_tool_deltas(self, chunk: dict) -> dict:
        """A tool call's id and name come once, in its first delta (as OpenAI sends them); later copies are dropped."""
        choices = chunk.get("choices") or []
        if not any((c.get("delta") or {}).get("tool_calls") for c in choices):
            return chunk
        chunk = copy.deepcopy(chunk)
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if not delta.get("tool_calls"):
                continue
            delta.pop("function_call", None)  # the legacy duplicate of the same call
            for call in delta["tool_calls"]:
                seen = self._tool_fields_seen.setdefault((chunk.get("id"), choice.get("index", 0), call.get("index")), set())
                if call.get("id"):
                    call["id"] = None if "id" in seen else call["id"]
                    seen.add("id")
                function = call.get("function") or {}
                if function.get("name"):
                    function["name"] = None if "name" in seen else function["name"]
                    seen.add("name")
        return chunk

    def _stream(self, messages: list, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        clock = current_clock()
        attempt = 0
        while True:
            if clock is not None:
                clock.check()
                limit = self.request_timeout if isinstance(self.request_timeout, (int, float)) else clock.remaining()
                kwargs["timeout"] = max(0.5, min(float(limit), clock.remaining()))
            started = False
            # What was seen belongs to one response: a server may reuse chunk ids across requests
            # (the scripted fake sends "x" every time), and the next reply's first id must not be dropped.
            self._tool_fields_seen.clear()
            inner = super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
            try:
                for chunk in inner:
                    started = True
                    yield chunk
                    if clock is not None:
                        clock.check()
                return
            except RETRYABLE:
                if started or attempt >= self.retries:
                    raise
            finally:
                inner.close()  # closing the HTTP stream is what stops the server generating
            attempt += 1
            pause = min(0.5 * 2 ** (attempt - 1), 4.0)
            time.sleep(max(0.0, min(pause, clock.remaining())) if clock is not None else pause)
