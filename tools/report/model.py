"""What a report shows, and what its HTML and Markdown renderings share.

Pure data: everything shown comes from the run's summary (segments.json), 2-D map
coordinates, and example recommendations that were computed and verified
elsewhere. Members of segments smaller than ``min_segment_size`` are never shown
individually.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.core.errors import ParameterError
from tools.core.privacy import mask_identifiers
from tools.data.outliers import outliers_line
from tools.explain.wording import Voice, fmt_interval, fmt_lift, fmt_pct, fmt_value
from tools.report.charts import OTHER, PALETTE, tree_colours
from tools.segment.significance import cited
from tools.segment.tree import tree_order

MAX_QUOTE_CHARS = 300


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
    drift: dict | None = None  # the run's latest `segscope drift` (drift.json), shown as its own section
    audit: dict | None = None  # a fairness audit of the run (AuditReport.as_dict(), or a saved audit.json), or None
    whatif: dict[int, str] | None = None  # per segment: what would move its typical member (tools/report/whatif_section.py)


@dataclass(frozen=True)
class Card:
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
    level: int = 0
    parent: tuple[int, str] | None = None  # (id, name) of the segment this one is a sub-segment of
    children: tuple[tuple[int, str], ...] = ()  # (id, name) of its sub-segments
    traits_vs_parent: tuple[dict, ...] = ()  # what sets a sub-segment apart within its parent
    what_would_move: str = ""  # the smallest change into the nearest other segment, for its typical member


def segment_name(seg: dict) -> str:
    return seg.get("name") or f"Segment {seg['id']}"


def card_colours(inp: ReportInput, segment_id: int | None) -> dict[int, str]:
    """Map and card colours (sub-segments wear their parent's); a focused segment always gets a real colour."""
    segments = inp.summary.get("segments", [])
    colours = tree_colours(segments)
    focus = top_of(segments, segment_id)
    if focus is not None and colours.get(focus) == OTHER:
        for s in segments:
            if top_of(segments, s["id"]) == focus:
                colours[s["id"]] = PALETTE[0]
    return colours


def top_of(segments: list[dict], segment_id: int | None) -> int | None:
    """The top-level segment ``segment_id`` belongs to (itself at the top level)."""
    parent = next((s.get("parent") for s in segments if s["id"] == segment_id), None)
    return segment_id if parent is None else int(parent)


def build_cards(inp: ReportInput, segment_id: int | None) -> list[Card]:
    segments = inp.summary.get("segments", [])
    if segment_id is not None and not any(s["id"] == segment_id for s in segments):
        ids = ", ".join(str(s["id"]) for s in segments)
        raise ParameterError(f"there is no segment {segment_id} in this run", f"choose one of: {ids}")
    colours = card_colours(inp, segment_id)
    names = {s["id"]: segment_name(s) for s in segments}
    cards = []
    for s, depth, _ in tree_order(segments):
        if segment_id is not None and s["id"] != segment_id:
            continue
        hidden = s["size"] < inp.min_segment_size
        texts = tuple(quote(t) for t in s.get("representative_texts") or [])
        cards.append(
            Card(
                id=s["id"],
                name=segment_name(s),
                description=s.get("description") or "",
                size=int(s["size"]),
                share=float(s["share"]),
                colour=colours[s["id"]],
                keywords=tuple(s.get("keywords") or ()),
                traits=tuple(cited(s.get("traits"))),
                hidden=hidden,
                member_ids=() if hidden else tuple(str(u) for u in s.get("representative_user_ids") or ()),
                member_texts=() if hidden else texts,
                examples=() if hidden else tuple(inp.examples.get(s["id"], ())),
                level=depth,
                parent=None if s.get("parent") is None else (int(s["parent"]), names.get(s["parent"], "")),
                children=tuple((int(c), names.get(c, "")) for c in s.get("children") or ()),
                traits_vs_parent=tuple(cited(s.get("traits_vs_parent"))),
                what_would_move=(inp.whatif or {}).get(s["id"], ""),
            )
        )
    return cards


def quote(text: str) -> str:
    """A member's text as shown: identifiers masked, whitespace folded, long texts cut."""
    text = " ".join(mask_identifiers(str(text)).split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1].rstrip() + "…"


def fmt_count(n: int | None) -> str:
    return "—" if n is None else f"{int(n):,}"


METRICS = (
    ("silhouette", "Silhouette", "{:.3f}", "−1 to 1, higher means better-separated segments"),
    ("calinski_harabasz", "Calinski–Harabasz", "{:.1f}", "higher means tighter, better-separated segments"),
    ("davies_bouldin", "Davies–Bouldin", "{:.3f}", "lower means better-separated segments"),
    ("hdbscan_noise_share", "Unclustered share", "pct", "users HDBSCAN left as noise"),
)


def run_facts(inp: ReportInput) -> list[tuple[str, str]]:
    """(what, value) rows about the data and how the run was made, as plain text."""
    s = inp.summary
    data, params = s.get("data", {}), s.get("parameters", {})
    rows = [("Data", f"{data.get('source', '—')} ({data.get('kind', '—')} data)")]
    algo = params.get("algorithm", "—")
    subs = sum(1 for seg in s.get("segments", []) if seg.get("parent") is not None)
    k = f"{s.get('k_top')} top-level segments, {subs} sub-segments" if subs else f"k = {s.get('k', '—')}"
    rows.append(("Method", f"{algo}, {k} (asked for: {params.get('k', '—')})"))
    alpha = params.get("alpha")
    mix = f"text weight alpha {alpha:g}, behaviour {1 - alpha:g}" if isinstance(alpha, (int, float)) else "—"
    rows.append(("Profiles", f"{mix}; embedder {params.get('embedder', '—')}"))
    rows.append(("Seed", str(params.get("seed", "—"))))
    outliers = outliers_line(data.get("outliers"), Voice.of(s).member(2))
    if outliers:
        rows.append(("Outliers", outliers))
    choice = s.get("k_selection")
    if choice and choice.get("reason"):
        rows.append(("Why this k", str(choice["reason"])))
    return rows


def quality_facts(inp: ReportInput) -> list[tuple[str, str, str]]:
    """(what, value, how to read it) rows: clustering metrics, label distinctiveness, explanation pass rate."""
    metrics = inp.summary.get("metrics") or {}
    rows = []
    for key, name, fmt, hint in METRICS:
        value = metrics.get(key)
        if value is not None:
            rows.append((name, fmt_pct(float(value), 1) if fmt == "pct" else fmt.format(float(value)), hint))
    labels = inp.summary.get("labels") or {}
    if labels.get("distinctiveness") is not None:
        source = f" (labels by {labels['source']})" if labels.get("source") else ""
        rows.append(("Label distinctiveness", fmt_pct(float(labels["distinctiveness"]), 1),
                     f"members whose own segment's label fits them best{source}"))
    tested = trait_test_fact(inp)
    if tested is not None:
        rows.append(tested)
    if inp.explanation_pass_rate is not None:
        rows.append(("Explanations verified", fmt_pct(float(inp.explanation_pass_rate), 1),
                     "explanations whose every item, number and trait checks out against the data"))
    return rows


def trait_cells(t: dict) -> tuple[str, str, str, str]:
    """(trait, segment value with its 95% interval, reference value, lift) as the tables print them."""
    unit = str(t.get("unit") or "")
    lift = t.get("lift")
    return (str(t.get("label") or t.get("feature")), fmt_interval(t),
            fmt_value(float(t["population_value"]), unit, t.get("currency")), "—" if lift is None else fmt_lift(float(lift)))


def trait_test_fact(inp: ReportInput) -> tuple[str, str, str] | None:
    """The quality row saying how many traits were tested and how many stand after Benjamini–Hochberg."""
    tests = inp.summary.get("trait_tests")
    if not tests or not tests.get("tests"):
        return None
    alpha = float(tests.get("alpha", 0.05))
    how = (f"every segment × feature tested (Welch's t, or Mann–Whitney U for heavy tails), Benjamini–Hochberg "
           f"q < {alpha:g} over the run; only significant traits are named, described or shown, with 95% intervals")
    return ("Traits tested", f"{tests['significant']:,} of {tests['tests']:,} significant", how)


def hidden_note(inp: ReportInput) -> str:
    return f"fewer than {inp.min_segment_size} members: not shown individually"
