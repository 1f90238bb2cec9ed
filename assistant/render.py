"""Rich renderings of tool results for the terminal (the CLI; the TUI has its own widgets)."""

from __future__ import annotations

from rich.table import Table

from tools.explain.wording import Voice, fmt_compact, fmt_lift, fmt_pct
from tools.segment.tree import tree_order, tree_prefix


def format_trait(trait: dict, currency: str | None = None, versus: str = "overall") -> str:
    """'share of activity in Electronics 62% (5.2× overall)' from a trait record; money in ``currency``."""
    value = trait["segment_value"]
    unit = trait["unit"]
    shown = fmt_compact(value, unit, currency)
    lift = trait.get("lift")
    if lift is None:
        return f"{trait['label']} {shown}"
    return f"{trait['label']} {shown} ({fmt_lift(lift)} {versus})"


def segments_title(summary: dict) -> str:
    """'4 segments (11 sub-segments) of 3,000 users — shop', or '6 segments of …' for a flat run."""
    data = summary["data"]
    segs = summary["segments"]
    tops = [s for s in segs if s.get("parent") is None]
    subs = len(segs) - len(tops)
    count = f"{len(tops)} segments ({subs} sub-segments)" if subs else f"{summary['k']} segments"
    return f"{count} of {data['n_users']:,} {Voice.of(summary).member(2)} — {data['source']}"


def outliers_note(summary: dict) -> str | None:
    """The run's outliers in one line (how many, why, and whether they were fitted), or None when none were judged."""
    from tools.data.outliers import outliers_line

    return outliers_line((summary.get("data") or {}).get("outliers"), Voice.of(summary).member(2))


def segments_table(summary: dict, max_traits: int = 2) -> Table:
    """The run's segments as a tree: each top-level segment, then its sub-segments (with what sets them apart within it)."""
    data = summary["data"]
    members = Voice.of(summary).member(2)  # users, sessions or messages
    table = Table(title=segments_title(summary), show_lines=False, expand=False)
    table.add_column("id", justify="right")
    table.add_column("name")
    table.add_column(members, justify="right")
    table.add_column("share", justify="right")
    table.add_column("keywords", max_width=40)
    table.add_column("defining traits", max_width=60)
    for seg, depth, last in tree_order(summary["segments"]):
        traits = seg.get("traits_vs_parent") if depth else None
        table.add_row(
            str(seg["id"]),
            tree_prefix(depth, last) + (seg.get("name") or "—"),
            f"{seg['size']:,}",
            fmt_pct(seg["share"], 1),
            ", ".join(seg["keywords"][:6]),
            "; ".join(format_trait(t, data.get("currency"), "within parent" if traits else "overall")
                      for t in (traits or seg["traits"])[:max_traits]),
        )
    return table


def _trait_rows(table: Table, traits) -> None:
    for t in traits:
        d = t if isinstance(t, dict) else t.as_dict()
        lift = d.get("lift")
        table.add_row(d["label"], fmt_compact(d["segment_value"], d["unit"]), fmt_compact(d["population_value"], d["unit"]), "—" if lift is None else fmt_lift(lift))


