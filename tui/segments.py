"""The segments of the current run as a table: one row per segment, its colour on the map beside it.

A run with sub-segments shows its top level first: a ▸ before a name means
it has sub-segments; → (or +) opens them under it, ← (or -) folds them again,
space toggles. Enter or a click selects a row, sub-segment or not.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from tools.segment.tree import tree_order, tree_prefix

OPEN, CLOSED = "▾ ", "▸ "


class SegmentsTable(DataTable):
    """Rows keyed by segment id; Enter or a click selects one (the app then describes it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,plus", "expand", "Open sub-segments", show=False),
        Binding("left,minus", "collapse", "Fold sub-segments", show=False),
        Binding("space", "toggle", "Open/fold sub-segments", show=False),
    ]

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, cursor_foreground_priority="renderable")  # keep the colour dots
        self.names: dict[int, str] = {}
        self.expanded: set[int] = set()
        self._parents: dict[int, int | None] = {}
        self._children: dict[int, list[int]] = {}
        self._shown: tuple[list[dict], dict[int, str]] = ([], {})

    def on_mount(self) -> None:
        self.add_column("", key="colour", width=1)
        self.add_column("id", key="id")
        self.add_column("users", key="users")
        self.add_column("share", key="share")
        self.add_column("name", key="name")  # last: a long name is cut at the edge, never the numbers

    def show(self, segments: list[dict], colours: dict[int, str]) -> None:
        """Replace the rows, keeping the cursor on the same segment when it still exists."""
        current = self.selected_segment()
        if segments != self._shown[0]:
            ids = {int(s["id"]) for s in segments}
            self.expanded &= ids
        self._shown = (segments, colours)
        self._parents = {int(s["id"]): (None if s.get("parent") is None else int(s["parent"])) for s in segments}
        self._children = {int(s["id"]): [int(c) for c in s.get("children") or ()] for s in segments}
        self.names = {int(s["id"]): s.get("name") or f"Segment {s['id']}" for s in segments}
        self._draw(current)

    def _draw(self, keep: int | None) -> None:
        segments, colours = self._shown
        self.clear()
        room = self._name_room()
        for seg, depth, last in tree_order(segments):
            sid = int(seg["id"])
            parent = self._parents.get(sid)
            if parent is not None and parent not in self.expanded:
                continue
            marker = (OPEN if sid in self.expanded else CLOSED) if self._children.get(sid) else ""
            name = tree_prefix(depth, last) + marker + self.names[sid]
            self.add_row(
                Text("●", style=colours.get(sid, "")),
                Text(str(sid), justify="right"),
                Text(f"{seg['size']:,}", justify="right"),
                Text(f"{seg['share']:.1%}", justify="right"),
                name if len(name) <= room else name[: room - 1] + "…",
                key=str(sid),
            )
        if keep is not None and str(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep)))

    def _name_room(self) -> int:
        """Cells left for the name column once the others are drawn (names are cut to fit, no sideways scroll)."""
        if not self.size.width:
            return 1_000
        others = sum(col.get_render_width(self) for key, col in self.columns.items() if key.value != "name")
        return max(8, self.size.width - others - 2 * self.cell_padding - self.scrollbar_size_vertical)

    def on_resize(self) -> None:
        if self._shown[0]:
            self._draw(self.selected_segment())

    # -- opening and folding ------------------------------------------------
    def expand(self, segment_id: int) -> None:
        """Show ``segment_id``'s sub-segments under it (nothing for a segment without any)."""
        if self._children.get(segment_id) and segment_id not in self.expanded:
            self.expanded.add(segment_id)
            self._draw(self.selected_segment())

    def collapse(self, segment_id: int) -> None:
        """Fold the sub-segments of ``segment_id`` (or of its parent, for a sub-segment) back into it."""
        top = self._parents.get(segment_id)
        target = segment_id if top is None else top
        if target in self.expanded:
            self.expanded.discard(target)
            self._draw(target)

    def action_expand(self) -> None:
        sid = self.selected_segment()
        if sid is not None:
            self.expand(sid)

    def action_collapse(self) -> None:
        sid = self.selected_segment()
        if sid is not None:
            self.collapse(sid)

    def action_toggle(self) -> None:
        sid = self.selected_segment()
        if sid is None:
            return
        if sid in self.expanded or self._parents.get(sid) is not None:
            self.collapse(sid)
        else:
            self.expand(sid)

    # -- selection ----------------------------------------------------------
    def selected_segment(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def select_segment(self, segment_id: int) -> None:
        """Put the cursor on a segment, opening its parent first when it is a folded sub-segment."""
        parent = self._parents.get(segment_id)
        if parent is not None and parent not in self.expanded:
            self.expanded.add(parent)
            self._draw(segment_id)
        if str(segment_id) in self.rows:
            self.move_cursor(row=self.get_row_index(str(segment_id)))
