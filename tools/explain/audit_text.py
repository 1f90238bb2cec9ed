"""The fairness audit in words: the lines the CLI prints and the assistant reads, from ``AuditReport.as_dict()``.

Every number comes from the audit's dict (also as saved in audit.json). Segment
names and attribute values come from the data: ``quote`` wraps them (the assistant
fences them as data; the CLI prints them as they are).
"""

from __future__ import annotations

from collections.abc import Callable

from tools.explain.wording import fmt_pct, fmt_value

Quote = Callable[[str], str]


def _same(text: str) -> str:
    return text


def fmt_p(p: float | None) -> str:
    """'p < 0.001', 'p = 0.094'; a dash when there is no test."""
    if p is None:
        return "p —"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"×{ratio:.2f}"


def thresholds_line(d: dict) -> str:
    t = d.get("parameters") or {}
    ratio = float(t.get("proxy_ratio", 1.5))
    return (
        f"A segment is flagged as a proxy when a group's share in it is at least ×{ratio:g} (or at most ×{1 / ratio:.2f}) "
        f"its share overall and at least {float(t.get('proxy_points', 0.1)) * 100:g} percentage points away from it, with a "
        f"Holm-adjusted p below {t.get('alpha', 0.05):g}; figures resting on fewer than {t.get('min_users', 30)} users "
        f"are shown but never flagged. Cramér's V is bias-corrected (Bergsma 2013); its p-value comes from "
        f"{t.get('permutations', 999)} permutations (seed {t.get('seed', 0)})."
    )


def headline(d: dict) -> str:
    """One line: what was audited and what was flagged."""
    attrs = d.get("attributes") or []
    level = "top-level segments" if d.get("level") == "top" else "segments"
    if not attrs:
        return f"Fairness audit of {d.get('n_segments', 0)} {level}: " + "; ".join(d.get("notes") or ["nothing to audit"]) + "."
    flags = [(a["attribute"], p["segment_id"]) for a in attrs for p in a.get("proxies") or []]
    rec_flags = [(a["attribute"], g["value"]) for a in attrs for g in a.get("recommendations") or [] if g.get("flags")]
    said = f"{len(flags)} proxy flag{'s' if len(flags) != 1 else ''}" if flags else "no segment flagged as a proxy"
    if d.get("recommendations") is not None:
        said += f"; {len(rec_flags)} group{'s' if len(rec_flags) != 1 else ''} with a recommendation gap" if rec_flags else "; no recommendation gap flagged"
    names = ", ".join(a["attribute"] for a in attrs)
    return f"Fairness audit of {d.get('n_segments', 0)} {level} of {d.get('n_users', 0):,} users for {names}: {said}."


def association_line(a: dict) -> str:
    s = a["association"]
    return (f"Cramér's V {s['cramers_v']:.3f} (bias-corrected; {s['cramers_v_uncorrected']:.3f} uncorrected), "
            f"permutation {fmt_p(s['p_value'])} over {s['permutations']} shuffles: {a['strength']}.")  # fmt: skip


def _groups(a: dict, quote: Quote) -> str:
    return ", ".join(f"{quote(g)}: {n:,}" for g, n in a["groups"])


def proxy_lines(a: dict, quote: Quote = _same) -> list[str]:
    if not a.get("proxies"):
        return [f"No segment is a proxy for {a['attribute']}."]
    out = []
    for p in a["proxies"]:
        cells = "; ".join(
            f"{quote(c['value'])} {fmt_pct(c['share'], 1)} vs {fmt_pct(c['population_share'], 1)} overall "
            f"({fmt_ratio(c['ratio'])}, {fmt_p(c['p_value'])})" for c in p["groups"])  # fmt: skip
        line = f"Segment {p['segment_id']} “{quote(p['segment_name'])}” is in effect a proxy for {a['attribute']}: {cells}."
        if p.get("carried_by"):
            lead = _lead(p)
            way = "the way" if lead["direction"] == "over" else "against the way"
            group = quote(lead["value"])
            line += (f" Carried by the features where the segment departs from everyone {way} {group} does: "
                     + "; ".join(_carrier(c, group) for c in p["carried_by"]) + ".")
        out.append(line)
    return out


def _lead(p: dict) -> dict:
    """The cell a proxy flag is explained by (as tools/explain/audit.py picks it): an over-represented group first, the largest gap."""
    return max(p["groups"], key=lambda c: (c["direction"] == "over", abs(c["share"] - c["population_share"])))


def _carrier(c: dict, group: str) -> str:
    if c["feature"] == "text profile":
        return f"{c['label']} (what the segment and {group} touched and wrote)"
    return f"{c['label']} (segment {c['segment_effect']:+.2f} sd, {group} {c['group_effect']:+.2f} sd)"


