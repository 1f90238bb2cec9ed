"""A run's segments as a tree, for display: plain Python on segments.json records (no heavy imports: the TUI uses it)."""

from __future__ import annotations


def tree_order(segments: list[dict]) -> list[tuple[dict, int, bool]]:
    """(segment, depth, is the last of its siblings) for displaying a run's segments as a tree.

    Each top-level segment (by id) comes before its sub-segments; a summary
    written before hierarchies (no ``parent`` fields) is all top level.
    """
    by_id = {int(s["id"]): s for s in segments}
    kids: dict[int, list[int]] = {sid: [] for sid in by_id}
    tops = []
    for sid, seg in sorted(by_id.items()):
        parent = seg.get("parent")
        if parent is None or int(parent) not in by_id:
            tops.append(sid)
        else:
            kids[int(parent)].append(sid)
    out: list[tuple[dict, int, bool]] = []

    def visit(sid: int, depth: int, last: bool) -> None:
        out.append((by_id[sid], depth, last))
        for i, child in enumerate(kids[sid]):
            visit(child, depth + 1, i == len(kids[sid]) - 1)

    for i, sid in enumerate(tops):
        visit(sid, 0, i == len(tops) - 1)
    return out


def tree_prefix(depth: int, last: bool) -> str:
    """'' for a top-level segment, '├ ' or '└ ' (indented) for a sub-segment."""
    return "" if depth == 0 else "  " * (depth - 1) + ("└ " if last else "├ ")
