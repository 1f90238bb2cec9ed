"""One chat turn answered by the agent (the LLM calling the tools), bounded in time and checked before it is shown.

- The turn has a wall-time budget (``llm_turn_seconds``); the tools' own time is
  not counted. Every model step carries ``max_tokens`` (``llm_answer_tokens``).
- The answer streams on to the user a line at a time, and each line is checked
  first (before the first tool call, lines are held back until the model has
  called a tool or finished, so a model that cannot call tools shows nothing of
  its own): a degenerate loop, chat-template markup, text that imitates tool calls or tool output, or a
  number, id or segment that no tool result of this turn and nothing in the
  workspace supports, stops the model at once.
- Stopped after tool calls, the answer is replaced by the grounded rendering of
  the tool results; stopped before any (or answered without the tool the request
  needs), the built-in router answers. A notice says why, either way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.events import Notice, Token, ToolFinished, ToolStarted
from assistant.grounding import Grounding, imitation
from assistant.jobs import Cancelled
from assistant.llm_bounds import BudgetExceeded, RepetitionGuard, Stopped, llm_budget

if TYPE_CHECKING:
    import threading

    from assistant.session import Emit, Session

RELEASE_AFTER_CHARS = 200  # a line longer than this is released at its last sentence end


class RouterFallback(Exception):
    """The agent could not answer this turn: the router answers, and ``notice`` says why."""

    def __init__(self, notice: str) -> None:
        super().__init__(notice)
        self.notice = notice


class Rejected(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class AgentStats:
    """What the model did in the last agent turn (for `ask --json`, the bench and the real-server test)."""

    model_chunks: int  # streamed chunks received from the model
    first_chunk_s: float | None  # seconds from the turn's start
    last_chunk_s: float | None
    tool_calls: tuple[str, ...]
    seconds: float
    outcome: str  # "answered", "replaced" (by the tool results) or "router"
    reason: str | None = None


class AnswerGate:
    """Passes the answer on a line at a time, each line checked before anyone sees it."""

    def __init__(self, grounding: Grounding, tool_names: tuple[str, ...], emit_text) -> None:
        self.grounding = grounding
        self.tool_names = tool_names
        self.emit_text = emit_text
        self.released = ""  # shown to the user
        self.held = ""  # checked, but held back until the model has called a tool or finished
        self.holding = True
        self.pending = ""
        self.guard = RepetitionGuard()

    def release_held(self) -> None:
        """Show what was held back: the model called a tool, or finished an answer that needs none."""
        self.holding = False
        text, self.held = self.held, ""
        if text:
            self.released += text
            self.emit_text(text)

    def feed(self, piece: str) -> None:
        self.pending += piece
        loop = self.guard.feed(piece)
        if loop:
            raise Rejected("repetition", f"started repeating itself ({loop})")
        cut = self.pending.rfind("\n") + 1
        if not cut and len(self.pending) > RELEASE_AFTER_CHARS:
            ends = [m.end() for m in re.finditer(r"(?<=[^\d\s][.!?])\s", self.pending)]
            cut = ends[-1] if ends else 0
        if cut:
            text, self.pending = self.pending[:cut], self.pending[cut:]
            self._release(text)

    def flush(self) -> None:
        text, self.pending = self.pending, ""
        if text:
            self._release(text)

    def _release(self, text: str) -> None:
        why = imitation(text, self.tool_names, after_tools=bool(self.grounding.tool_results))
        if why:
            raise Rejected("imitation", why)
        problems = self.grounding.problems(text)
        if problems:
            raise Rejected("ungrounded", "stated what no tool result of this turn or the workspace says: " + "; ".join(problems[:3]))
        if self.holding:
            self.held += text
        else:
            self.released += text
            self.emit_text(text)


class AgentTurn:
    def __init__(self, session: Session, turn: int, prompt: str, emit: Emit, cancel: threading.Event) -> None:
        self.session = session
        self.turn = turn
        self.prompt = prompt
        self.emit = emit
        self.cancel = cancel
        self.t0 = time.perf_counter()
        self.chunks = 0
        self.first_chunk: float | None = None
        self.last_chunk: float | None = None
        self.calls: list[str] = []
        self.stats: AgentStats | None = None

    def _grounding(self) -> Grounding:
        service = self.session.service
        summary = service.summary() if service.has_run() else None
        known: set[str] | None = None

        def known_id(token: str) -> bool:
            nonlocal known
            if known is None:
                run = service.run if summary else None
                known = set() if run is None else {str(u) for u in run.user_ids} | {str(i) for i in run.item_ids}
            return token in known

        titles: set[str] | None = None

        def known_title(phrase: str) -> bool:
            nonlocal titles
            if titles is None:
                titles = set()
                items = (service.run.run_dir / "items.parquet") if summary else None
                if items is not None and items.exists():
                    import pandas as pd

                    frame = pd.read_parquet(items)
                    if "title" in frame:
                        titles = {str(t).strip().lower() for t in frame["title"].dropna()}
            return phrase.strip().lower() in titles

        return Grounding(self.prompt, summary, known_id, known_title)

    def _finish(self, outcome: str, reason: str | None = None) -> None:
        self.stats = AgentStats(self.chunks, self.first_chunk, self.last_chunk, tuple(self.calls), time.perf_counter() - self.t0, outcome, reason)

    def run(self) -> str:
        from assistant.registry import TOOL_NAMES

        settings = self.session.settings
        grounding = self._grounding()
        gate = AnswerGate(grounding, tuple(TOOL_NAMES), lambda text: self.emit(Token(self.turn, text)))
        with llm_budget(settings.llm_turn_seconds, "turn", self.cancel, agent_steps_only=True) as clock:
            try:
                self._stream(gate, grounding, clock)
                gate.flush()
                if not self.calls:
                    self._check_tool_less_answer(gate.held)
                gate.release_held()
            except Rejected as rejected:
                clock.stop(rejected.reason)
                return self._replace(gate, grounding, rejected)
            except (BudgetExceeded, Stopped) as exc:
                if self.cancel.is_set():
                    raise Cancelled() from None
                return self._replace(gate, grounding, Rejected("budget", f"was stopped: {exc.message}"))
        if not gate.released.strip() and grounding.tool_results:
            self.emit(Notice(self.turn, "the model wrote no answer after its tool calls; showing the tool results", "info"))
            text = grounding.rendering()
            self.session._stream(self.turn, text, self.emit, self.cancel)
            self._finish("replaced", "no answer after the tool calls")
            return text
        self._finish("answered")
        return gate.released.strip()

    def _check_tool_less_answer(self, answer: str) -> None:
        """A model that never calls tools cannot answer requests about the data: that is a capability gap."""
        if not answer.strip():
            raise Rejected("empty", "returned no answer and called no tool")
        route = self.session.router.route(self.prompt)
        if route.tool not in (None, "help"):
            raise Rejected("no_tool", f"answered without calling a tool, and this request needs {route.tool}")

    def _replace(self, gate: AnswerGate, grounding: Grounding, rejected: Rejected) -> str:
        if not grounding.tool_results:
            self._finish("router", rejected.reason)
            raise RouterFallback(f"the model {rejected.reason}; answering with the built-in router")
        self.emit(Notice(self.turn, f"the model's answer was replaced by the tool results: it {rejected.reason}"))
        shown = gate.released
        text = ("\n\n" if shown.strip() else "") + grounding.rendering()
        self.session._stream(self.turn, text, self.emit, self.cancel)
        self._finish("replaced", rejected.reason)
        return (shown + text).strip()

    def _stream(self, gate: AnswerGate, grounding: Grounding, clock) -> None:
        from langchain.agents import create_agent
        from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

        from assistant.agent_tools import make_langchain_tools
        from assistant.session import HISTORY_TURNS, user_text
        from prompts import load_prompt

        session = self.session
        model = session._chat_model or session.service.backend.chat_model()
        system = load_prompt("system").render({}, workspace=str(session.workspace))
        agent = create_agent(model, make_langchain_tools(session.toolbox), system_prompt=system)
        messages = []
        for role, content in session.history()[-2 * HISTORY_TURNS - 1 : -1]:
            messages.append(HumanMessage(content) if role == "user" else AIMessage(content))
        messages.append(HumanMessage(self.prompt))

        started: dict[str, tuple[str, float]] = {}
        pending_calls: set[str] = set()
        fed_this_step = False
        session.toolbox.progress = session._progress(self.turn, lambda: next(reversed(started), ""), self.emit, self.cancel)
        session.toolbox.stop_requested = self.cancel.is_set
        stream = agent.stream({"messages": messages}, stream_mode=["messages", "updates"])
        try:
            for mode, chunk in stream:
                if self.cancel.is_set():
                    raise Cancelled()
                clock.check()
                if mode == "messages":
                    msg, meta = chunk
                    if isinstance(msg, AIMessageChunk) and meta.get("langgraph_node") == "model":
                        now = time.perf_counter() - self.t0
                        self.chunks += 1
                        self.first_chunk = now if self.first_chunk is None else self.first_chunk
                        self.last_chunk = now
                        if isinstance(msg.content, str) and msg.content:
                            fed_this_step = True
                            gate.feed(msg.content)
                    continue
                for update in chunk.values():
                    for msg in (update or {}).get("messages", []):
                        meta = getattr(msg, "response_metadata", None) or {}
                        if isinstance(msg, AIMessage) and meta.get("model_provider") and not meta.get("finish_reason"):
                            # A provider always says why it stopped; silence means the stream broke.
                            raise RuntimeError("the model's stream ended before it finished")
                        if isinstance(msg, AIMessage) and msg.tool_calls:
                            gate.flush()
                            gate.release_held()
                            if gate.released and not gate.released.endswith("\n"):
                                gate.released += "\n\n"
                                self.emit(Token(self.turn, "\n\n"))
                            clock.pause()  # the tools' own time is not the model's
                            for call in msg.tool_calls:
                                self.calls.append(call["name"])
                                started[call["id"]] = (call["name"], time.perf_counter())
                                pending_calls.add(call["id"])
                                self.emit(ToolStarted(self.turn, call["id"], call["name"], dict(call.get("args") or {})))
                            fed_this_step = False
                        elif isinstance(msg, ToolMessage):
                            name, t0 = started.get(msg.tool_call_id, (msg.name or "tool", time.perf_counter()))
                            ok = getattr(msg, "status", "success") != "error" and not str(msg.content).startswith("Tool error:")
                            shown = user_text(str(msg.content))
                            grounding.add_tool_result(shown, ok)
                            self.emit(ToolFinished(self.turn, msg.tool_call_id, name, ok, shown, time.perf_counter() - t0, getattr(msg, "artifact", None)))
                            pending_calls.discard(msg.tool_call_id)
                            if not pending_calls:
                                clock.resume()
                        elif isinstance(msg, AIMessage):
                            if not fed_this_step and isinstance(msg.content, str) and msg.content:
                                gate.feed(msg.content)  # a model that does not stream tokens
                            if meta.get("finish_reason") == "length":
                                self.emit(Notice(self.turn, f"the model's answer reached its limit of {session.settings.llm_answer_tokens} tokens and was cut", "info"))
                            fed_this_step = False
        except BaseException as exc:
            # Stop the model's own thread first: closing the graph waits for it, and a stopped
            # stream is what makes the server stop generating.
            clock.stop(str(exc) or type(exc).__name__)
            raise
        finally:
            stream.close()
