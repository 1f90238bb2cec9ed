"""Reports on a segmentation run: one self-contained HTML page, or Markdown that renders on GitHub.

Pure rendering: everything shown comes from the run's summary (segments.json),
2-D map coordinates, and example recommendations that were computed and
verified elsewhere. Data text (names, titles, reviews) is untrusted and is
escaped wherever it is written. Members of segments smaller than
``min_segment_size`` are never shown individually.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from tools.charts import CSS, MAX_MAP_POINTS, MUTED, OTHER, PALETTE
from tools.charts import lift_bars_svg, lift_domain, scatter_svg, segment_colours, silhouette_svg, stratified_sample
from tools.charts import map_coordinates  # noqa: F401  (part of this module's API: the report and the TUI map use it)
from tools.errors import ParameterError
from tools.label_text import count_noun, fmt_lift, fmt_pct, fmt_value
from tools.privacy import mask_identifiers
from tools.workspace import atomic_write_text

MAX_QUOTE_CHARS = 300
FORMATS = ("html", "md")


@dataclass(frozen=True)
class ExampleRecommendation:
    """One recommendation shown in a report, with its explanation and whether the verifier passed it."""

    user_id: str
    item_id: str
    title: str
    explanation: str
    verified: bool
    source: str  # the backend that phrased the explanation


@dataclass(frozen=True, eq=False)
class ReportInput:
    """Everything a report shows; nothing in it is recomputed by the renderer."""

    summary: dict  # the content of segments.json
    map_points: np.ndarray  # (n, 2) user coordinates, e.g. from map_coordinates
    map_labels: np.ndarray  # (n,) segment id of each point
    examples: dict[int, list[ExampleRecommendation]]  # per segment id
    explanation_pass_rate: float | None  # share of explanations the verifier passed
    min_segment_size: int = 10
    title: str = "segscope report"
    generated_by: str = ""  # e.g. "segscope 0.1.0, backend extractive"


# ---------------------------------------------------------------- what the two formats share


@dataclass(frozen=True)
class _Card:
    id: int
    name: str
    description: str
    size: int
    share: float
    colour: str
    keywords: tuple[str, ...]
    traits: tuple[dict, ...]
    hidden: bool  # too small to show members
    member_ids: tuple[str, ...]
    member_texts: tuple[str, ...]
    examples: tuple[ExampleRecommendation, ...]


def segment_name(seg: dict) -> str:
    return seg.get("name") or f"Segment {seg['id']}"


def _colours(inp: ReportInput, segment_id: int | None) -> dict[int, str]:
    """Map and card colours; a focused segment always gets a real colour, even when it is small."""
    colours = segment_colours({s["id"]: s["size"] for s in inp.summary.get("segments", [])})
    if segment_id is not None and colours.get(segment_id) == OTHER:
        colours[segment_id] = PALETTE[0]
    return colours


def _cards(inp: ReportInput, segment_id: int | None) -> list[_Card]:
    segments = inp.summary.get("segments", [])
    if segment_id is not None and not any(s["id"] == segment_id for s in segments):
        ids = ", ".join(str(s["id"]) for s in segments)
        raise ParameterError(f"there is no segment {segment_id} in this run", f"choose one of: {ids}")
    colours = _colours(inp, segment_id)
    cards = []
    for s in segments:
        if segment_id is not None and s["id"] != segment_id:
            continue
        hidden = s["size"] < inp.min_segment_size
        texts = tuple(_quote(t) for t in s.get("representative_texts") or [])
        cards.append(
            _Card(
                id=s["id"],
                name=segment_name(s),
                description=s.get("description") or "",
                size=int(s["size"]),
                share=float(s["share"]),
                colour=colours[s["id"]],
                keywords=tuple(s.get("keywords") or ()),
                traits=tuple(s.get("traits") or ()),
                hidden=hidden,
                member_ids=() if hidden else tuple(str(u) for u in s.get("representative_user_ids") or ()),
                member_texts=() if hidden else texts,
                examples=() if hidden else tuple(inp.examples.get(s["id"], ())),
            )
        )
    return cards


def _quote(text: str) -> str:
    """A member's text as shown: identifiers masked, whitespace folded, long texts cut."""
    text = " ".join(mask_identifiers(str(text)).split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1].rstrip() + "…"


def _count(n: int | None) -> str:
    return "—" if n is None else f"{int(n):,}"


_METRICS = (
    ("silhouette", "Silhouette", "{:.3f}", "−1 to 1, higher means better-separated segments"),
    ("calinski_harabasz", "Calinski–Harabasz", "{:.1f}", "higher means tighter, better-separated segments"),
    ("davies_bouldin", "Davies–Bouldin", "{:.3f}", "lower means better-separated segments"),
    ("hdbscan_noise_share", "Unclustered share", "pct", "users HDBSCAN left as noise"),
)


