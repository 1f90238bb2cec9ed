"""The report's fairness-audit section: tables built from ``AuditReport.as_dict()``, and its HTML.

The Markdown rendering (tools/report/markdown.py) uses the same tables and lines, so
the two formats say the same thing. Group values and segment names are data text:
the renderers escape them.
"""

from __future__ import annotations

from html import escape

from tools.explain.audit_text import (
    association_line,
    feature_lines,
    fmt_p,
    fmt_ratio,
    headline,
    proxy_lines,
    thresholds_line,
)
from tools.explain.wording import fmt_pct

Table = tuple[tuple[str, ...], list[tuple[str, ...]]]
NO_RECS = "Recommendation quality by group is not in this report: `segscope audit` adds it (HR@10, NDCG@10, exposure)."


def _min_users(d: dict) -> int:
    return int((d.get("parameters") or {}).get("min_users", 30))


def composition_table(a: dict, min_users: int = 30) -> Table:
    """Segments × groups: each cell the group's share of the segment, its ratio to the share overall, ▲/▼ when flagged."""
    header = ("Segment", "Users with a value", *(g for g, _ in a["groups"]))
    total = sum(n for _, n in a["groups"]) or 1
    rows = [("Everyone", f"{a['n_users']:,}", *(fmt_pct(n / total, 1) for _, n in a["groups"]))]
    for c in a["compositions"]:
        cells = []
        for s in c["shares"]:
            mark = " ▲" if s.get("direction") == "over" else " ▼" if s.get("direction") == "under" else ""
            cells.append(f"{fmt_pct(s['share'], 1)} {fmt_ratio(s['ratio'])}{mark}")
        few = f" (fewer than {min_users}: no verdict)" if c["too_few"] else ""
        rows.append((f"{c['segment_id']}. {c['name']}", f"{c['n_known']:,}{few}", *cells))
    return header, rows


def recommendation_table(a: dict, min_users: int = 30) -> Table | None:
    recs = a.get("recommendations")
    if recs is None:
        return None
    header = ("Group", "Test users", "HR@10", "NDCG@10", "NDCG vs others", "Top-10 slots on popular items", "Popular share of own history", "Verdict")
    rows = []
    for g in recs:
        if g["ndcg"] is None:
            rows.append((g["value"], "0", "—", "—", "—", "—", "—", "no test user"))
            continue
        gap = "—" if g["ndcg_gap"] is None else f"{g['ndcg_gap']:+.4f} ({fmt_p(g['ndcg_p'])})"
        exposure = "—" if g.get("exposure") is None else f"{fmt_pct(g['exposure'], 1)} ({fmt_p(g['exposure_p'])})"
        history = "—" if g.get("history_head_share") is None else fmt_pct(g["history_head_share"], 1)
        verdict = f"too few users (< {min_users})" if g["too_few"] else (", ".join(g.get("flags") or []) or "no gap flagged")
        rows.append((g["value"], f"{g['n_test_users']:,}", f"{g['hr']:.3f}", f"{g['ndcg']:.4f}", gap, exposure, history, verdict))
    return header, rows


def attribute_title(a: dict) -> str:
    banded = f" ({a['banding']})" if a.get("banding") else ""
    return f"{a['attribute']}{banded}"


def attribute_notes(a: dict, min_users: int = 30) -> list[str]:
    notes = []
    if a.get("n_missing"):
        notes.append(f"{a['n_missing']:,} users have no value and are left out.")
    if a.get("small_groups"):
        notes.append(f"Too few users (fewer than {min_users}) to judge: {', '.join(a['small_groups'])}.")
    return notes


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="tablewrap"><table class="audit"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_audit_html(d: dict | None) -> str:
    """The section as HTML (empty when there is no audit)."""
    if d is None:
        return ""
    parts = [f"<section id='fairness'><h2>Fairness audit</h2><div class='panel'><p>{_e(headline(d))}</p>"]
    parts += [f"<p class='note'>Not audited: {_e(name)}: {_e(why)}.</p>" for name, why in d.get("skipped") or []]
    if d.get("attributes"):
        parts.append(f"<p class='hint'>{_e(thresholds_line(d))}</p>")
    parts.append("</div>")
    n = _min_users(d)
    for a in d.get("attributes") or []:
        parts.append(f"<div class='panel'><h3>{_e(attribute_title(a))}</h3><p><b>{_e(association_line(a))}</b></p>")
        parts += [f"<p class='note'>{_e(note)}</p>" for note in attribute_notes(a, n)]
        parts.append("<h4>Composition of each segment</h4>" + _html_table(composition_table(a, n)))
        parts += [f"<p>{_e(line)}</p>" for line in proxy_lines(a) + feature_lines(a)]
        recs = recommendation_table(a, n)
        if recs is not None:
            parts.append("<h4>Recommendations by group</h4>" + _html_table(recs))
        parts.append("</div>")
    if d.get("attributes") and d.get("recommendations") is None:
        parts.append(f"<p class='note'>{_e(NO_RECS)}</p>")
    parts.append("</section>")
    return "".join(parts)
