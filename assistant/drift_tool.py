"""The assistant's drift tool: who moved between segments over a window (or since an earlier run), in a few cited lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.core.errors import ParameterError
from tools.explain.wording import fmt_compact, fmt_pct

if TYPE_CHECKING:
    from assistant.toolbox import Toolbox, ToolResult

DEFAULT_WINDOW_DAYS = 30.0


def _name(report: dict, current_id: int | None = None, before_id: int | None = None) -> str:
    from assistant.toolbox import data_text

    for s in report["segments"]:
        if (current_id is not None and s["current_id"] == current_id) or (current_id is None and s["previous_id"] == before_id):
            return f"segment {s['id']} {data_text(s['name'], 80)}"
    return f"segment {current_id if current_id is not None else before_id}"


def segment_drift(toolbox: Toolbox, window_days: float | None, since_run: str | None, from_segment: int | str | None,
                  to_segment: int | str | None, n: int) -> ToolResult:
    """Compare the run with its data's last ``window_days`` (default 30) or with ``since_run``; name the movers asked about."""
    from assistant.toolbox import ToolResult
    from tools.embed.embedding import vectors_name
    from tools.segment.assign import load_fitted_run
    from tools.segment.drift_runs import drift_since, drift_window, write_drift

    if window_days is not None and since_run is not None:
        raise ParameterError("give a time window or an earlier run, not both", "e.g. 'since last month' or 'since the previous run'")
    # Segments are named as the current run names them; ask before the (slower) comparison runs.
    to_id = None if to_segment is None else toolbox._segment_id(to_segment)
    from_now = None if from_segment is None else toolbox._segment_id(from_segment)
    fitted = load_fitted_run(toolbox.service.workspace)
    embedder = toolbox.service.embedder
    embedder = embedder if vectors_name(embedder) == fitted.vectors_name else None  # else the run's own (fitted.make_embedder)
    if since_run is not None:
        report = drift_since(fitted, since_run, embedder, toolbox.progress)
    else:
        report = drift_window(fitted, f"{window_days or DEFAULT_WINDOW_DAYS:g}d", embedder, toolbox.progress)
    write_drift(fitted, report)
    d = report.as_dict()
    from_id = from_now
    if from_now is not None and report.mode == "since":  # the earlier run's segment this one was matched with
        from_id = next((s["previous_id"] for s in d["segments"] if s["current_id"] == from_now and s["kept"]), None)
        if from_id is None:
            raise ParameterError(f"segment {from_now} has no counterpart in run {d['previous_run_key'][:12]}",
                                 "ask without 'from', or name a segment that both runs have")
    u = d["users"]
    lines = [f"Drift from {d['before']} to {d['after']}: {u['in_both']:,} users in both, {u['moved']:,} moved to another segment, "
             f"{u['left']:,} left, {u['new']:,} are new. Segments matched: {d['matching']['method']}."]
    movers: list[str] = []
    if from_id is not None or to_id is not None:
        movers = report.movers(from_id, to_id)
        src = "any segment" if from_id is None else (_name(d, None, from_id) if report.mode == "since" else _name(d, from_id))
        dst = "another segment" if to_id is None else _name(d, to_id)
        shown = ", ".join(movers[:n])
        lines.append(f"{len(movers):,} users moved from {src} to {dst}" + (f"; e.g. {shown}" if movers else ".")
                     + (f" (first {n} of {len(movers):,})" if len(movers) > n else ""))
    else:
        m = d["migration"]
        cells = sorted(((c, b, a) for b, row in zip(m["rows"], m["counts"]) for a, c in zip(m["columns"], row)
                        if f"{b}->{a}" in m["examples"]), reverse=True)[:3]  # fmt: skip
        for c, b, a in cells:
            src = _name(d, None, b) if report.mode == "since" else _name(d, b)
            lines.append(f"- {c:,} moved from {src} to {_name(d, a)}, e.g. {', '.join(m['examples'][f'{b}->{a}'])}")
    changes = sorted(d["segments"], key=lambda s: -abs(s["after_share"] - s["before_share"]))[:3]
    for s in changes:
        lines.append(f"- {_name(d, s['current_id'], s['previous_id'])}: {s['before']:,} → {s['after']:,} users "
                     f"({fmt_pct(s['before_share'], 1)} → {fmt_pct(s['after_share'], 1)})")
    focus = {x for x in (to_id, from_now) if x is not None}
    shifts = [t for t in d["trait_shifts"] if not focus or t["segment"] in focus][:3]
    for t in shifts:
        lines.append(f"- {_name(d, t['segment'])}: {t['label']} {fmt_compact(t['before'], t['unit'])} → {fmt_compact(t['after'], t['unit'])} "
                     f"(95% CI of the change {t['ci_low']:+.3g} to {t['ci_high']:+.3g})")
    un = d["unusual"]
    lines.append(f"{un['beyond_p99']:,} of {un['pool']:,} users judged fit no segment as well as 99% of the run's users do"
                 + (": a candidate new segment." if un["candidate"] else "."))
    return ToolResult("\n".join(lines), {"drift": d, "movers": movers[:n], "n_movers": len(movers)})