def _run_facts(inp: ReportInput) -> list[tuple[str, str]]:
    """(what, value) rows about the data and how the run was made, as plain text."""
    s = inp.summary
    data, params = s.get("data", {}), s.get("parameters", {})
    rows = [("Data", f"{data.get('source', '—')} ({data.get('kind', '—')} data)")]
    algo = params.get("algorithm", "—")
    rows.append(("Method", f"{algo}, k = {s.get('k', '—')} (asked for: {params.get('k', '—')})"))
    alpha = params.get("alpha")
    mix = f"text weight alpha {alpha:g}, behaviour {1 - alpha:g}" if isinstance(alpha, (int, float)) else "—"
    rows.append(("Profiles", f"{mix}; embedder {params.get('embedder', '—')}"))
    rows.append(("Seed", str(params.get("seed", "—"))))
    choice = s.get("k_selection")
    if choice and choice.get("reason"):
        rows.append(("Why this k", str(choice["reason"])))
    return rows


def _quality_facts(inp: ReportInput) -> list[tuple[str, str, str]]:
    """(what, value, how to read it) rows: clustering metrics, label distinctiveness, explanation pass rate."""
    metrics = inp.summary.get("metrics") or {}
    rows = []
    for key, name, fmt, hint in _METRICS:
        value = metrics.get(key)
        if value is not None:
            rows.append((name, fmt_pct(float(value), 1) if fmt == "pct" else fmt.format(float(value)), hint))
    labels = inp.summary.get("labels") or {}
    if labels.get("distinctiveness") is not None:
        source = f" (labels by {labels['source']})" if labels.get("source") else ""
        rows.append(("Label distinctiveness", fmt_pct(float(labels["distinctiveness"]), 1),
                     f"members whose own segment's label fits them best{source}"))
    if inp.explanation_pass_rate is not None:
        rows.append(("Explanations verified", fmt_pct(float(inp.explanation_pass_rate), 1),
                     "explanations whose every item, number and trait checks out against the data"))
    return rows


def _trait_cells(t: dict) -> tuple[str, str, str, str]:
    unit = str(t.get("unit") or "")
    lift = t.get("lift")
    return (str(t.get("label") or t.get("feature")), fmt_value(float(t["segment_value"]), unit),
            fmt_value(float(t["population_value"]), unit), "—" if lift is None else fmt_lift(float(lift)))


def _hidden_note(inp: ReportInput) -> str:
    return f"fewer than {inp.min_segment_size} members: not shown individually"


# ---------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _dl(rows: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_e(a)}</dt><dd>{_e(b)}</dd>" for a, b in rows) + "</dl>"


def _html_overview(inp: ReportInput) -> str:
    s, data = inp.summary, inp.summary.get("data", {})
    noun = count_noun(data.get("kind", "behaviour"), 2)
    stats = [(noun, _count(data.get("n_users"))), ("items", _count(data.get("n_items"))),
             ("events", _count(data.get("n_events"))), ("segments", _count(s.get("k")))]
    stats = [row for row in stats if not (row[0] == "items" and not data.get("n_items"))]
    tiles = "".join(f'<div class="panel stat"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in stats)
    quality = "".join(
        f"<dt>{_e(a)}</dt><dd><b>{_e(b)}</b> <span class='hint'>{_e(h)}</span></dd>" for a, b, h in _quality_facts(inp)
    )
    choice = s.get("k_selection") or {}
    sil = silhouette_svg(choice.get("candidates") or [], int(s.get("k") or 0))
    warnings = data.get("warnings") or []
    warn = ("<ul class='warn'>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>") if warnings else ""
    return (
        f'<section class="overview"><div class="stats">{tiles}</div><div class="cols">'
        f'<div class="panel"><h2>How the segments were found</h2>{_dl(_run_facts(inp))}{sil}</div>'
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
    colours = _colours(inp, segment_id)
    names = {s["id"]: segment_name(s) for s in segments}
    svg = scatter_svg(points, labels, colours, names, focus=segment_id)
    shown = [s for s in segments if segment_id is None or s["id"] == segment_id]
    coloured = [s for s in sorted(shown, key=lambda s: -s["size"]) if colours[s["id"]] != OTHER]
    items = [
        f'<li><span class="sw" style="--c:{colours[s["id"]]}"></span><span><a href="#segment-{s["id"]}">'
        f'{_e(names[s["id"]])}</a> <span class="hint">{_e(fmt_pct(float(s["share"]), 1))}</span></span></li>'
        for s in coloured
    ]
    rest = len(segments) - len(coloured)
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


def _html_card(card: _Card, inp: ReportInput, domain: tuple[float, float], noun: str) -> str:
    parts = [
        f'<article class="card" id="segment-{card.id}" style="--c:{card.colour}"><header><span class="sw"></span>'
        f'<div class="title"><p class="eyebrow">Segment {card.id}</p><h3>{_e(card.name)}</h3></div>'
        f'<p class="size"><b>{card.size:,}</b> {_e(noun)}<br>{_e(fmt_pct(card.share, 1))}</p></header>'
        f'<div class="share" title="share of all {_e(noun)}">'
        f'<span style="width:{min(card.share, 1) * 100:.1f}%"></span></div>'
    ]
    if card.description:
        parts.append(f'<p class="desc">{_e(card.description)}</p>')
    if card.traits:
        parts.append("<h4>What sets them apart</h4>" + lift_bars_svg(card.traits, card.colour, domain))
    elif noun != "messages":  # text data has no behaviour traits at all: nothing to say
        parts.append('<h4>What sets them apart</h4><p class="note">no behaviour trait differs much from everyone else</p>')
    if card.keywords:
        parts.append("<h4>Keywords</h4><ul class='chips'>" + "".join(f"<li>{_e(k)}</li>" for k in card.keywords) + "</ul>")
    parts.append(f"<h4>Representative {_e(noun)}</h4>")
    if card.hidden:
        parts.append(f'<p class="note">{_e(_hidden_note(inp))}</p>')
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
    cards = _cards(inp, segment_id)
    noun = count_noun(inp.summary.get("data", {}).get("kind", "behaviour"), 2)
    all_lifts = [t.get("lift") for s in inp.summary.get("segments", []) for t in s.get("traits") or ()]
    domain = lift_domain(all_lifts)
    heading = inp.title if segment_id is None else f"{inp.title}: {cards[0].name}"
    sub = " · ".join(x for x in (str(inp.summary.get("data", {}).get("source", "")), inp.generated_by) if x)
    body = [
        f"<header class='top'><h1>{_e(heading)}</h1><p class='sub'>{_e(sub)}</p></header>",
        _html_overview(inp),
        _html_map(inp, segment_id),
        f"<section><h2>{'Segments' if segment_id is None else 'Segment'}</h2>"
        f"<div class='grid{'' if segment_id is None else ' single'}'>",
        *(_html_card(c, inp, domain, noun) for c in cards),
        "</div></section>",
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading)}</title><style>{CSS}</style></head>"
        f'<body><main class="page">{"".join(body)}</main></body></html>\n'
    )


