"""The segments of the current run as a table: one row per segment, its colour on the map beside it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable


class SegmentsTable(DataTable):
    """Rows keyed by segment id; Enter or a click selects one (the app then describes it)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, cursor_foreground_priority="renderable")  # keep the colour dots
        self.names: dict[int, str] = {}
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
        self._shown = (segments, colours)
        self.clear()
        self.names = {}
        room = self._name_room()
        for seg in segments:
            sid = int(seg["id"])
            name = seg.get("name") or f"Segment {sid}"
            self.names[sid] = name
            self.add_row(
                Text("●", style=colours.get(sid, "")),
                Text(str(sid), justify="right"),
                Text(f"{seg['size']:,}", justify="right"),
                Text(f"{seg['share']:.1%}", justify="right"),
                name if len(name) <= room else name[: room - 1] + "…",
                key=str(sid),
            )
        if current is not None and current in self.names:
            self.move_cursor(row=self.get_row_index(str(current)))

    def _name_room(self) -> int:
        """Cells left for the name column once the others are drawn (names are cut to fit, no sideways scroll)."""
        if not self.size.width:
            return 1_000
        others = sum(col.get_render_width(self) for key, col in self.columns.items() if key.value != "name")
        return max(8, self.size.width - others - 2 * self.cell_padding - self.scrollbar_size_vertical)

    def on_resize(self) -> None:
        if self._shown[0]:
            self.show(*self._shown)

    def selected_segment(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def select_segment(self, segment_id: int) -> None:
        if str(segment_id) in self.rows:
            self.move_cursor(row=self.get_row_index(str(segment_id)))