def description_panel(desc):
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    traits = Table(title="defining traits", show_header=True, expand=False)
    for col in ("trait", "segment", "overall", "lift"):
        traits.add_column(col, justify="right" if col != "trait" else "left")
    _trait_rows(traits, desc.traits)
    parts = [Text(desc.narrative), Text("")]
    if desc.parent is not None:
        parts.append(Text(f"part of segment {desc.parent.segment_id}: {desc.parent.name} ({desc.parent.size:,} users)"))
        if desc.siblings:
            parts.append(Text("sibling sub-segments: " + "; ".join(f"{s.segment_id} {s.name} ({s.size:,})" for s in desc.siblings)))
        if desc.traits_vs_parent:
            within = Table(title=f"what sets it apart within segment {desc.parent.segment_id}", show_header=True, expand=False)
            for col in ("trait", "segment", "parent", "lift"):
                within.add_column(col, justify="right" if col != "trait" else "left")
            _trait_rows(within, desc.traits_vs_parent)
            parts += [within, Text("")]
    if desc.children:
        kids = Table(title="sub-segments", show_header=True, expand=False)
        for col in ("id", "name", "users", "share"):
            kids.add_column(col, justify="right" if col in ("id", "users", "share") else "left")
        for child in desc.children:
            kids.add_row(str(child.segment_id), child.name, f"{child.size:,}", f"{child.share:.1%}")
        parts += [kids, Text("")]
    parts.append(traits)
    if desc.keywords:
        parts.append(Text("keywords: " + ", ".join(desc.keywords)))
    if desc.typical_items:
        items = Table(title="typical items", expand=False)
        for col in ("item", "title", "interactions", "lift"):
            items.add_column(col)
        for it in desc.typical_items:
            d = it.__dict__ if hasattr(it, "__dict__") else dict(it)
            items.add_row(str(d.get("item_id")), str(d.get("title")), str(d.get("count")), fmt_lift(d.get("lift", 0)))
        parts.append(items)
    if desc.representative_user_ids:
        parts.append(Text("representative users: " + ", ".join(desc.representative_user_ids)))
    for text in desc.representative_texts[:5]:
        parts.append(Text(f"  “{text}”", style="italic"))
    if desc.contrastive_user_ids:
        parts.append(Text("nearest users of other segments (contrast): " + ", ".join(desc.contrastive_user_ids)))
    if desc.note:
        parts.append(Text(desc.note, style="yellow"))
    title = f"segment {desc.segment_id}: {desc.name} — {desc.size:,} users ({fmt_pct(desc.share, 1)})"
    return Panel(Group(*parts), title=title, title_align="left")


def comparison_panel(cmp):
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    table = Table(expand=False)
    table.add_column("trait")
    table.add_column(f"{cmp.a.name}", justify="right")
    table.add_column(f"{cmp.b.name}", justify="right")
    table.add_column("ratio", justify="right")
    for d in cmp.differences:
        dd = d.__dict__
        unit = dd.get("unit", "")
        ratio = dd.get("ratio")
        table.add_row(dd["label"], fmt_compact(dd["value_a"], unit), fmt_compact(dd["value_b"], unit), "—" if ratio is None else fmt_lift(ratio))
    parts = [Text(cmp.narrative), table]
    if cmp.keywords_only_a:
        parts.append(Text(f"only {cmp.a.name}: " + ", ".join(cmp.keywords_only_a)))
    if cmp.keywords_only_b:
        parts.append(Text(f"only {cmp.b.name}: " + ", ".join(cmp.keywords_only_b)))
    return Panel(Group(*parts), title=f"segment {cmp.a.segment_id} vs segment {cmp.b.segment_id}", title_align="left")


def recommendations_table(user_id: str, segment: dict, recs):
    """A table of items; with explanations, each one follows below the table, numbered."""
    from rich.console import Group
    from rich.text import Text

    table = Table(title=f"recommendations for user {user_id} — segment {segment['id']}: {segment.get('name') or ''}", expand=False)
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("title")
    table.add_column("score", justify="right")
    explained = any(r.explanation for r in recs)
    if explained:
        table.add_column("verified")
    for i, r in enumerate(recs, 1):
        row = [str(i), r.item_id, r.title, f"{r.score:.3f}"]
        if explained:
            row.append("✓" if r.verified else "✗")
        table.add_row(*row)
    if not explained:
        return table
    notes = [Text(f"{i}. {r.explanation}") for i, r in enumerate(recs, 1)]
    return Group(table, Text(""), *notes)


def explanation_panel(result: dict):
    from rich.panel import Panel

    mark = "[green]verified ✓[/]" if result["verified"] else "[red]not verified ✗ " + "; ".join(result["problems"]) + "[/]"
    body = f"{result['explanation']}\n\n{mark}  [dim](phrased by {result['source']}{', ' + result['template'] if result.get('template') else ''})[/]"
    if result.get("notice"):
        body += f"\n[yellow]{result['notice']}[/]"
    return Panel(body, title=f"why “{result['title']}” for user {result['user_id']}", title_align="left")
