"""A report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched.

Data text (names, titles, reviews) is untrusted and is escaped wherever it is written.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib.resources import files

import numpy as np

from tools.explain.wording import count_noun, fmt_pct
from tools.report.audit_section import render_audit_html
from tools.report.charts import (
    MAX_MAP_POINTS,
    MUTED,
    OTHER,
    lift_bars_svg,
    lift_domain,
    scatter_svg,
    silhouette_svg,
    stratified_sample,
)
from tools.report.drift_section import html_section as drift_html
from tools.report.model import (
    Card,
    ExampleRecommendation,
    ReportInput,
    build_cards,
    card_colours,
    fmt_count,
    hidden_note,
    quality_facts,
    run_facts,
    segment_name,
    top_of,
)
from tools.segment.significance import cited


@cache
def page_css() -> str:
    """The page style, shipped as package data beside this module (system fonts only)."""
    return files("tools.report").joinpath("page.css").read_text(encoding="utf-8")



def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _dl(rows: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_e(a)}</dt><dd>{_e(b)}</dd>" for a, b in rows) + "</dl>"


def _html_overview(inp: ReportInput) -> str:
    s, data = inp.summary, inp.summary.get("data", {})
    noun = count_noun(data.get("kind", "behaviour"), 2)
    subs = sum(1 for seg in s.get("segments", []) if seg.get("parent") is not None)
    stats = [(noun, fmt_count(data.get("n_users"))), ("items", fmt_count(data.get("n_items"))),
             ("events", fmt_count(data.get("n_events"))), ("segments", fmt_count(s.get("k_top") if subs else s.get("k")))]
    if subs:
        stats.append(("sub-segments", fmt_count(subs)))
    stats = [row for row in stats if not (row[0] == "items" and not data.get("n_items"))]
    tiles = "".join(f'<div class="panel stat"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in stats)
    quality = "".join(
        f"<dt>{_e(a)}</dt><dd><b>{_e(b)}</b> <span class='hint'>{_e(h)}</span></dd>" for a, b, h in quality_facts(inp)
    )
    choice = s.get("k_selection") or {}
    sil = silhouette_svg(choice.get("candidates") or [], int(s.get("k_top") or s.get("k") or 0))
    warnings = data.get("warnings") or []
    warn = ("<ul class='warn'>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>") if warnings else ""
    return (
        f'<section class="overview"><div class="stats">{tiles}</div><div class="cols">'
        f'<div class="panel"><h2>How the segments were found</h2>{_dl(run_facts(inp))}{sil}</div>'
        f'<div class="panel"><h2>Quality</h2><dl class="facts">{quality}</dl>{warn}</div></div></section>'
    )


def _html_map(inp: ReportInput, segment_id: int | None) -> str:
    segments = inp.summary.get("segments", [])
    points, labels = np.asarray(inp.map_points), np.asarray(inp.map_labels).reshape(-1)
    if len(points) == 0:
        return ""
    if len(points) > MAX_MAP_POINTS:
        keep = stratified_sample(labels, MAX_MAP_POINTS)
        points, labels = points[keep], labels[keep]
    colours = card_colours(inp, segment_id)
    names = {s["id"]: segment_name(s) for s in segments}
    # The map colours users by top-level segment (sub-segments wear their parent's colour).
    focus = top_of(segments, segment_id)
    svg = scatter_svg(points, labels, colours, names, focus=focus)
    tops = [s for s in segments if s.get("parent") is None]
    shown = [s for s in tops if focus is None or s["id"] == focus]
    coloured = [s for s in sorted(shown, key=lambda s: -s["size"]) if colours[s["id"]] != OTHER]
    items = [
        f'<li><span class="sw" style="--c:{colours[s["id"]]}"></span><span><a href="#segment-{s["id"]}">'
        f'{_e(names[s["id"]])}</a> <span class="hint">{_e(fmt_pct(float(s["share"]), 1))}</span></span></li>'
        for s in coloured
    ]
    rest = len(tops) - len(coloured)
    if rest:
        label = "other segments" if segment_id is not None else f"{rest} smaller segments"
        grey = MUTED if segment_id is not None else OTHER
        items.append(f'<li><span class="sw" style="--c:{grey}"></span><span>{_e(label)}</span></li>')
    noun = count_noun(inp.summary.get("data", {}).get("kind", "behaviour"), 2)
    n_total = inp.summary.get("data", {}).get("n_users")
    sampled = f" (a sample of {n_total:,})" if n_total and n_total > len(points) else ""
    caption = (f"Each dot is one of {len(points):,} {noun}{sampled}, placed by the two main directions of variation "
               "in their profiles (PCA): nearby dots have similar profiles.")
    return (
        f'<section><h2>Map of {_e(noun)}</h2><figure class="panel mapwrap"><div>{svg}</div>'
        f'<ul class="legend">{"".join(items)}</ul><figcaption>{_e(caption)}</figcaption></figure></section>'
    )


def _html_example(rec: ExampleRecommendation) -> str:
    badge = '<span class="badge ok">verified ✓</span>' if rec.verified else '<span class="badge no">not verified</span>'
    return (
        f'<li><div class="rec-head"><b>{_e(rec.title)}</b>{badge}</div><p>{_e(rec.explanation)}</p>'
        f'<p class="meta">for user <code>{_e(rec.user_id)}</code> · item <code>{_e(rec.item_id)}</code>'
        f' · phrased by {_e(rec.source)}</p></li>'
    )


def _link(sid: int, name: str) -> str:
    return f'<a href="#segment-{sid}">{sid}. {_e(name)}</a>'


def _html_card(card: Card, inp: ReportInput, domain: tuple[float, float], noun: str) -> str:
    where = "" if card.parent is None else f" · sub-segment of {_link(*card.parent)}"
    parts = [
        f'<article class="card{" sub" if card.level else ""}" id="segment-{card.id}" style="--c:{card.colour}"><header><span class="sw"></span>'
        f'<div class="title"><p class="eyebrow">Segment {card.id}{where}</p><h3>{_e(card.name)}</h3></div>'
        f'<p class="size"><b>{card.size:,}</b> {_e(noun)}<br>{_e(fmt_pct(card.share, 1))}</p></header>'
        f'<div class="share" title="share of all {_e(noun)}">'
        f'<span style="width:{min(card.share, 1) * 100:.1f}%"></span></div>'
    ]
    if card.description:
        parts.append(f'<p class="desc">{_e(card.description)}</p>')
    if card.children:
        parts.append("<h4>Sub-segments</h4><ul class='chips'>" + "".join(f"<li>{_link(c, n)}</li>" for c, n in card.children) + "</ul>")
    if card.traits_vs_parent and card.parent is not None:
        parts.append(f"<h4>What sets them apart within {_e(card.parent[1])}</h4>"
                     + lift_bars_svg(card.traits_vs_parent, card.colour, domain))
    if card.traits:
        head = "What sets them apart" if card.parent is None else "Compared with everyone"
        parts.append(f"<h4>{head}</h4>" + lift_bars_svg(card.traits, card.colour, domain))
    elif noun != "messages":  # text data has no behaviour traits at all: nothing to say
        parts.append('<h4>What sets them apart</h4><p class="note">no behaviour trait differs much from everyone else</p>')
    if card.what_would_move:
        parts.append(f'<h4>What would move them</h4><p class="whatif">{_e(card.what_would_move)}</p>')
    if card.keywords:
        parts.append("<h4>Keywords</h4><ul class='chips'>" + "".join(f"<li>{_e(k)}</li>" for k in card.keywords) + "</ul>")
    parts.append(f"<h4>Representative {_e(noun)}</h4>")
    if card.hidden:
        parts.append(f'<p class="note">{_e(hidden_note(inp))}</p>')
    else:
        if card.member_ids:
            parts.append("<ul class='chips ids'>" + "".join(f"<li>{_e(u)}</li>" for u in card.member_ids) + "</ul>")
        parts.extend(f"<blockquote>{_e(t)}</blockquote>" for t in card.member_texts)
        if card.examples:
            parts.append("<h4>Example recommendations</h4><ul class='recs'>")
            parts.extend(_html_example(r) for r in card.examples)
            parts.append("</ul>")
    parts.append("</article>")
    return "".join(parts)


def render_html(inp: ReportInput, segment_id: int | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched).

    With ``segment_id``, only that segment's card follows the overview, and the map highlights it.
    """
    cards = build_cards(inp, segment_id)
    noun = count_noun(inp.summary.get("data", {}).get("kind", "behaviour"), 2)
    all_lifts = [t.get("lift") for s in inp.summary.get("segments", [])
                 for t in [*cited(s.get("traits")), *cited(s.get("traits_vs_parent"))]]
    domain = lift_domain(all_lifts)
    heading = inp.title if segment_id is None else f"{inp.title}: {cards[0].name}"
    sub = " · ".join(x for x in (str(inp.summary.get("data", {}).get("source", "")), inp.generated_by) if x)
    body = [
        f"<header class='top'><h1>{_e(heading)}</h1><p class='sub'>{_e(sub)}</p></header>",
        _html_overview(inp),
        _html_map(inp, segment_id),
        render_audit_html(inp.audit) if segment_id is None else "",
        f"<section><h2>{'Segments' if segment_id is None else 'Segment'}</h2>"
        f"<div class='grid{'' if segment_id is None else ' single'}'>",
        *(_html_card(c, inp, domain, noun) for c in cards),
        "</div></section>",
    ]
    if inp.drift is not None and segment_id is None:
        body.append(drift_html(inp.drift, inp.min_segment_size))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading)}</title><style>{page_css()}</style></head>"
        f'<body><main class="page">{"".join(body)}</main></body></html>\n'
    )
