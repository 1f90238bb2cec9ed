"""One segment in depth: what defines it (traits with lift bars), its words, items, members and examples.

Renders a ``SegmentDescription.as_dict()`` (or a tool artifact of the same
shape) as it is: every number shown is a field of that dict.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tools.explain.wording import fmt_compact, fmt_lift, fmt_pct

PLACEHOLDER = "Select a segment in the table (Enter or click) to see what defines it."
BAR_HALF = 8  # cells on each side of the 1× line
BAR_MAX_LOG2 = 3.0  # a bar is full at 8× (or 1/8×); the lift column still says the true value
MAX_QUOTE = 160


def _value(value: float | None, unit: str) -> str:
    """The shared compact number (tools.explain.wording), or a dash where there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt_compact(value, unit)


def _lift(lift: float | None) -> str:
    return "—" if lift is None else fmt_lift(lift)


def lift_bar(lift: float | None, half: int = BAR_HALF) -> Text:
    """A bar on a log scale around 1×: right (green) when the segment has more of a trait, left (red) when less."""
    track = "·"
    if lift is None or lift <= 0:
        return Text(track * half + "│" + track * half, style="dim")
    cells = max(-BAR_MAX_LOG2, min(BAR_MAX_LOG2, math.log2(lift))) / BAR_MAX_LOG2 * half
    full, half_cell = divmod(round(abs(cells) * 2), 2)
    if cells >= 0:
        bar = "█" * full + ("▌" if half_cell else "")
        return Text.assemble((track * half, "dim"), ("│", "dim"), (bar, "green"), (track * (half - len(bar)), "dim"))
    bar = ("▐" if half_cell else "") + "█" * full
    return Text.assemble((track * (half - len(bar)), "dim"), (bar, "red"), ("│", "dim"), (track * half, "dim"))


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold")


# Aligned with the lines _traits writes: 21 cells of values, the bar (half │ half), the lift.
_TRAITS_HEADER = Text(f"{'segment':>9}{' vs all':<12}{'less':>{BAR_HALF}}│{'more':<{BAR_HALF}}{'lift':>7}", style="dim")


def _traits(traits: list[dict]) -> list[Text]:
    """Two lines a trait: its label, then segment vs everyone, the lift bar and the lift."""
    lines = []
    for trait in traits:
        unit = trait.get("unit", "")
        lift = trait.get("lift")
        lines.append(Text(trait.get("label") or trait.get("feature", "?")))
        lines.append(Text.assemble(
            (f"  {_value(trait.get('segment_value'), unit):>7}", "bold"),
            (f" vs {_value(trait.get('population_value'), unit):<7}", "dim"),
            " ", lift_bar(lift), f" {_lift(lift):>6}",
        ))
    return lines


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return f"“{text[:MAX_QUOTE - 1]}…”" if len(text) > MAX_QUOTE else f"“{text}”"


def render_description(desc: dict, colour: str | None = None) -> Group:
    """The whole panel as one Rich renderable."""
    sid = desc.get("segment_id", desc.get("id"))
    name = desc.get("name") or f"Segment {sid}"
    parts: list = [
        Text.assemble(("● ", colour or "bold"), (f"Segment {sid} · ", "bold"), (name, "bold")),
        Text(f"{desc.get('size', 0):,} users · {fmt_pct(desc.get('share', 0.0), 1)} of all", style="dim"),
        Text(""),
        Text(desc.get("narrative") or desc.get("description") or ""),
    ]
    parent = desc.get("parent")
    if parent:
        parts.append(Text(f"Sub-segment of {parent['segment_id']} · {parent['name']}", style="dim"))
        within = desc.get("traits_vs_parent") or []
        if within:
            header = Text(f"{'segment':>9}{' vs parent':<12}{'less':>{BAR_HALF}}│{'more':<{BAR_HALF}}{'lift':>7}", style="dim")
            parts += [_section("What sets it apart within its parent"), header, *_traits(within)]
    children = desc.get("children") or []
    if children:
        parts.append(_section("Sub-segments"))
        parts += [Text.assemble(("• ", "dim"), f"{c['segment_id']} {c['name']}", (f"  {c['size']:,} users", "dim")) for c in children]
    traits = desc.get("traits") or []
    if traits:
        parts += [_section("What defines it"), _TRAITS_HEADER, *_traits(traits)]
    if desc.get("keywords"):
        parts += [_section("Distinctive words"), Text(", ".join(desc["keywords"]))]
    items = desc.get("typical_items") or []
    if items:
        parts.append(_section("Typical items"))
        for item in items:
            title = item.get("title") or item.get("item_id")
            parts.append(Text.assemble(("• ", "dim"), (str(title), ""), (f"  {item.get('count')} interactions, {_lift(item.get('lift'))}", "dim")))
    examples = desc.get("examples") or desc.get("recommendations") or []
    if examples:
        parts.append(_section("Example recommendations"))
        for ex in examples:
            verified = ex.get("verified")
            mark = ("✓ verified", "green") if verified else (("✗ not verified", "red") if verified is False else ("", ""))
            title = ex.get("title") or ex.get("item_id")
            parts.append(Text.assemble(("• ", "dim"), (f"{ex.get('user_id', '?')} → ", ""), (str(title), "bold"), ("  ", ""), mark))
            if ex.get("explanation"):
                parts.append(Text("  " + str(ex["explanation"]), style="dim"))
    reps = desc.get("representative_user_ids") or []
    if reps:
        parts += [_section("Representative users"), Text(", ".join(map(str, reps)))]
    for text in (desc.get("representative_texts") or [])[:3]:
        parts.append(Text("  " + _quote(text), style="italic dim"))
    contrast = desc.get("contrastive_user_ids") or []
    if contrast:
        parts.append(Text.assemble(("Nearest users of other segments: ", "dim"), ", ".join(map(str, contrast))))
    if desc.get("note"):
        parts.append(Text("\n" + desc["note"], style="yellow"))
    return Group(*parts)


class SegmentDetail(VerticalScroll):
    """The detail panel; ``segment_id`` and ``segment_name`` say what it shows (None before a selection)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.segment_id: int | None = None
        self.segment_name: str | None = None

    def compose(self):
        yield Static(PLACEHOLDER, classes="placeholder", id="detail-body")

    def show_loading(self) -> None:
        self.loading = True

    def show(self, desc: dict, colour: str | None = None) -> None:
        self.loading = False
        self.segment_id = desc.get("segment_id", desc.get("id"))
        self.segment_name = desc.get("name")
        body = self.query_one("#detail-body", Static)
        body.set_class(False, "placeholder")
        body.update(render_description(desc, colour))
        self.scroll_home(animate=False)

    def clear(self, text: str = PLACEHOLDER) -> None:
        self.loading = False
        self.segment_id = self.segment_name = None
        body = self.query_one("#detail-body", Static)
        body.add_class("placeholder")
        body.update(text)
