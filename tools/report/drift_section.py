"""The report's drift section: the latest ``segscope drift`` of the run (its drift.json), as HTML and Markdown.

A migration table shaded by the share of each row that went to each column (a
heat map with the counts written in), the size change of every segment, the
trait shifts with their 95% intervals, and the users who fit no segment. Named
examples of moves are shown only between segments of at least the report's
minimum size, as members are everywhere else in the report.
"""

from __future__ import annotations

from html import escape

from tools.explain.wording import fmt_compact, fmt_pct
from tools.report.markdown import md_escape

MAX_MOVES = 6


def top_moves(report: dict, min_size: int) -> list[tuple[int, str, str, list[str]]]:
    """(count, from, to, examples) of the largest moves; no examples where either side is a small segment."""
    m = report["migration"]
    moves = []
    for b, row, b_size, b_label in zip(m["rows"], m["counts"], m["row_sizes"], m["row_labels"]):
        for a, n, a_label, a_size in zip(m["columns"], row, m["column_labels"], m["column_sizes"]):
            key = f"{b}->{a}"
            if n and key in m["examples"]:
                small = a_size < min_size or b_size < min_size
                moves.append((int(n), b_label, a_label, [] if small else list(m["examples"][key])))
    return sorted(moves, key=lambda x: -x[0])[:MAX_MOVES]


def _heading(report: dict) -> str:
    u = report["users"]
    return (f"{report['before']} → {report['after']}: {u['in_both']:,} users in both, {u['moved']:,} moved, "
            f"{u['left']:,} left, {u['new']:,} new; segments {report['matching']['kept']} of "
            f"{report['matching']['segments']} kept ({report['matching']['method']})")


def _unusual_line(report: dict) -> str:
    un = report["unusual"]
    verdict = "a candidate new segment" if un["candidate"] else "no sign of a new segment"
    return (f"{un['beyond_p99']:,} of {un['pool']:,} users ({fmt_pct(un['share_beyond_p99'] or 0, 1)}; 1% expected) are farther "
            f"from their segment than 99% of the run's own users: {verdict}.")


def _shift_text(t: dict) -> str:
    return (f"{t['label']}: {fmt_compact(t['before'], t['unit'])} → {fmt_compact(t['after'], t['unit'])} "
            f"(change {t['change']:+.3g}, 95% CI {t['ci_low']:+.3g} to {t['ci_high']:+.3g}; n {t['n_before']:,} → {t['n_after']:,})")


def html_section(report: dict, min_size: int) -> str:
    """The drift section as HTML (everything from the data escaped)."""
    e = escape
    m = report["migration"]
    head = "".join(f"<th title='{e(label)}'>{e(label.split(' ')[0])}</th>" for label in m["column_labels"])
    rows = []
    for row, total, label in zip(m["counts"], m["row_totals"], m["row_labels"]):
        cells = "".join(
            f"<td style='background:rgba(47,111,235,{(n / total if total else 0) * 0.85:.2f})'>{n:,}</td>" if n else "<td>·</td>"
            for n in row)
        rows.append(f"<tr><th>{e(label)}</th>{cells}<td><b>{total:,}</b></td></tr>")
    sizes = "".join(
        f"<tr><td>{e(str(s['id']) if s['kept'] or s['current_id'] is None else str(s['current_id']) + '*')}</td><td>{e(s['name'] or '—')}</td>"
        f"<td>{s['before']:,} ({fmt_pct(s['before_share'], 1)})</td><td>{s['after']:,} ({fmt_pct(s['after_share'], 1)})</td>"
        f"<td>{100 * (s['after_share'] - s['before_share']):+.1f} pts</td></tr>" for s in report["segments"])
    moves = "".join(f"<li>{n:,} from <b>{e(a)}</b> to <b>{e(b)}</b>" + (f", e.g. {e(', '.join(ex))}" if ex else "") + "</li>"
                    for n, a, b, ex in top_moves(report, min_size))
    shifts = "".join(f"<li>segment {e(str(t['segment']))}: {e(_shift_text(t))}</li>" for t in report["trait_shifts"][:12])
    traits = "".join(f"<li>{e(t['label'])}: {e(fmt_compact(t['segment_value'], t['unit']))} vs "
                     f"{e(fmt_compact(t['population_value'], t['unit']))} overall</li>" for t in report["unusual"]["traits"])
    return (
        "<section class='drift'><h2>Drift</h2>"
        f"<p class='sub'>{e(_heading(report))}</p>"
        "<h3>Migration</h3><p class='sub'>Rows: segment before; columns: segment after; shade: share of the row. "
        "* marks a segment with no earlier counterpart.</p>"
        f"<table class='migration'><tr><th>before \\ after</th>{head}<th>total</th></tr>{''.join(rows)}</table>"
        f"<ul>{moves}</ul>"
        f"<h3>Sizes</h3><table><tr><th>id</th><th>segment</th><th>before</th><th>after</th><th>change</th></tr>{sizes}</table>"
        + (f"<h3>Trait shifts</h3><p class='sub'>{e(report.get('method', {}).get('trait_ci', ''))}</p><ul>{shifts}</ul>" if shifts else "")
        + f"<h3>Users who fit no segment</h3><p>{e(_unusual_line(report))}</p>"
        + (f"<ul>{traits}</ul>" if report["unusual"]["candidate"] and traits else "")
        + "</section>"
    )


def markdown_section(report: dict, min_size: int) -> list[str]:
    """The drift section as Markdown lines."""
    m = report["migration"]
    out = ["## Drift", "", md_escape(_heading(report)), "", "**Migration** (rows: before, columns: after; * no earlier counterpart)", ""]
    cols = [label.split(" ")[0] for label in m["column_labels"]]
    out.append("| before \\ after | " + " | ".join(cols) + " | total |")
    out.append("|---|" + "---:|" * (len(cols) + 1))
    for row, total, label in zip(m["counts"], m["row_totals"], m["row_labels"]):
        out.append(f"| {md_escape(label)} | " + " | ".join(f"{n:,}" if n else "·" for n in row) + f" | {total:,} |")
    out.append("")
    for n, a, b, ex in top_moves(report, min_size):
        out.append(f"- {n:,} from **{md_escape(a)}** to **{md_escape(b)}**" + (f", e.g. {md_escape(', '.join(ex))}" if ex else ""))
    out += ["", "**Sizes**", "", "| id | segment | before | after | change |", "|---:|---|---:|---:|---:|"]
    for s in report["segments"]:
        ident = str(s["id"]) if s["kept"] or s["current_id"] is None else f"{s['current_id']}*"
        out.append(f"| {ident} | {md_escape(s['name'] or '—')} | {s['before']:,} ({fmt_pct(s['before_share'], 1)}) | "
                   f"{s['after']:,} ({fmt_pct(s['after_share'], 1)}) | {100 * (s['after_share'] - s['before_share']):+.1f} pts |")
    if report["trait_shifts"]:
        out += ["", f"**Trait shifts** ({md_escape(report.get('method', {}).get('trait_ci', ''))})", ""]
        out += [f"- segment {t['segment']}: {md_escape(_shift_text(t))}" for t in report["trait_shifts"][:12]]
    out += ["", "**Users who fit no segment**", "", md_escape(_unusual_line(report)), ""]
    if report["unusual"]["candidate"]:
        out += [f"- {md_escape(t['label'])}: {fmt_compact(t['segment_value'], t['unit'])} vs "
                f"{fmt_compact(t['population_value'], t['unit'])} overall" for t in report["unusual"]["traits"]] + [""]
    return out
