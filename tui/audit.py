"""The fairness audit panel: per attribute, the association, the segments flagged as proxies, and recommendations by group.

Renders an ``AuditReport.as_dict()`` (the ``audit`` of an audit_segments tool artifact)
as it is: every number shown is a field of that dict, phrased by tools.explain.audit_text.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tools.explain.audit_text import association_line, feature_lines, fmt_ratio, headline, proxy_lines
from tools.explain.wording import fmt_pct

SHORT = {"worse recommendations": "worse recs", "better recommendations": "better recs",
         "more popular items shown": "more popular", "fewer popular items shown": "less popular"}
PLACEHOLDER = "Ask “is any segment a proxy for gender?” or “audit the segments for fairness” (or use the palette: audit) to fill this panel."


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold")


def _largest_departure(composition: dict) -> Text:
    """A segment's one most telling cell: the group whose share departs most from the population's."""
    shares = composition.get("shares") or []
    if not shares:
        return Text("—", style="dim")
    cell = max(shares, key=lambda s: (s.get("direction") is not None, abs(s["share"] - s["population_share"])))
    mark = {"over": (" ▲", "bold red"), "under": (" ▼", "bold red")}.get(cell.get("direction") or "", ("", ""))
    return Text.assemble(f"{cell['value']} {fmt_pct(cell['share'], 0)} vs {fmt_pct(cell['population_share'], 0)} ",
                         (fmt_ratio(cell["ratio"]), "dim"), mark)  # fmt: skip


def _composition(a: dict, min_users: int) -> Table:
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False, expand=False)
    table.add_column("segment", overflow="ellipsis", max_width=26)
    table.add_column("users", justify="right")
    table.add_column("most skewed group", overflow="fold")
    for c in a["compositions"]:
        few = Text(f" <{min_users}", style="yellow") if c["too_few"] else Text("")
        table.add_row(f"{c['segment_id']} {c['name']}", Text.assemble(f"{c['n_known']:,}", few), _largest_departure(c))
    return table


def _recommendations(a: dict, min_users: int) -> Table:
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False, expand=False)
    for name, justify in (("group", "left"), ("users", "right"), ("NDCG@10", "right"), ("gap", "right"), ("popular", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify, overflow="fold", max_width=18 if name == "group" else None)  # type: ignore[arg-type]
    for g in a["recommendations"]:
        if g["ndcg"] is None:
            table.add_row(g["value"], "0", "—", "—", "—", Text("no test user", style="dim"))
            continue
        gap = "—" if g["ndcg_gap"] is None else f"{g['ndcg_gap']:+.4f}"  # the verdict says whether it is significant
        popular = "—" if g.get("exposure") is None else fmt_pct(g["exposure"], 0)
        if g["too_few"]:
            verdict = Text(f"too few (<{min_users})", style="yellow")
        elif g.get("flags"):
            verdict = Text(", ".join(SHORT.get(f, f) for f in g["flags"]), style="bold red")
        else:
            verdict = Text("no gap", style="dim")
        table.add_row(g["value"], f"{g['n_test_users']:,}", f"{g['ndcg']:.4f}", gap, popular, verdict)
    return table


def render_audit(d: dict) -> Group:
    """The whole panel as one Rich renderable."""
    min_users = int((d.get("parameters") or {}).get("min_users", 30))
    parts: list = [Text("Fairness audit", style="bold"), Text(headline(d))]
    for name, why in d.get("skipped") or []:
        parts.append(Text(f"Not audited: {name}: {why}.", style="dim"))
    for note in d.get("notes") or []:
        if d.get("attributes"):
            parts.append(Text(note[0].upper() + note[1:] + ".", style="dim"))
    overall = d.get("recommendations")
    for a in d.get("attributes") or []:
        title = a["attribute"] + (f" ({a['banding']})" if a.get("banding") else "")
        parts += [_section(title), Text(association_line(a))]
        if a.get("small_groups"):
            parts.append(Text(f"Too few users (<{min_users}) to judge: {', '.join(a['small_groups'])}", style="yellow"))
        flagged = bool(a.get("proxies"))
        parts += [Text(line, style="bold red" if flagged else "green") for line in proxy_lines(a)]
        parts.append(_composition(a, min_users))
        parts += [Text(line, style="dim") for line in feature_lines(a)]
        if a.get("recommendations") is not None and overall is not None:
            parts.append(Text(f"Recommendations (everyone: NDCG@10 {overall['ndcg']:.4f}, "
                              f"{fmt_pct(overall['exposure'] or 0.0, 0)} of slots on the most popular items)", style="bold"))  # fmt: skip
            parts.append(_recommendations(a, min_users))
    return Group(*parts)


class AuditPanel(VerticalScroll):
    """The audit tab; ``audit`` is the dict it shows (None before an audit)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.audit: dict | None = None

    def compose(self):
        yield Static(PLACEHOLDER, classes="placeholder", id="audit-body")

    def show(self, audit: dict) -> None:
        self.audit = audit
        body = self.query_one("#audit-body", Static)
        body.set_class(False, "placeholder")
        body.update(render_audit(audit))
        self.scroll_home(animate=False)

    def clear(self, text: str = PLACEHOLDER) -> None:
        self.audit = None
        body = self.query_one("#audit-body", Static)
        body.add_class("placeholder")
        body.update(text)
