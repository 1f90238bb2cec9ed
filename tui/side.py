"""The right-hand side: tabs for the tool trace, the segments (table + detail), the user map, drift and the fairness audit.

It owns the workers that read the workspace for those panes (segments, a
description, map coordinates). They run in threads and post messages back;
a worker's failure goes to the app's one error handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from tui.audit import AuditPanel
from tui.detail import SegmentDetail
from tui.drift import DriftView
from tui.map import SegmentMap
from tui.messages import DriftLoaded, MapReady, SegmentDescribed, SegmentsLoaded
from tui.segments import SegmentsTable
from tui.trace import ToolTrace

NO_RUN = "This workspace has no segmentation yet: ask the assistant to segment your data, or start with --data PATH."


class SidePanel(Vertical):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session: Any = None
        self.names: dict[int, str] = {}
        self.colours: dict[int, str] = {}
        self._map_stale = True

    def compose(self) -> ComposeResult:
        with TabbedContent(id="side-tabs", initial="segments"):
            with TabPane("Segments", id="segments"):
                yield SegmentsTable(id="segments-table")
                yield SegmentDetail(id="detail")
            with TabPane("Trace", id="trace"):
                yield ToolTrace(id="trace-log")
            with TabPane("Map", id="map"):
                yield SegmentMap(id="segment-map")
            with TabPane("Drift", id="drift"):
                yield DriftView(id="drift-view")
            with TabPane("Audit", id="audit"):
                yield AuditPanel(id="audit-panel")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active

    def show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        if self.app.focused is not None and self in self.app.focused.ancestors:
            # A focused widget in the pane being hidden would pull its tab straight back.
            tabs.query_one(Tabs).focus()
        tabs.active = tab

    # ------------------------------------------------------------------ workers
    def refresh_segments(self, session: Any, reload: bool) -> None:
        """Read the current run's segments again (``reload``: the workspace changed under the service)."""
        self.session = session
        self._load_segments(session, reload)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segments", description="loading the segments")
    def _load_segments(self, session: Any, reload: bool) -> None:
        service = session.service
        if reload:
            service.reload()
        if not service.has_run():
            self.post_message(SegmentsLoaded([], {}, service.settings.embedder, {}))
            return
        from tools.report.charts import (
            tree_colours,  # the report's palette, so the colours match it
        )

        summary = service.summary()  # not service.run: loading a large run's events would hold the GIL for seconds
        segments = list(summary["segments"])
        colours = tree_colours(segments)
        embedder = summary.get("parameters", {}).get("embedder", service.settings.embedder)
        self.post_message(SegmentsLoaded(segments, summary.get("data", {}), embedder, colours, summary.get("run_key")))

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail", description="describing the segment")
    def _describe(self, session: Any, segment_id: int) -> None:
        from tools.explain.describe import describe_segment

        service = session.service
        desc = describe_segment(service.run, segment_id, min_segment_size=service.settings.min_segment_size)
        self.post_message(SegmentDescribed(desc.as_dict()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="map", description="placing users on the map")
    def _load_map(self, session: Any) -> None:
        from tools.report.charts import map_coordinates

        run = session.service.run
        top = run.labels if run.top_labels is None else run.top_labels  # the map colours the top level
        points, labels = map_coordinates(run.fused, top, seed=int(run.summary["parameters"].get("seed", 0)))
        self.post_message(MapReady([tuple(p) for p in points.tolist()], [int(v) for v in labels.tolist()]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="drift", description="reading the latest drift")
    def _load_drift(self, session: Any) -> None:
        from tools.core.workspace import Workspace
        from tools.segment.drift_runs import read_drift

        ws = Workspace(session.service.workspace)
        self.post_message(DriftLoaded(read_drift(ws.require_run()) if ws.current_run() else None))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.app.worker_failed(event.worker)
        if event.worker.group == "detail" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.query_one(SegmentDetail).loading = False

    # ------------------------------------------------------------------ results
    def on_segments_loaded(self, message: SegmentsLoaded) -> None:
        # Not stopped: the app reads the data source and embedder from it for the status bar.
        self.names = {int(s["id"]): s.get("name") or f"Segment {s['id']}" for s in message.segments}
        self.colours = message.colours
        self.query_one(SegmentsTable).show(message.segments, message.colours)
        detail = self.query_one(SegmentDetail)
        if not message.segments:
            detail.clear(NO_RUN)
            self.query_one(SegmentMap).clear()
        elif detail.segment_id is not None and detail.segment_id not in self.names:
            detail.clear()
        audit = self.query_one(AuditPanel)
        if audit.audit is not None and (audit.audit.get("parameters") or {}).get("run_key") != message.run_key:
            audit.clear()  # it audited another run
        self._map_stale = True
        if message.segments and self.active == "map":
            self._load_map(self.session)

    @on(DataTable.RowSelected, "#segments-table")
    def _segment_selected(self, event: DataTable.RowSelected) -> None:
        if self.session is None or event.row_key.value is None:
            return
        self.query_one(SegmentDetail).show_loading()
        self._describe(self.session, int(event.row_key.value))

    def show_description(self, description: dict) -> None:
        sid = description.get("segment_id")
        self.query_one(SegmentDetail).show(description, self.colours.get(sid))
        if sid is not None:
            self.query_one(SegmentsTable).select_segment(int(sid))

    def show_audit(self, audit: dict) -> None:
        """An audit_segments result: into the Audit tab, which comes to the front."""
        self.query_one(AuditPanel).show(audit)
        self.show_tab("audit")

    def on_segment_described(self, message: SegmentDescribed) -> None:
        message.stop()
        self.show_description(message.description)

    def show_drift(self, report: dict) -> None:
        """A drift tool's result: shown at once (and kept by the run as drift.json)."""
        self.query_one(DriftView).show(report)

    def on_drift_loaded(self, message: DriftLoaded) -> None:
        message.stop()
        self.query_one(DriftView).show(message.report)

    @on(TabbedContent.TabActivated, "#side-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "drift" and self.query_one(DriftView).report is None and self.session is not None:
            self._load_drift(self.session)
        if event.pane.id == "map" and self._map_stale and self.names and self.session is not None:
            self._load_map(self.session)
        elif event.pane.id == "trace":  # it filled while hidden: open it on the latest calls
            trace = self.query_one(ToolTrace)
            trace.call_after_refresh(trace.scroll_end, animate=False)

    def on_map_ready(self, message: MapReady) -> None:
        message.stop()
        self._map_stale = False
        self.query_one(SegmentMap).show(message.points, message.labels, self.names, self.colours)


def data_label(data: dict) -> str:
    """'shop · 3,000 users' for the status bar."""
    source = str(data.get("source", "?"))
    return f"{Path(source).name or source} · {data.get('n_users', 0):,} users"
