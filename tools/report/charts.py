"""How a report looks: the user map (coordinates and SVG), trait lift bars, silhouette by k (the page style is page.css beside it).

Each chart function returns one self-contained ``<svg>`` string (no scripts,
no external references) with every piece of data text escaped. Charts draw the
numbers they are given; the only computation is the map's 2-D projection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from tools.explain.wording import fmt_interval, fmt_lift, fmt_value

# Okabe & Ito's colour-blind-safe palette, ordered so neighbours contrast and
# the hard-to-see yellow comes last. Segments past the palette share OTHER.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
OTHER = "#A0A0A0"
MUTED = "#D9D9D9"  # the segments a focused map is not about
MAX_MAP_POINTS = 3000

# The lift axis spans 1/8× .. 32× at most; bars beyond are pinned to its edge
# (their labels still say the true lift), so one extreme trait cannot squash the rest.
MIN_LOG2_LIFT = -3.0
MAX_LOG2_LIFT = 5.0


def segment_colours(sizes: Mapping[int, int]) -> dict[int, str]:
    """A palette colour for each of the largest segments (by size, then id), OTHER for the rest."""
    order = sorted(sizes, key=lambda s: (-sizes[s], s))
    return {s: PALETTE[i] if i < len(PALETTE) else OTHER for i, s in enumerate(order)}


def tree_colours(segments: list[dict]) -> dict[int, str]:
    """Colours for a run's segments: the top level by size as segment_colours does; a sub-segment takes its parent's."""
    tops = {int(s["id"]): int(s["size"]) for s in segments if s.get("parent") is None}
    colours = segment_colours(tops)
    for s in segments:
        if s.get("parent") is not None:
            colours[int(s["id"])] = colours.get(int(s["parent"]), OTHER)
    return colours


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- map


def stratified_sample(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of at most ~``max_points`` rows in which every segment appears.

    Each segment first gets a small floor (all of it when it is smaller), then
    the rest of the budget is shared in proportion to size; a segment never
    vanishes from the map however small it is.
    """
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    ids, sizes = np.unique(labels, return_counts=True)
    floor = np.minimum(sizes, max(1, max_points // (4 * len(ids))))
    rest = sizes - floor
    budget = max(max_points - int(floor.sum()), 0)
    want = rest * budget / max(int(rest.sum()), 1)
    extra = np.floor(want).astype(int)
    # Largest remainders take the few points rounding left over.
    for j in np.argsort(-(want - extra), kind="stable")[: budget - int(extra.sum())]:
        extra[j] += 1
    quota = floor + np.minimum(extra, rest)
    by_segment = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1])
    picked = [rng.choice(rows, size=int(q), replace=False) for rows, q in zip(by_segment, quota)]
    return np.sort(np.concatenate(picked))