# ---------------------------------------------------------------- Markdown

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


def _md_card(card: _Card, inp: ReportInput, noun: str) -> list[str]:
    out = [f"### {card.id}. {md_escape(card.name)}", "", f"**{card.size:,} {noun}** ({fmt_pct(card.share, 1)} of all)", ""]
    if card.description:
        out += [md_escape(card.description), ""]
    if card.traits:
        out += _md_table(("Trait", "Segment", "Overall", "Lift"), [_trait_cells(t) for t in card.traits]) + [""]
    elif noun != "messages":
        out += ["_No behaviour trait differs much from everyone else._", ""]
    if card.keywords:
        out += ["**Keywords:** " + ", ".join(md_escape(k) for k in card.keywords), ""]
    if card.hidden:
        out += [f"_{md_escape(_hidden_note(inp))}_", ""]
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
    cards = _cards(inp, segment_id)
    s = inp.summary
    data = s.get("data", {})
    noun = count_noun(data.get("kind", "behaviour"), 2)
    heading = inp.title if segment_id is None else f"{inp.title}: {cards[0].name}"
    out = [f"# {md_escape(heading)}", ""]
    if inp.generated_by:
        out += [f"_{md_escape(inp.generated_by)}_", ""]
    out += ["## Overview", ""]
    items = f"{_count(data.get('n_items'))} items, " if data.get("n_items") else ""
    counts = (f"{_count(data.get('n_users'))} {noun}, {items}{_count(data.get('n_events'))} events, "
              f"{_count(s.get('k'))} segments")
    out += _md_table(("Run", ""), [("Size", counts), *_run_facts(inp)]) + [""]
    quality = _quality_facts(inp)
    if quality:
        out += ["**Quality**", ""] + _md_table(("Measure", "Value", "How to read it"), quality) + [""]
    out += [f"- warning: {md_escape(w)}" for w in data.get("warnings") or []]
    if data.get("warnings"):
        out.append("")
    sizes = [(str(x["id"]), segment_name(x), f"{x['size']:,}", fmt_pct(float(x["share"]), 1)) for x in s.get("segments", [])]
    out += ["## Segments", ""] + _md_table(("#", "Segment", noun.capitalize(), "Share"), sizes) + [""]
    for card in cards:
        out += _md_card(card, inp, noun)
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- files


def write_report(inp: ReportInput, out: Path, fmt: str = "html", segment_id: int | None = None) -> Path:
    """Render and write the report atomically (never a half-written file); returns the path written.

    ``out`` may be a folder, in which case the file is ``report.html`` / ``report.md`` inside it.
    """
    if fmt not in FORMATS:
        raise ParameterError(f"unknown report format {fmt!r}", "use html or md")
    out = Path(out)
    if out.is_dir():
        suffix = f"-segment-{segment_id}" if segment_id is not None else ""
        out = out / f"report{suffix}.{fmt}"
    text = render_html(inp, segment_id) if fmt == "html" else render_markdown(inp, segment_id)
    atomic_write_text(out, text)
    return out

