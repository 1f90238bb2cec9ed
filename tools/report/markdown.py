"""A report as GitHub-flavoured Markdown; data text is made inert wherever it is written."""

from __future__ import annotations

import re

from tools.explain.audit_text import association_line, feature_lines, headline, proxy_lines, thresholds_line
from tools.explain.wording import count_noun, fmt_pct
from tools.report.audit_section import NO_RECS, attribute_notes, attribute_title, composition_table, recommendation_table
from tools.report.model import (
    Card,
    ReportInput,
    build_cards,
    fmt_count,
    hidden_note,
    quality_facts,
    run_facts,
    segment_name,
    trait_cells,
)
from tools.segment.tree import tree_order, tree_prefix

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def md_escape(text: object) -> str:
    """Data text made inert in GitHub Markdown (and safe inside a table cell): one line, specials escaped."""
    flat = " ".join(str(text).split())
    return _ENTITY.sub("&amp;", _MD_SPECIAL.sub(r"\\\1", flat))


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows)
    return out


def _md_card(card: Card, inp: ReportInput, noun: str) -> list[str]:
    where = "" if card.parent is None else f" (sub-segment of {card.parent[0]}. {md_escape(card.parent[1])})"
    out = [f"{'####' if card.level else '###'} {card.id}. {md_escape(card.name)}{where}", "",
           f"**{card.size:,} {noun}** ({fmt_pct(card.share, 1)} of all)", ""]
    if card.description:
        out += [md_escape(card.description), ""]
    if card.children:
        out += ["**Sub-segments:** " + ", ".join(f"{c}. {md_escape(n)}" for c, n in card.children), ""]
    if card.traits_vs_parent and card.parent is not None:
        out += [f"What sets them apart within {md_escape(card.parent[1])}:", ""]
        out += _md_table(("Trait", "Segment (95% CI)", "Parent", "Lift"), [trait_cells(t) for t in card.traits_vs_parent]) + [""]
    if card.traits:
        out += _md_table(("Trait", "Segment (95% CI)", "Overall", "Lift"), [trait_cells(t) for t in card.traits]) + [""]
    elif noun != "messages":
        out += ["_No behaviour trait differs much from everyone else._", ""]
    if card.what_would_move:
        out += ["**What would move them:** " + md_escape(card.what_would_move), ""]
    if card.keywords:
        out += ["**Keywords:** " + ", ".join(md_escape(k) for k in card.keywords), ""]
    if card.hidden:
        out += [f"_{md_escape(hidden_note(inp))}_", ""]
        return out
    if card.member_ids:
        out += [f"**Representative {noun}:** " + ", ".join(md_escape(u) for u in card.member_ids), ""]
    for text in card.member_texts:
        out += [f"> {md_escape(text)}", ""]
    if card.examples:
        out += ["**Example recommendations**", ""]
        for r in card.examples:
            badge = "verified ✓" if r.verified else "not verified"
            out.append(f"- **{md_escape(r.title)}** for {md_escape(r.user_id)} ({badge}, phrased by {md_escape(r.source)}): "
                       f"{md_escape(r.explanation)}")
        out.append("")
    return out


def render_markdown(inp: ReportInput, segment_id: int | None = None) -> str:
    """The report as GitHub-flavoured Markdown: overview, segment sizes, and one section per segment."""
    cards = build_cards(inp, segment_id)
    s = inp.summary
    data = s.get("data", {})
    noun = count_noun(data.get("kind", "behaviour"), 2)
    heading = inp.title if segment_id is None else f"{inp.title}: {cards[0].name}"
    out = [f"# {md_escape(heading)}", ""]
    if inp.generated_by:
        out += [f"_{md_escape(inp.generated_by)}_", ""]
    out += ["## Overview", ""]
    items = f"{fmt_count(data.get('n_items'))} items, " if data.get("n_items") else ""
    subs = sum(1 for x in s.get("segments", []) if x.get("parent") is not None)
    k = f"{fmt_count(s.get('k_top'))} segments and {subs} sub-segments" if subs else f"{fmt_count(s.get('k'))} segments"
    counts = f"{fmt_count(data.get('n_users'))} {noun}, {items}{fmt_count(data.get('n_events'))} events, {k}"
    out += _md_table(("Run", ""), [("Size", counts), *run_facts(inp)]) + [""]
    quality = quality_facts(inp)
    if quality:
        out += ["**Quality**", ""] + _md_table(("Measure", "Value", "How to read it"), quality) + [""]
    out += [f"- warning: {md_escape(w)}" for w in data.get("warnings") or []]
    if data.get("warnings"):
        out.append("")
    sizes = [(str(x["id"]), tree_prefix(depth, last) + segment_name(x), f"{x['size']:,}", fmt_pct(float(x["share"]), 1))
             for x, depth, last in tree_order(s.get("segments", []))]
    out += ["## Segments", ""] + _md_table(("#", "Segment", noun.capitalize(), "Share"), sizes) + [""]
    if segment_id is None and inp.audit is not None:
        out += _md_audit(inp.audit)
    for card in cards:
        out += _md_card(card, inp, noun)
    if inp.drift is not None and segment_id is None:
        from tools.report.drift_section import markdown_section

        out += markdown_section(inp.drift, inp.min_segment_size)
    return "\n".join(out).rstrip() + "\n"


def _md_audit(d: dict) -> list[str]:
    """The fairness audit: what was audited, then per attribute its association, compositions, proxies and recommendations."""
    n = int((d.get("parameters") or {}).get("min_users", 30))
    out = ["## Fairness audit", "", md_escape(headline(d)), ""]
    out += [f"- not audited: {md_escape(name)}: {md_escape(why)}" for name, why in d.get("skipped") or []]
    if d.get("skipped"):
        out.append("")
    if d.get("attributes"):
        out += [f"_{md_escape(thresholds_line(d))}_", ""]
    for a in d.get("attributes") or []:
        out += [f"### {md_escape(attribute_title(a))}", "", f"**{md_escape(association_line(a))}**", ""]
        out += [f"_{md_escape(note)}_" for note in attribute_notes(a, n)]
        header, rows = composition_table(a, n)
        out += _md_table(tuple(md_escape(h) for h in header), rows) + [""]  # the groups (data text) head the columns
        out += [md_escape(line) for line in proxy_lines(a) + feature_lines(a)] + [""]
        recs = recommendation_table(a, n)
        if recs is not None:
            out += ["**Recommendations by group**", ""] + _md_table(*recs) + [""]
    if d.get("attributes") and d.get("recommendations") is None:
        out += [f"_{md_escape(NO_RECS)}_", ""]
    return out
