"""Typed messages the app's thread workers post back to the UI thread.

A worker never touches a widget: it posts one of these (``post_message`` is
thread-safe) and the app hands the payload to the widget that renders it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from assistant.events import Event


class SessionEvent(Message):
    """One event of a turn (or of the session's preparation), as the session emitted it."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class SessionOpened(Message):
    """The session exists: its conversation so far, and what answers (the status bar shows it)."""

    def __init__(self, session: Any, history: list[tuple[str, str]], backend: str, first: bool) -> None:
        super().__init__()
        self.session = session
        self.history = history
        self.backend = backend
        self.first = first  # False when the session was rebuilt (a backend switch)


class SegmentsLoaded(Message):
    """The current run's segments (empty when the workspace has no run yet)."""

    def __init__(self, segments: list[dict], data: dict, embedder: str, colours: dict[int, str], run_key: str | None = None) -> None:
        super().__init__()
        self.run_key = run_key  # the run they belong to (an audit of another run is stale)
        self.segments = segments
        self.data = data
        self.embedder = embedder
        self.colours = colours


class SegmentDescribed(Message):
    """A segment's description (``SegmentDescription.as_dict()`` or a tool artifact of that shape)."""

    def __init__(self, description: dict) -> None:
        super().__init__()
        self.description = description


class MapReady(Message):
    """2-D coordinates of (a sample of) the users and the segment of each."""

    def __init__(self, points: list[tuple[float, float]], labels: list[int]) -> None:
        super().__init__()
        self.points = points
        self.labels = labels


class DriftLoaded(Message):
    """The current run's latest drift report (drift.json's content), or None when drift has not been run."""

    def __init__(self, report: dict | None) -> None:
        super().__init__()
        self.report = report
