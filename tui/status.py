"""The status bar: where the data comes from, which models answer, and what the app is doing now."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLES = {"ready": "green", "failed": "red", "cancelled": "yellow"}


class StatusBar(Static):
    data: reactive[str] = reactive("no data yet")
    embedder: reactive[str] = reactive("—")
    backend: reactive[str] = reactive("—")
    responder: reactive[str] = reactive("—")
    state: reactive[str] = reactive("starting…")

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)

    def render(self) -> Text:
        # The state first and the long backend label last: a narrow terminal cuts the least useful end.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" ● ", style=STATE_STYLES.get(self.state, "yellow"))
        text.append(self.state)
        for label, value in (("answers", self.responder), ("data", self.data), ("embedder", self.embedder), ("LLM", self.backend)):
            text.append("  │ ", style="dim")
            text.append(f"{label} ", style="dim")
            text.append(value)
        return text

    @property
    def plain(self) -> str:
        return self.render().plain
