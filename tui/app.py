"""The segscope terminal app: the conversation on the left; the tool trace, the segments and a map on the right.

``make_app`` is the composition root (tests reuse it with a scripted session).
Every blocking call runs in a thread worker that reports back with typed
messages; the widgets only render what the session and the workspace service
hand them. Nothing heavy is imported until the first screen has painted: the
session itself is built inside a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from assistant.events import (
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
from tui.chat import AnswerMessage, ChatView, PromptInput
from tui.commands import SegscopeCommands
from tui.messages import SegmentsLoaded, SessionEvent, SessionOpened
from tui.segments import SegmentsTable
from tui.side import NO_RUN, SidePanel, data_label
from tui.status import StatusBar
from tui.trace import ToolTrace

if TYPE_CHECKING:
    from assistant.config import Settings

SessionFactory = Callable[[Path, "Settings", "Path | None"], Any]

RELOAD_TOOLS = frozenset({"segment_users"})  # the workspace changed: drop the service's cached run
REFRESH_TOOLS = RELOAD_TOOLS | {"list_segments"}
DESCRIBE_TOOLS = frozenset({"describe_segment"})
DRIFT_TOOLS = frozenset({"segment_drift"})
AUDIT_TOOLS = frozenset({"audit_segments"})
# Commands that change the workspace go through the session as ordinary turns, so they show in the
# conversation and the trace, are logged, and can be cancelled. The router maps these phrasings.
RERUN_PROMPT = "Re-run the segmentation of this workspace's data."
REPORT_PROMPT = "Write an HTML report of the segments."
AUDIT_PROMPT = "Audit the segments for fairness."


def default_session_factory(workspace: Path, settings: Settings, data_path: Path | None) -> Any:
    from assistant.session import (
        Session,  # the heavy imports start here, inside the startup worker
    )

    return Session(workspace, settings, data_path)


class SegscopeApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "segscope"
    COMMANDS = {SegscopeCommands}  # it lists Textual's system commands too, after ours
    BINDINGS = [
        Binding("escape", "cancel_turn", "Cancel", id="turn.cancel"),
        Binding("ctrl+r", "rerun", "Re-run", id="segment.rerun"),
        Binding("f2", "write_report", "Report", id="report.write"),
        Binding("f3", "show_map", "Map", id="segments.map"),
        Binding("f4", "show_drift", "Drift", id="segments.drift"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.palette", show=False, priority=True),  # the footer shows it on the right
    ]

    busy: reactive[bool] = reactive(True, init=False)
    """True while the session opens, prepares, or answers: the prompt is locked."""

    def __init__(self, workspace: Path, settings: Settings, data_path: Path | None = None,
                 session_factory: SessionFactory | None = None) -> None:
        super().__init__()
        self.workspace = Path(workspace)
        self.settings = settings
        self.data_path = data_path
        self.session_factory = session_factory or default_session_factory
        self.session: Any = None
        self.backend_label = settings.llm
        self._first_llm = settings.llm
        self._session_llm = settings.llm  # the backend of the session in use (a switch may fail)
        self._cancel: threading.Event | None = None
        self._prompt = ""  # the running turn's prompt, restored if the worker itself dies
        self._answers: dict[int, AnswerMessage] = {}

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-pane"):
                yield ChatView(id="chat")
                yield PromptInput()
            yield SidePanel(id="side")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.backend = self.settings.llm
        status.embedder = self.settings.embedder
        status.state = "opening the workspace…"
        self.query_one(PromptInput).lock_for("Opening the workspace…")
        self._open_session(self.settings, first=True)

    def watch_busy(self, busy: bool) -> None:
        if not busy:
            self.query_one(PromptInput).locked = False
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_turn":
            return True if self.busy and self._cancel is not None else None
        if action in ("rerun", "write_report"):
            return None if self.busy or self.session is None else True
        return True

    def show_tab(self, tab: str) -> None:
        self.query_one(SidePanel).show_tab(tab)

    # ------------------------------------------------------------------ workers (threads; they only post messages)
    def _emit(self, event: Any) -> None:
        self.post_message(SessionEvent(event))  # post_message is thread-safe

    @work(thread=True, exclusive=True, exit_on_error=False, group="session", name="open", description="opening the workspace")
    def _open_session(self, settings: Settings, first: bool) -> None:
        session = self.session_factory(self.workspace, settings, self.data_path)
        history = session.history() if first else []
        self.post_message(SessionOpened(session, history, session.service.backend.info.label(), first))

    @work(thread=True, exclusive=True, exit_on_error=False, group="turn", name="prepare", description="preparing the workspace")
    def _prepare(self, session: Any, cancel: threading.Event) -> None:
        session.prepare(self._emit, cancel=cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="turn", name="turn", description="answering")
    def _run_turn(self, session: Any, prompt: str, cancel: threading.Event) -> None:
        session.run_turn(prompt, self._emit, cancel)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            self.worker_failed(worker)
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "turn":
            self._cancel = None
            self.busy = False
            status = self.query_one(StatusBar)
            if status.state not in ("failed", "cancelled"):
                status.state = "ready"
            if worker.name == "prepare" and self.session is not None:
                self.query_one(SidePanel).refresh_segments(self.session, reload=True)

    def worker_failed(self, worker: Worker) -> None:
        """A worker raised: one notification (a SegscopeError is the user's to fix; anything else is a bug)."""
        from tools.core.errors import SegscopeError

        error = worker.error
        if isinstance(error, SegscopeError):
            message = error.one_line()
        else:
            message = f"{type(error).__name__}: {error} (this is a bug in segscope)"
            self.log.error(f"worker {worker.name!r} failed", error)
        self.notify(message, title=f"{worker.description} failed", severity="error", timeout=12)
        status = self.query_one(StatusBar)
        if worker.group == "session" and self.session is not None:  # a backend switch failed: keep the old session
            self.settings = self.settings.model_copy(update={"llm": self._session_llm})
            status.state = "ready"
            self.busy = False
        elif worker.group == "session":
            status.state = "failed"
            self.query_one(PromptInput).lock_for("No session: see the error above")
            self.call_later(self.query_one(ChatView).add_note, f"Could not open the workspace: {message}", "error")
        elif worker.group == "turn":
            status.state = "failed"
            if worker.name == "turn":
                self._restore_prompt(self._prompt)
            self.call_later(self._abandon_turns, f"The turn failed: {message}")

    async def _abandon_turns(self, note: str) -> None:
        """The session died mid-turn: no event will close its answers and calls, so close them here."""
        for turn_id in list(self._answers):
            await self._end_answer(turn_id, "failed")
            self.query_one(ToolTrace).turn_ended(turn_id, "failed")
        await self.query_one(ChatView).add_note(note, "error")

    # ------------------------------------------------------------------ session lifecycle
    async def on_session_opened(self, message: SessionOpened) -> None:
        self.session = message.session
        self._session_llm = self.settings.llm
        self.backend_label = message.backend
        status = self.query_one(StatusBar)
        status.backend = message.backend
        status.responder = message.session.responder
        if not message.first:
            status.state = "ready"
            self.busy = False
            self.notify(f"Answers now come from {message.session.responder}.", title="backend switched")
            return
        await self.query_one(ChatView).show_history(message.history, message.session.responder)
        status.state = "preparing…"
        self.query_one(PromptInput).lock_for("Preparing the workspace…  (Esc to cancel)")
        self._cancel = threading.Event()
        self._prepare(message.session, self._cancel)

    async def on_session_event(self, message: SessionEvent) -> None:
        ev = message.event
        chat, trace, status = self.query_one(ChatView), self.query_one(ToolTrace), self.query_one(StatusBar)
        if isinstance(ev, TurnStarted):
            status.responder = ev.responder
            status.state = "answering…"
            answer = self._answers[ev.turn_id] = await chat.add_answer(ev.responder)
            answer.set_state("answering…")
            await trace.turn_started(ev.turn_id, ev.prompt)
        elif isinstance(ev, Token):
            await (await self._answer(ev.turn_id)).append(ev.text)
        elif isinstance(ev, ToolStarted):
            await trace.tool_started(ev)
            status.state = f"running {ev.name}…"
            (await self._answer(ev.turn_id)).set_state(f"running {ev.name}…")
        elif isinstance(ev, ToolProgress):
            trace.tool_progress(ev)
            total = f"/{ev.total}" if ev.total else ""
            status.state = f"{ev.stage} {ev.done}{total}"
            (await self._answer(ev.turn_id)).set_state(status.state + "…")
        elif isinstance(ev, ToolFinished):
            await trace.tool_finished(ev)
            status.state = "answering…"
            (await self._answer(ev.turn_id)).set_state("answering…")
            self._tool_result(ev)
        elif isinstance(ev, TurnDone):
            answer = self._answers.pop(ev.turn_id, None)
            if answer is None and ev.answer.strip():
                answer = await chat.add_answer(status.responder)
            if answer is not None:
                await answer.finish(ev.answer)
                answer.set_state("")
            status.state = "ready"
        elif isinstance(ev, TurnFailed):
            await self._end_answer(ev.turn_id, "failed")
            trace.turn_ended(ev.turn_id, "failed")
            await chat.add_note(f"The turn failed: {ev.error}", "error")
            self._restore_prompt(ev.prompt)
            status.state = "failed"
        elif isinstance(ev, TurnCancelled):
            await self._end_answer(ev.turn_id, "cancelled")
            trace.turn_ended(ev.turn_id, "cancelled")
            restored = self._restore_prompt(ev.prompt)
            await chat.add_note("Cancelled. Your prompt is back in the box." if restored else "Cancelled.", "cancelled")
            status.state = "cancelled"
        elif isinstance(ev, Notice):
            severity = {"error": "error", "warning": "warning"}.get(ev.level, "information")
            self.notify(ev.text, severity=severity, timeout=8)
            await chat.add_note(ev.text, "notice")

    async def _answer(self, turn_id: int) -> AnswerMessage:
        """The answer being written for ``turn_id`` (made on the fly if the turn never said it started)."""
        if turn_id not in self._answers:
            self._answers[turn_id] = await self.query_one(ChatView).add_answer(self.query_one(StatusBar).responder)
        return self._answers[turn_id]

    async def _end_answer(self, turn_id: int, state: str) -> None:
        answer = self._answers.pop(turn_id, None)
        if answer is not None:
            await answer.finish()
            if answer.text.strip():
                answer.set_state(state)
            else:  # nothing was said: the note below tells what happened
                await answer.remove()

    def _restore_prompt(self, prompt: str) -> bool:
        """Put ``prompt`` back in the box, unless the user has typed something new there meanwhile."""
        box = self.query_one(PromptInput)
        if box.value.strip():
            return False
        box.value = prompt
        box.cursor_position = len(prompt)
        return True

    def _tool_result(self, ev: ToolFinished) -> None:
        if not ev.ok or self.session is None:
            return
        if ev.name in REFRESH_TOOLS:
            self.query_one(SidePanel).refresh_segments(self.session, reload=ev.name in RELOAD_TOOLS)
        if ev.name in DRIFT_TOOLS and isinstance(ev.artifact, dict) and isinstance(ev.artifact.get("drift"), dict):
            self.query_one(SidePanel).show_drift(ev.artifact["drift"])
        if ev.name in DESCRIBE_TOOLS and isinstance(ev.artifact, dict):
            desc = ev.artifact.get("description", ev.artifact)  # the toolbox nests it; accept it bare too
            if isinstance(desc, dict) and "segment_id" in desc:
                self.query_one(SidePanel).show_description(desc)
        if ev.name in AUDIT_TOOLS and isinstance(ev.artifact, dict) and isinstance(ev.artifact.get("audit"), dict):
            self.query_one(SidePanel).show_audit(ev.artifact["audit"])

    # ------------------------------------------------------------------ the prompt
    @on(Input.Submitted, "#prompt")
    async def _submit(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            return
        if self.busy or self.session is None:
            self.notify("Still working: your text stays in the box until this turn ends (Esc cancels it).", severity="warning")
            return
        event.input.value = ""
        await self._start_turn(prompt)

    async def _start_turn(self, prompt: str) -> None:
        await self.query_one(ChatView).add_user(prompt)
        self._prompt = prompt
        self._cancel = threading.Event()
        self.query_one(PromptInput).lock_for("Answering…  (Esc to cancel)")
        self.query_one(StatusBar).state = "answering…"
        self.busy = True
        self._run_turn(self.session, prompt, self._cancel)

    def action_cancel_turn(self) -> None:
        if not self.busy or self._cancel is None or self._cancel.is_set():
            return
        self._cancel.set()  # the session checks it between steps and ends the turn with TurnCancelled
        self.query_one(StatusBar).state = "cancelling…"
        for answer in self._answers.values():
            answer.set_state("cancelling…")

    # ------------------------------------------------------------------ the side panel's news
    def on_segments_loaded(self, message: SegmentsLoaded) -> None:
        status = self.query_one(StatusBar)
        status.embedder = message.embedder
        if message.data:
            status.data = data_label(message.data)

    # ------------------------------------------------------------------ commands
    async def action_quit(self) -> None:
        # A thread cannot be killed, and Python waits for it at exit: ask the running turn to stop first.
        if self._cancel is not None:
            self._cancel.set()
        await super().action_quit()

    def action_show_map(self) -> None:
        self.show_tab("map")

    def action_show_drift(self) -> None:
        self.show_tab("drift")

    async def action_rerun(self) -> None:
        if self.busy or self.session is None:
            self.notify("Wait for the current turn to finish (or Esc to cancel it).", severity="warning")
            return
        await self._start_turn(RERUN_PROMPT)

    async def action_write_report(self) -> None:
        await self._ask_about_run(REPORT_PROMPT)

    async def action_audit(self) -> None:
        await self._ask_about_run(AUDIT_PROMPT)

    async def action_export_segment(self) -> None:
        """The selected segment's members (every user when none is selected) as a CSV in the workspace's exports folder."""
        sid = self.query_one(SegmentsTable).selected_segment()
        await self._ask_about_run(f"/export {sid} csv" if sid is not None else "/export all csv")

    async def _ask_about_run(self, prompt: str) -> None:
        """A turn on the current run (report, audit): refused while busy or before there is a run."""
        if self.busy or self.session is None:
            self.notify("Wait for the current turn to finish (or Esc to cancel it).", severity="warning")
            return
        if not self.query_one(SidePanel).names:
            self.notify(NO_RUN, severity="warning")
            return
        await self._start_turn(prompt)

    def action_show_backend(self) -> None:
        responder = self.session.responder if self.session is not None else "—"
        self.notify(
            f"LLM backend: {self.backend_label}\nAnswers: {responder}\n"
            "Set SEGSCOPE_LLM or `llm` in config.toml to change it for the next start.",
            title="backend",
            timeout=10,
        )

    def backend_choices(self) -> list[str]:
        """Backends this session can switch to live: the built-in one, and the one it started with."""
        return [c for c in dict.fromkeys(("extractive", self._first_llm)) if c != self.settings.llm]

    def switch_backend(self, llm: str) -> None:
        if self.busy:
            self.notify("Wait for the current turn to finish before switching.", severity="warning")
            return
        self.settings = self.settings.model_copy(update={"llm": llm})
        self.query_one(StatusBar).state = f"switching to {llm}…"
        self.query_one(PromptInput).lock_for("Switching the LLM backend…")
        self.busy = True
        self._open_session(self.settings, first=False)


def make_app(workspace: Path | str, settings: Settings, data_path: Path | str | None = None,
             session_factory: SessionFactory | None = None) -> SegscopeApp:
    """The app wired to a workspace: the CLI and the tests both build it here."""
    return SegscopeApp(Path(workspace), settings, Path(data_path) if data_path is not None else None, session_factory)


def run_tui(workspace: Path | str, data_path: Path | str | None, settings: Settings) -> None:
    """Open the TUI on ``workspace`` (segmenting ``data_path`` first if the workspace has no run)."""
    make_app(workspace, settings, data_path).run()
