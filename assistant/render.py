"""Rich renderings of tool results for the terminal (the CLI; the TUI has its own widgets)."""

from __future__ import annotations

from rich.table import Table


def format_trait(trait: dict) -> str:
    """'share of activity in Electronics 0.62 (5.2× overall)' from a trait record."""
    value = trait["segment_value"]
    unit = trait["unit"]
    shown = f"{value:.0%}" if unit == "share" else f"{value:,.1f}"
    lift = trait.get("lift")
    if lift is None:
        return f"{trait['label']} {shown}"
    return f"{trait['label']} {shown} ({lift:.1f}× overall)"


def segments_table(summary: dict, max_traits: int = 2) -> Table:
    data = summary["data"]
    title = f"{summary['k']} segments of {data['n_users']:,} users — {data['source']}"
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("id", justify="right")
    table.add_column("name")
    table.add_column("users", justify="right")
    table.add_column("share", justify="right")
    table.add_column("keywords", max_width=40)
    table.add_column("defining traits", max_width=60)
    for seg in summary["segments"]:
        table.add_row(
            str(seg["id"]),
            seg.get("name") or "—",
            f"{seg['size']:,}",
            f"{seg['share']:.1%}",
            ", ".join(seg["keywords"][:6]),
            "; ".join(format_trait(t) for t in seg["traits"][:max_traits]),
        )
    return table
