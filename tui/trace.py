"""The tool trace: every call the assistant made, with its arguments, progress, time and result."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from assistant.events import ToolFinished, ToolProgress, ToolStarted

EMPTY = "No tool calls yet. Each call the assistant makes shows here: its arguments, how long it took, and what it returned."
MAX_ARGS_CHARS = 160
MAX_SUMMARY_LINES = 6


def format_args(args: dict[str, Any]) -> str:
    """``k=6, alpha=0.5`` — values as JSON would spell them, the whole line cut at MAX_ARGS_CHARS."""
    parts = []
    for key, value in args.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}={shown}")
    line = ", ".join(parts) or "no arguments"
    return line if len(line) <= MAX_ARGS_CHARS else line[: MAX_ARGS_CHARS - 1] + "…"


def format_duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class ToolCallView(Static):
    """One call: a header line (state, name, time), then indented its arguments and its progress or summary."""

    def __init__(self, started: ToolStarted) -> None:
        super().__init__(classes="call running")
        self.turn_id = started.turn_id
        self.call_id = started.call_id
        self.tool_name = started.name
        self.args = format_args(started.args)
        self.progress: str | None = None
        self.finished: ToolFinished | None = None
        self.stopped: str | None = None  # the turn ended before the call did ("cancelled", "failed")

    def on_mount(self) -> None:
        self.update(self.renderable())

    def head(self) -> Text:
        done = self.finished
        if done is not None:
            mark = ("✓ ", "bold green") if done.ok else ("✗ ", "bold red")
            return Text.assemble(mark, (self.tool_name, "bold"), ("  " + format_duration(done.duration_s), "dim"))
        if self.stopped:
            return Text.assemble(("✗ ", "bold yellow"), (self.tool_name, "bold"), (f"  {self.stopped}", "dim"))
        return Text.assemble(("⋯ ", "bold yellow"), (self.tool_name, "bold"), ("  running", "dim"))

    def body(self) -> Text:
        lines = [Text(self.args, style="dim")]
        done = self.finished
        if done is not None and done.summary:
            summary = done.summary.strip().splitlines()
            if len(summary) > MAX_SUMMARY_LINES:  # the chat has the full answer; the trace stays scannable
                summary = summary[: MAX_SUMMARY_LINES - 1] + [f"… {len(summary) - MAX_SUMMARY_LINES + 1} more lines"]
            lines += [Text(line, style="" if done.ok else "red") for line in summary]
        elif done is None and self.progress and not self.stopped:
            lines.append(Text(self.progress, style="italic"))
        return Text("\n").join(lines)

    def renderable(self) -> Group:
        return Group(self.head(), Padding(self.body(), (0, 0, 0, 2)))

    @property
    def plain(self) -> str:
        return self.head().plain + "\n" + self.body().plain

    def show_progress(self, event: ToolProgress) -> None:
        total = f"/{event.total}" if event.total else ""
        self.progress = f"{event.stage} {event.done}{total}"
        self.update(self.renderable())

    def show_finished(self, event: ToolFinished) -> None:
        self.finished = event
        self.set_class(False, "running")
        self.add_class("ok" if event.ok else "error")
        self.update(self.renderable())

    def show_stopped(self, why: str) -> None:
        self.stopped = why
        self.set_class(False, "running")
        self.add_class("stopped")
        self.update(self.renderable())


class ToolTrace(VerticalScroll):
    """Calls grouped by turn, newest at the bottom; follows new calls while scrolled to the end."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.calls: dict[str, ToolCallView] = {}

    def compose(self):
        yield Static(EMPTY, classes="empty")

    def _at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    async def _append(self, widget: Static) -> None:
        # Follow new calls only when the reader is already at the end (not anchored: a short trace stays at the top).
        follow = self._at_end()
        await self.mount(widget)
        if follow:
            self.scroll_end(animate=False)

    async def _clear_empty(self) -> None:
        for empty in self.query(".empty"):
            await empty.remove()

    async def turn_started(self, turn_id: int, prompt: str) -> None:
        await self._clear_empty()
        title = Text.assemble((f"turn {turn_id} ", "bold"), (prompt, "italic"))
        title.truncate(200, overflow="ellipsis")
        await self._append(Static(title, classes="turn"))

    async def tool_started(self, event: ToolStarted) -> None:
        await self._clear_empty()
        view = ToolCallView(event)
        self.calls[event.call_id] = view
        await self._append(view)

    def tool_progress(self, event: ToolProgress) -> None:
        if event.call_id in self.calls:
            self.calls[event.call_id].show_progress(event)

    async def tool_finished(self, event: ToolFinished) -> None:
        view = self.calls.get(event.call_id)
        if view is None:  # a finish without a start: still worth showing
            await self.tool_started(ToolStarted(event.turn_id, event.call_id, event.name, {}))
            view = self.calls[event.call_id]
        follow = self._at_end()
        view.show_finished(event)
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)

    def turn_ended(self, turn_id: int, why: str) -> None:
        """A turn was cancelled or failed: its calls still running will never finish."""
        for view in self.calls.values():
            if view.turn_id == turn_id and view.finished is None and view.stopped is None:
                view.show_stopped(why)
