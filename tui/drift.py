"""The Drift tab: the run's latest drift (who moved between segments, sizes, users who fit no segment), as it was computed."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

PLACEHOLDER = "No drift yet: ask e.g. “who moved between segments since last month?”, or run `segscope drift`."


class DriftView(VerticalScroll):
    """Renders a drift report (drift.json's content); every number shown is a field of it."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: dict | None = None

    def compose(self):
        yield Static(PLACEHOLDER, id="drift-body")

    def show(self, report: dict | None) -> None:
        from assistant.render_drift import drift_group

        self.report = report
        self.query_one("#drift-body", Static).update(PLACEHOLDER if report is None else drift_group(report))
