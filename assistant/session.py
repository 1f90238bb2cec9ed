"""A conversation with one workspace: the turn lifecycle, events, and the history in SQLite.

A turn is answered by the agent when the backend can call tools, else by the
deterministic router; both emit the same events. If the agent's model fails
mid-turn, or cannot call tools, the router answers instead and a notice says so;
an agent answer that states what no tool result supports is replaced by the
tool results (assistant/agent_turn.py).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from assistant.config import Settings
from assistant.conversation import History, new_conversation_id
from assistant.events import (
    Event,
    Notice,
    Token,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    TurnCancelled,
    TurnDone,
    TurnFailed,
    TurnStarted,
)
from assistant.followup import Focus
from assistant.jobs import (
    Cancelled,  # raised inside tools (through progress callbacks) when the user cancels
)
from assistant.router import HELP, Route, Router
from assistant.service import WorkspaceService
from assistant.toolbox import Toolbox, ToolResult, run_tool
from tools.core.errors import SegscopeError

Emit = Callable[[Event], None]
HISTORY_TURNS = 6


def user_text(summary: str) -> str:
    """A tool summary as the user reads it: data fences become quotes (or nothing, around quoted prose)."""

    def unfence(match: re.Match) -> str:
        opening, inner, closing = match.groups()
        if opening and closing:  # the tool's own line quotes it already ('segment 4 “<data>…</data>”')
            return f"“{inner}”"
        quoted = inner if ("“" in inner or '"' in inner or len(inner) > 80) else f"“{inner}”"
        return f"{opening}{quoted}{closing}"

    text = re.sub(r"(“?)<data>(.*?)</data>(”?)", unfence, summary, flags=re.S)
    return markdown_paragraphs(text)


def markdown_paragraphs(text: str) -> str:
    """Blank lines between paragraphs and around lists, so Markdown keeps the lines apart."""
    out: list[str] = []
    item = re.compile(r"^(\s*[-*]\s|\s*\d+\.\s|\s{2,}\S)")
    for line in text.split("\n"):
        if out and out[-1] != "" and line.strip() and not (item.match(line) and item.match(out[-1])):
            out.append("")
        out.append(line)
    return "\n".join(out)


class Session:
    """``conversation``: None continues the workspace's latest conversation (a new one when there is none),
    "new" starts one, anything else is the id of one to continue."""

    def __init__(self, workspace: str | Path, settings: Settings, data_path: str | Path | None = None, service: WorkspaceService | None = None,
                 chat_model=None, conversation: str | None = None, router: Router | None = None) -> None:
        self.workspace = Path(workspace)
        self.settings = settings
        self.service = service or WorkspaceService(self.workspace, settings)
        self.data_path = Path(data_path) if data_path else None
        self.toolbox = Toolbox(self.service, self.data_path)
        self._chat_model = chat_model  # injected in tests; else the backend's
        self._router: Router | None = router  # injected in tests; else built on the workspace's embedder
        self._turns = itertools.count(1)
        self._history: History | None = None
        self._conversation = conversation
        self._focus: Focus | None = None
        self._lock = threading.Lock()
        self.last_agent_stats = None  # assistant.agent_turn.AgentStats of the last agent turn

    # -- identity ---------------------------------------------------------------
    @property
    def uses_agent(self) -> bool:
        return self._chat_model is not None or self.service.backend.info.supports_tools

    @property
    def responder(self) -> str:
        info = self.service.backend.info
        return f"agent ({info.name})" if self.uses_agent else f"router ({info.name})"

    @property
    def history_store(self) -> History:
        if self._history is None:
            path = self.workspace / ".segscope" / "history.sqlite"
            wanted = self._conversation
            if wanted not in (None, "new"):
                wanted = History(path).require(wanted)
            self._history = History(path, new_conversation_id() if wanted == "new" else wanted)
        return self._history

    @property
    def conversation_id(self) -> str:
        return self.history_store.conversation

    # -- follow-up state: what the conversation's last turns were about ---------------------
    @property
    def focus(self) -> Focus:
        if self._focus is None:
            self._focus = Focus.from_json(self.history_store.load_focus())
        return self._focus

    def _remembering(self, emit: Emit) -> Emit:
        """``emit``, noting what each successful agent tool call named, so follow-ups (and the router) know it."""
        started: dict[str, tuple[str, dict]] = {}

        def wrapped(event: Event) -> None:
            if isinstance(event, ToolStarted):
                started[event.call_id] = (event.name, dict(event.args))
            elif isinstance(event, ToolFinished) and event.ok and event.call_id in started:
                name, args = started.pop(event.call_id)
                try:
                    self._remember(name, args, event.artifact if isinstance(event.artifact, dict) else None)
                except (TypeError, ValueError):
                    pass  # a model's odd arguments never break the turn
            emit(event)

        return wrapped

    def _remember(self, tool: str, args: dict, artifact: dict | None) -> None:
        self._focus = self.focus.after(tool, args, artifact)
        self.history_store.save_focus(self._focus.to_json())

    def history(self) -> list[tuple[str, str]]:
        return self.history_store.messages()

    @property
    def router(self) -> Router:
        if self._router is None:
            from tools.embed.embedding import full_precision

            self.intent_embedder = embedder = full_precision(self.service.embedder)
            self._router = Router(lambda texts: embedder.encode(list(texts)))
        # Requests are grounded in the current run's ids and segments (none before the first run).
        self._router.use_resolver(self.toolbox.resolver if self.service.has_run() else None)
        return self._router

    # -- preparing the workspace ---------------------------------------------------
    def prepare(self, emit: Emit, cancel: threading.Event | None = None) -> None:
        """Make sure the workspace has a run: segment ``data_path`` (generating the sample when it is absent)."""
        if self.service.has_run() or self.data_path is None:
            self._warm_router()
            return
        turn = next(self._turns)
        prompt = f"segment {self.data_path}"
        emit(TurnStarted(turn, prompt, self.responder))
        try:
            if not self.data_path.exists():
                from tools.data.sample import generate_sample

                emit(Notice(turn, f"no data at {self.data_path}: writing the sample shop data there", "info"))
                generate_sample(self.data_path, seed=7)
            result = self._call(turn, "segment_users", {}, emit, cancel or threading.Event())
            emit(TurnDone(turn, user_text(result.summary)))
            self._warm_router()
        except Cancelled:
            emit(TurnCancelled(turn, prompt))
        except SegscopeError as exc:
            emit(TurnFailed(turn, prompt, exc.one_line()))

    def _warm_router(self) -> None:
        """Load the embedder and the router's examples now, so the first answer is quick."""
        if not self.uses_agent:
            self.router.scores("warm up")

    # -- a turn ---------------------------------------------------------------------
    def run_turn(self, prompt: str, emit: Emit, cancel: threading.Event) -> None:
        """Answer ``prompt`` (blocking); emits TurnStarted … then TurnDone, TurnFailed or TurnCancelled."""
        with self._lock:
            turn = next(self._turns)
            emit(TurnStarted(turn, prompt, self.responder))
            self.history_store.add("user", prompt)
            responder = self.responder
            try:
                if self.uses_agent:
                    from assistant.agent_turn import RouterFallback

                    try:
                        answer = self._agent_turn(turn, prompt, self._remembering(emit), cancel)
                    except RouterFallback as exc:  # a capability gap or a rejected answer, said in the notice
                        emit(Notice(turn, exc.notice))
                        responder = f"router (after {self.service.backend.info.name} fell back)"
                        answer = self._router_turn(turn, prompt, emit, cancel)
                    except (Cancelled, SegscopeError):
                        raise
                    except Exception as exc:  # the model failed: the router still answers
                        emit(Notice(turn, f"the LLM failed ({type(exc).__name__}: {str(exc)[:200]}); answering with the built-in router"))
                        responder = f"router (after {self.service.backend.info.name} failed)"
                        answer = self._router_turn(turn, prompt, emit, cancel)
                else:
                    answer = self._router_turn(turn, prompt, emit, cancel)
            except Cancelled:
                emit(TurnCancelled(turn, prompt))
                return
            except SegscopeError as exc:
                emit(TurnFailed(turn, prompt, exc.one_line()))
                return
            except Exception as exc:  # a bug: report it as a failed turn, never crash the UI
                emit(TurnFailed(turn, prompt, f"{type(exc).__name__}: {exc}"))
                return
            if cancel.is_set():
                emit(TurnCancelled(turn, prompt))
                return
            self.history_store.add("assistant", answer)
            emit(TurnDone(turn, answer, responder))

    @staticmethod
    def _progress(turn: int, call_id: Callable[[], str], emit: Emit, cancel: threading.Event) -> Callable[[str, int, int], None]:
        """A tool progress callback that reports progress and stops the tool when the turn is cancelled."""

        def progress(stage: str, done: int, total: int) -> None:
            if cancel.is_set():
                raise Cancelled()
            emit(ToolProgress(turn, call_id(), stage, done, total))

        return progress

    def _call(self, turn: int, name: str, args: dict, emit: Emit, cancel: threading.Event) -> ToolResult:
        call_id = f"{turn}-{name}-{time.perf_counter_ns()}"
        emit(ToolStarted(turn, call_id, name, dict(args)))

        self.toolbox.progress = self._progress(turn, lambda: call_id, emit, cancel)
        self.toolbox.stop_requested = cancel.is_set
        started = time.perf_counter()
        try:
            if cancel.is_set():
                raise Cancelled()
            result = run_tool(self.toolbox, name, args)
        except SegscopeError as exc:
            emit(ToolFinished(turn, call_id, name, False, exc.one_line(), time.perf_counter() - started))
            raise
        emit(ToolFinished(turn, call_id, name, True, user_text(result.summary), time.perf_counter() - started, result.artifact))
        return result

    def _stream(self, turn: int, text: str, emit: Emit, cancel: threading.Event) -> None:
        for piece in re.findall(r"\S+\s*|\s+", text):
            if cancel.is_set():
                raise Cancelled()
            emit(Token(turn, piece))

    def _router_turn(self, turn: int, prompt: str, emit: Emit, cancel: threading.Event) -> str:
        route: Route = self.router.route(prompt, self.focus)
        if not route.calls:
            answer = user_text(route.question or "Could you say that another way?")
        elif route.tool == "help":
            answer = HELP
        else:
            parts = []
            for call in route.calls:  # "segment into 5 groups and write a report": two calls, in order
                result = self._call(turn, call.tool, call.args, emit, cancel)
                self._remember(call.tool, call.args, result.artifact)
                parts.append(user_text(result.summary))
            answer = "\n\n".join(parts)
        self._stream(turn, answer, emit, cancel)
        return answer

    def _agent_turn(self, turn: int, prompt: str, emit: Emit, cancel: threading.Event) -> str:
        """The agent answers, bounded and checked (assistant/agent_turn.py); raises RouterFallback when it cannot."""
        from assistant.agent_turn import AgentTurn

        agent_turn = AgentTurn(self, turn, prompt, emit, cancel)
        try:
            return agent_turn.run()
        finally:
            self.last_agent_stats = agent_turn.stats


def event_to_dict(event: Event) -> dict:
    """Events as JSON-ready dicts (for `segscope ask --json`)."""
    out = {"event": type(event).__name__}
    for key, value in event.__dict__.items():
        try:
            json.dumps(value)
            out[key] = value
        except TypeError:
            out[key] = json.loads(json.dumps(value, default=str))
    return out