def feature_lines(a: dict, quote: Quote = _same) -> list[str]:
    feats = a.get("features") or []
    if not feats:
        return [f"No profile feature separates the {a['attribute']} groups by more than a negligible effect (eta² < 0.01)."]
    parts = []
    for f in feats:
        if f["feature"] == "text profile":
            parts.append(f"{f['label']} eta² {f['eta_squared']:.3f} (between segments {f['segment_eta_squared']:.3f})")
            continue
        (hi, v_hi), (lo, v_lo) = f["highest"], f["lowest"]
        parts.append(f"{f['label']} eta² {f['eta_squared']:.3f} ({quote(hi)} {fmt_value(v_hi, f['unit'])} vs "
                     f"{quote(lo)} {fmt_value(v_lo, f['unit'])}; between segments {f['segment_eta_squared']:.3f})")  # fmt: skip
    return ["Features that best separate the groups: " + "; ".join(parts) + "."]


def composition_lines(a: dict, quote: Quote = _same, min_users: int = 30) -> list[str]:
    out = []
    for c in a["compositions"]:
        cells = ", ".join(f"{quote(s['value'])} {fmt_pct(s['share'], 1)} ({fmt_ratio(s['ratio'])})"
                          + (" ▲" if s.get("direction") == "over" else " ▼" if s.get("direction") == "under" else "")
                          for s in c["shares"])  # fmt: skip
        few = f" — too few users with a value (fewer than {min_users}): no verdict" if c["too_few"] else ""
        out.append(f"segment {c['segment_id']} “{quote(c['name'])}” ({c['n_known']:,} with a value): {cells}{few}")
    return out


def recommendation_lines(a: dict, quote: Quote = _same, min_users: int = 30) -> list[str]:
    recs = a.get("recommendations")
    if recs is None:
        return []
    out = []
    for g in recs:
        if g["ndcg"] is None:
            out.append(f"{quote(g['value'])}: no test user")
            continue
        gap = "—" if g["ndcg_gap"] is None else f"{g['ndcg_gap']:+.4f}"
        line = (f"{quote(g['value'])} ({g['n_test_users']:,} test users): HR@10 {g['hr']:.3f}, NDCG@10 {g['ndcg']:.4f}"
                f" ({gap} vs the others, {fmt_p(g['ndcg_p'])})")  # fmt: skip
        if g.get("exposure") is not None:
            history = "" if g.get("history_head_share") is None else f", {fmt_pct(g['history_head_share'], 1)} of their own history"
            line += f"; popular-item exposure {fmt_pct(g['exposure'], 1)} of slots{history} ({fmt_p(g['exposure_p'])})"
        if g["too_few"]:
            line += f" — too few users (fewer than {min_users}): no verdict"
        elif g.get("flags"):
            line += " — " + ", ".join(g["flags"])
        out.append(line)
    return out


def audit_lines(d: dict, quote: Quote = _same, detail: bool = True) -> list[str]:
    """The whole audit as lines of text; ``detail`` adds every segment's composition and the thresholds."""
    min_users = int((d.get("parameters") or {}).get("min_users", 30))
    lines = [headline(d)]
    for name, why in d.get("skipped") or []:
        lines.append(f"Not audited: {name}: {why}.")
    if not d.get("attributes"):
        return lines
    if detail:
        lines.append(thresholds_line(d))
    overall = d.get("recommendations")
    for note in d.get("notes") or []:
        lines.append(note[0].upper() + note[1:] + ".")
    for a in d["attributes"]:
        asked = f", asked for as {quote(a['asked_as'])}" if a.get("asked_as") else ""
        banded = f"; {a['banding']}" if a.get("banding") else ""
        missing = f"; {a['n_missing']:,} without a value, left out" if a.get("n_missing") else ""
        lines += ["", f"{a['attribute']}{asked} — {a['n_users']:,} users ({_groups(a, quote)}){banded}{missing}", association_line(a)]
        if a.get("small_groups"):
            lines.append(f"Too few users (fewer than {min_users}) to judge: {', '.join(quote(g) for g in a['small_groups'])}.")
        if detail:
            lines += ["Composition of each segment (share of the segment, ratio to the share overall; ▲▼ flagged):"]
            lines += ["  " + line for line in composition_lines(a, quote, min_users)]
        lines += proxy_lines(a, quote) + feature_lines(a, quote)
        if a.get("recommendations") is not None and overall is not None:
            lines.append(f"Recommendations by {a['attribute']} (everyone: HR@10 {overall['hr']:.3f}, NDCG@10 {overall['ndcg']:.4f}, "
                         f"{fmt_pct(overall['exposure'] or 0.0, 1)} of top-10 slots on the {overall['head_items']:,} most popular items):")  # fmt: skip
            lines += ["  " + line for line in recommendation_lines(a, quote, min_users)]
    return lines