def map_coordinates(
    fused: np.ndarray, labels: np.ndarray, seed: int = 0, max_points: int = MAX_MAP_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """2-D map of users for the report and the TUI: PCA of a stratified sample of the fused profiles.

    Returns (points (m, 2), labels (m,)) with m <= ~max_points and every segment present.
    """
    from sklearn.decomposition import PCA

    labels = np.asarray(labels).reshape(-1)
    rows = stratified_sample(labels, max_points, seed)
    x = np.asarray(np.asarray(fused)[rows], dtype=np.float64)  # index first: never copy all users
    if len(x) == 0:
        return np.zeros((0, 2)), labels[rows].astype(int)
    n_comp = min(2, x.shape[0], x.shape[1])
    pts = PCA(n_components=n_comp, random_state=seed).fit_transform(x) if n_comp > 0 else np.zeros((len(x), 0))
    if pts.shape[1] < 2:  # one feature or one user: pad so the map is always (m, 2)
        pts = np.hstack([pts, np.zeros((len(x), 2 - pts.shape[1]))])
    return pts, labels[rows].astype(int)


def _fit_to_box(points: np.ndarray, width: float, height: float, pad: float) -> np.ndarray:
    """Scale into the box, stretching one axis at most 1.5× more than the other (so the map stays honest
    but fills the box); the 0.5% most outlying points are pinned to its edge."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return pts
    lo = np.percentile(pts, 0.5, axis=0)
    hi = np.percentile(pts, 99.5, axis=0)
    span = hi - lo
    room = np.array([width - 2 * pad, height - 2 * pad])
    scale = np.where(span > 1e-12, room / np.where(span > 1e-12, span, 1.0), 0.0)
    if scale.max() > 0:
        finite = scale[scale > 0].min()
        scale = np.where(scale > 0, np.minimum(scale, 1.5 * finite), 0.0)
    xy = (np.clip(pts, lo, hi) - (lo + hi) / 2) * scale
    xy[:, 0] += width / 2
    xy[:, 1] = height / 2 - xy[:, 1]  # SVG's y axis points down
    return xy


def scatter_svg(
    points: np.ndarray,
    labels: np.ndarray,
    colours: Mapping[int, str],
    names: Mapping[int, str],
    focus: int | None = None,
    width: int = 640,
    height: int = 420,
) -> str:
    """Users as dots coloured by segment; with ``focus``, every other segment is muted grey.

    Each segment is one path of zero-length round-capped strokes (one per dot),
    which keeps 3,000 dots to a few dozen kilobytes.
    """
    xy = _fit_to_box(points, width, height, pad=10)
    labels = np.asarray(labels).reshape(-1)
    ids, counts = np.unique(labels, return_counts=True)
    # Grey (uncoloured or muted) segments go underneath; then largest first, so small segments stay visible.
    def grey(seg: int) -> bool:
        return seg != focus if focus is not None else colours.get(seg, OTHER) == OTHER

    order = sorted(zip(ids.tolist(), counts.tolist()), key=lambda p: (not grey(p[0]), -p[1], p[0]))
    radius = 4.5 if len(xy) > 1500 else 6.0
    parts = [
        f'<svg class="map" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Map of users coloured by segment">',
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="6" fill="#fbfbfc" stroke="#e3e5e8"/>',
    ]
    for seg, count in order:
        rows = xy[labels == seg]
        if focus is not None and seg != focus:
            colour, opacity = MUTED, 0.8
        else:
            colour, opacity = colours.get(int(seg), OTHER), 0.75
        d = "".join(f"M{_num(x)} {_num(y)}h0" for x, y in rows)
        name = names.get(int(seg), f"Segment {seg}")
        parts.append(
            f'<path class="dots" data-segment="{int(seg)}" d="{d}" stroke="{colour}" stroke-opacity="{opacity}" '
            f'stroke-width="{radius}" stroke-linecap="round" fill="none"><title>{escape(name)}: {count} shown</title></path>'
        )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- trait lift bars


def lift_domain(lifts: Sequence[float | None]) -> tuple[float, float]:
    """The log2 lift axis shared by every card: it covers all lifts and at least ½× .. 2×."""
    logs = [_log2_lift(v) for v in lifts if v is not None]
    lo = min([-1.0, *logs])
    hi = max([1.0, *logs])
    return math.floor(lo), math.ceil(hi)


def _log2_lift(lift: float) -> float:
    if lift <= 0:
        return MIN_LOG2_LIFT
    return min(max(math.log2(lift), MIN_LOG2_LIFT), MAX_LOG2_LIFT)


def _tick_label(power: int) -> str:
    if power >= 0:
        return f"{2 ** power}×"
    return {-1: "½×", -2: "¼×"}.get(power, f"1/{2 ** -power}×")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def lift_bars_svg(traits: Sequence[Mapping], colour: str, domain: tuple[float, float], width: int = 480) -> str:
    """One horizontal bar per trait with a lift, on a log scale from the 1× (overall) line.

    Bars to the right: the segment has more of the trait than everyone; to the
    left: less. Each bar is labelled with its lift and both values; a trait
    whose population value is 0 (no lift) gets its values and no bar. A whisker
    across the bar's end spans the 95% interval of the segment's mean over the
    reference value (which is known far more precisely: it is everyone's).
    """
    row_h, label_gap, bar_h, axis_h, text_room = 42, 16, 13, 36, 215
    plot_w = width - text_room
    lo, hi = domain
    span = max(hi - lo, 1e-9)

    def x_of(log_lift: float) -> float:
        return 4 + (plot_w - 8) * (min(max(log_lift, lo), hi) - lo) / span

    ref = x_of(0.0)
    height = row_h * len(traits) + axis_h
    out = [
        f'<svg class="lift" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Trait lift compared with everyone">'
    ]
    for i, t in enumerate(traits):
        y = i * row_h
        label = str(t.get("label") or t.get("feature") or "")
        unit = str(t.get("unit") or "")
        values = f"{fmt_interval(dict(t))} vs {fmt_value(float(t['population_value']), unit, t.get('currency'))}"
        out.append(
            f'<text x="0" y="{y + 12}" class="tl">{escape(_truncate(label, 70))}<title>{escape(label)}</title></text>'
        )
        bar_y = y + label_gap
        lift = t.get("lift")
        if lift is None:
            out.append(f'<text x="{_num(ref + 6)}" y="{bar_y + 10}" class="tv">{escape(values)} (none overall)</text>')
            continue
        end = x_of(_log2_lift(float(lift)))
        left, right = min(ref, end), max(ref, end)
        above = float(lift) >= 1
        out.append(
            f'<rect class="bar" x="{_num(left)}" y="{bar_y}" width="{_num(max(right - left, 1.5))}" height="{bar_h}" '
            f'rx="2" fill="{colour}" fill-opacity="{0.9 if above else 0.45}"><title>{escape(label)}: '
            f'{escape(fmt_lift(float(lift)))} overall</title></rect>'
        )
        whisker = _whisker(t, x_of, bar_y + bar_h / 2)
        out.append(whisker)
        text_x = max(right, ref, _whisker_end(t, x_of)) + 6
        out.append(
            f'<text x="{_num(text_x)}" y="{bar_y + 10.5}" class="tv"><tspan class="tx">'
            f'{escape(fmt_lift(float(lift)))}</tspan> · {escape(values)}</text>'
        )
    axis_y = row_h * len(traits) + 2
    # The 1× line runs through the bars only, so it never crosses a trait's label.
    for i in range(len(traits)):
        top = i * row_h + label_gap - 3
        out.append(f'<line x1="{_num(ref)}" y1="{top}" x2="{_num(ref)}" y2="{top + bar_h + 6}" class="ref"/>')
    out.append(f'<line x1="4" y1="{axis_y}" x2="{_num(plot_w - 4)}" y2="{axis_y}" class="tick"/>')
    step = 1 if (plot_w - 8) / span >= 30 else 2
    for power in range(int(lo), int(hi) + 1):
        if power % step:
            continue
        x = x_of(float(power))
        out.append(f'<line x1="{_num(x)}" y1="{axis_y}" x2="{_num(x)}" y2="{axis_y + 4}" class="tick"/>')
        anchor = "start" if power == lo else ("end" if power == hi else "middle")
        out.append(f'<text x="{_num(x)}" y="{axis_y + 16}" text-anchor="{anchor}" class="ta">{_tick_label(power)}</text>')
    out.append(f'<text x="{_num(ref)}" y="{axis_y + 29}" text-anchor="middle" class="ta">overall</text>')
    out.append("</svg>")
    return "".join(out)


def _interval_logs(t: Mapping) -> tuple[float, float] | None:
    """log2 of the interval ends over the reference value, when the trait has an interval and a lift."""
    low, high, ref = t.get("ci_low"), t.get("ci_high"), float(t.get("population_value") or 0.0)
    if low is None or high is None or t.get("lift") is None or ref <= 0:
        return None
    return _log2_lift(float(low) / ref), _log2_lift(float(high) / ref)


def _whisker_end(t: Mapping, x_of) -> float:
    logs = _interval_logs(t)
    return 0.0 if logs is None else x_of(logs[1])


def _whisker(t: Mapping, x_of, y: float) -> str:
    """The 95% interval as an error bar with end caps ('' without an interval)."""
    logs = _interval_logs(t)
    if logs is None:
        return ""
    x1, x2 = x_of(logs[0]), x_of(logs[1])
    cap = 4
    return (f'<path class="ci" d="M{_num(x1)} {_num(y)}H{_num(x2)}M{_num(x1)} {_num(y - cap)}v{2 * cap}'
            f'M{_num(x2)} {_num(y - cap)}v{2 * cap}" stroke="#1f2328" stroke-width="1.2" fill="none">'
            f'<title>95% interval of the segment mean: {escape(fmt_interval(dict(t)))}</title></path>')


# ---------------------------------------------------------------- silhouette by k


def silhouette_svg(candidates: Sequence[Mapping], chosen_k: int, width: int = 360, height: int = 130) -> str:
    """Silhouette for each candidate k as a line, the chosen k marked; empty string for fewer than 2 candidates."""
    pts = sorted((int(c["k"]), float(c["silhouette"])) for c in candidates if c.get("silhouette") is not None)
    if len(pts) < 2:
        return ""
    left, right, top, bottom = 38, 10, 12, 26
    ks = [k for k, _ in pts]
    ss = [s for _, s in pts]
    s_lo, s_hi = min(ss), max(ss)
    if s_hi - s_lo < 1e-9:
        s_lo, s_hi = s_lo - 0.05, s_hi + 0.05

    def xy(k: int, s: float) -> tuple[float, float]:
        x = left + (width - left - right) * (k - ks[0]) / max(ks[-1] - ks[0], 1)
        y = top + (height - top - bottom) * (s_hi - s) / (s_hi - s_lo)
        return x, y

    line = " ".join(f"{_num(x)},{_num(y)}" for x, y in (xy(k, s) for k, s in pts))
    out = [
        f'<svg class="sil" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Silhouette score for each number of segments tried">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="tick"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="ta">{s_hi:.2f}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" class="ta">{s_lo:.2f}</text>',
        f'<polyline points="{line}" fill="none" stroke="#5b6470" stroke-width="1.6"/>',
    ]
    for k, s in pts:
        x, y = xy(k, s)
        chosen = k == chosen_k
        out.append(
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{4.5 if chosen else 2.2}" fill="{PALETTE[3] if chosen else "#5b6470"}">'
            f"<title>k={k}: silhouette {s:.3f}</title></circle>"
        )
        if chosen:
            anchor = "end" if x > width - 60 else ("start" if x < left + 30 else "middle")
            out.append(f'<text x="{_num(x)}" y="{_num(max(y - 8, 10))}" text-anchor="{anchor}" class="tx">k={k}</text>')
    for k in sorted({ks[0], ks[-1]}):
        x, _ = xy(k, s_lo)
        anchor = "start" if k == ks[0] else "end"
        out.append(f'<text x="{_num(x)}" y="{height - bottom + 15}" text-anchor="{anchor}" class="ta">k={k}</text>')
    out.append(
        f'<text x="{_num((left + width - right) / 2)}" y="{height - bottom + 15}" text-anchor="middle" class="ta">'
        "silhouette by number of segments</text>"
    )
    out.append("</svg>")
    return "".join(out)
