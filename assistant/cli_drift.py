"""`segscope drift`: who moved between segments, how sizes and traits shifted, who fits no segment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, err, fail, out, show_progress
from assistant.render_drift import migration_table, sizes_table, top_moves, unusual_line
from tools.explain.wording import fmt_compact


def render(report: dict) -> None:
    out.print(f"[bold]drift[/] {report['before']} → {report['after']}", highlight=False)
    u = report["users"]
    out.print(f"{u['before']:,} users before, {u['after']:,} after; {u['in_both']:,} in both, {u['left']:,} left, "
              f"{u['new']:,} new; matching: {report['matching']['method']} ({report['matching']['kept']} of "
              f"{report['matching']['segments']} segments kept)", highlight=False)
    out.print(sizes_table(report))
    out.print(migration_table(report))
    for n, b, c in top_moves(report):
        out.print(f"  {n:,} moved {b} → {c}, e.g. {', '.join(report['migration']['examples'][f'{b}->{c}'])}", highlight=False)
    for t in report["trait_shifts"][:10]:
        out.print(f"  segment {t['segment']}: {t['label']} {fmt_compact(t['before'], t['unit'])} → "
                  f"{fmt_compact(t['after'], t['unit'])} (change {t['change']:+.3g}, 95% CI {t['ci_low']:+.3g} to "
                  f"{t['ci_high']:+.3g})", highlight=False)
    out.print(unusual_line(report), highlight=False)
    if report["unusual"]["candidate"]:
        for t in report["unusual"]["traits"]:
            out.print(f"  {t['label']}: {fmt_compact(t['segment_value'], t['unit'])} vs "
                      f"{fmt_compact(t['population_value'], t['unit'])} overall", highlight=False)


@app.command()
def drift(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    data: Annotated[Optional[Path], typer.Option("--data", help="Later data to compare with the run as fitted.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="An earlier run of the workspace (key, prefix or 'previous').")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="Compare the last window of the run's data with before, e.g. 90d.")] = None,
    append: Annotated[bool, typer.Option("--append", help="With --data: it continues the run's data (profile users over both).")] = False,
    mapping: Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping for --data, e.g. --map user_id=reviewerID.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the drift report as JSON on stdout.")] = False,
) -> None:
    """Migration between segments (with examples), size and trait changes with 95% intervals, users who fit no segment."""
    from assistant.progress import stage_progress
    from tools.segment.assign import load_fitted_run
    from tools.segment.drift import parse_window
    from tools.segment.drift_runs import (
        drift_data,
        drift_since,
        drift_window,
        write_drift,
    )

    chosen = [name for name, value in (("--data", data), ("--since", since), ("--window", window)) if value is not None]
    if len(chosen) != 1:
        fail("give exactly one of --data LATER, --since RUN or --window 90d" + (f" (got {', '.join(chosen)})" if chosen else ""))
    if window is not None:
        parse_window(window)  # a typo fails before the run is loaded
    fitted = load_fitted_run(workspace)
    with stage_progress(err, show_progress(json_output)) as progress:
        if data is not None:
            from tools.data.ingest import load_dataset, parse_mapping

            later = load_dataset(data, parse_mapping(mapping or []), entity=fitted.run.summary["data"].get("entity", "user"))
            report = drift_data(fitted, later, append=append, progress=progress)
        elif since is not None:
            report = drift_since(fitted, since, progress=progress)
        else:
            report = drift_window(fitted, window or "", progress=progress)
    for note in report.notes:
        err.print(f"[yellow]warning:[/] {note}", highlight=False)
    path = write_drift(fitted, report)
    if json_output:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    render(report.as_dict())
    print(path)
