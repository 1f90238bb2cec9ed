"""Rich renderings of a drift report (drift.json's content) for the CLI and the TUI: sizes and the migration matrix."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tools.explain.wording import fmt_pct


def migration_table(report: dict) -> Table:
    """Rows: segments before; columns: segments after; a cell counts the users who went from one to the other."""
    m = report["migration"]
    names = {s["current_id"]: s for s in report["segments"] if s["current_id"] is not None}
    shown = {c: str(names[c]["id"]) + ("" if names[c]["kept"] else "*") for c in m["columns"]}
    table = Table(title=f"migration: {report['users']['in_both']:,} users in both, {report['users']['moved']:,} moved")
    table.add_column("before \\ after", justify="right")
    for c in m["columns"]:
        table.add_column(shown[c], justify="right")
    table.add_column("total", justify="right")
    for b, row, total in zip(m["rows"], m["counts"], m["row_totals"]):
        table.add_row(str(b), *[f"{n:,}" if n else "·" for n in row], f"{total:,}")
    return table


def sizes_table(report: dict) -> Table:
    table = Table(title="segments before and after")
    for col, justify in (("id", "right"), ("name", "left"), ("before", "right"), ("after", "right"), ("change", "right"),
                         ("centroid moved", "right")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in report["segments"]:
        change = s["after_share"] - s["before_share"]
        shift = "—" if s["centroid_shift"] is None else f"{s['centroid_shift']:.2f}×spread"
        ident = str(s["id"]) if s["kept"] or s["current_id"] is None else f"{s['current_id']}*"
        table.add_row(ident, s["name"] or "—", f"{s['before']:,} ({fmt_pct(s['before_share'], 1)})",
                      f"{s['after']:,} ({fmt_pct(s['after_share'], 1)})", f"{100 * change:+.1f} pts", shift)
    return table


def top_moves(report: dict, limit: int = 5) -> list[tuple[int, int, int]]:
    """(count, from, to) of the largest moves that have named examples."""
    m = report["migration"]
    return sorted(((n, b, c) for b, row in zip(m["rows"], m["counts"]) for c, n in zip(m["columns"], row)
                   if f"{b}->{c}" in m["examples"]), reverse=True)[:limit]  # fmt: skip


def unusual_line(report: dict) -> str:
    un = report["unusual"]
    verdict = "a candidate new segment" if un["candidate"] else "no new segment"
    return (f"{un['beyond_p99']:,} of {un['pool']:,} users ({fmt_pct(un['share_beyond_p99'] or 0, 1)}, 1% expected) are "
            f"farther from their segment than 99% of the run's users: {verdict}")


def drift_group(report: dict) -> Group:
    """The whole report as one renderable: the comparison, sizes, migration, the largest moves, unusual users."""
    u = report["users"]
    head = Text(f"{report['before']} → {report['after']}\n{u['in_both']:,} users in both, {u['moved']:,} moved, "
                f"{u['left']:,} left, {u['new']:,} new; {report['matching']['kept']} of {report['matching']['segments']} "
                f"segments kept ({report['matching']['method']})")
    moves = [Text(f"{n:,} moved {b} → {c}, e.g. {', '.join(report['migration']['examples'][f'{b}->{c}'])}")
             for n, b, c in top_moves(report)]
    return Group(head, sizes_table(report), migration_table(report), *moves, Text(unusual_line(report)))
