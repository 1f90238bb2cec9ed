"""`segscope update`: append new events to the current run (no re-fit), and say when a full re-fit is due."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, err, out, show_progress


@app.command()
def update(
    data: Annotated[Path, typer.Option("--data", help="New events with the same columns as the run's (a file or folder).")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="Column mapping, e.g. --map user_id=reviewerID (repeatable).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the update's figures as JSON on stdout.")] = False,
) -> None:
    """Append NEW events to the run: re-profile and re-place the users they touch, recompute the summary, publish a new run."""
    from assistant.progress import stage_progress
    from tools.core.workspace import Workspace
    from tools.data.ingest import load_dataset, parse_mapping
    from tools.update import update_run

    # A workspace without a run fails here, before NEW is read; NEW is read as the run read its data (users or sessions).
    entity = json.loads((Workspace(workspace).require_run() / "segments.json").read_text())["data"].get("entity", "user")
    dataset = load_dataset(data, parse_mapping(mapping or []), entity=entity)
    with stage_progress(err, show_progress(json_output)) as progress:
        result = update_run(workspace, dataset, progress=progress)
    for warning in dataset.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    s = result.stats
    if json_output:
        print(json.dumps({"run_key": result.key, "updated_from": result.parent, "cached": result.cached, **s,
                          "refit": list(result.refit), "timings": result.timings}))
        return
    out.print(f"updated run {result.parent[:12]} → {result.key[:12]}: {s['affected']:,} users with new events "
              f"({s['new_users']:,} new), {s['placed']:,} re-placed, {s['moved']:,} changed segment", highlight=False)
    if s["end_shift_days"]:
        out.print(f"[dim]the data now ends {s['end_shift_days']:.1f} days later: everyone's recency moved, so everyone was "
                  "re-placed[/]", highlight=False)
    out.print(f"[dim]{s['beyond_p99']:,} updated users are farther from their segment than 99% of the run's users; "
              f"{s['texts_embedded']:,} new texts embedded; {s.get('names_kept', 0)} segment names kept[/]", highlight=False)
    if result.refit:
        out.print("a full re-fit is suggested: " + "; ".join(result.refit), highlight=False)
    else:
        out.print("[dim]no re-fit needed: every drift indicator is under its threshold[/]", highlight=False)
    print(result.workspace / "segments.json")
