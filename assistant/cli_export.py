"""CLI command that hands a segment's members to other systems: export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, err


@app.command()
def export(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    segment: Annotated[str, typer.Option("--segment", "-s", help="Segment id, or 'all'.")] = "all",
    fmt: Annotated[str, typer.Option("--format", help="csv | parquet | jsonl")] = "csv",
    out_path: Annotated[Optional[Path], typer.Option("--out", help="File to write (default: WORKSPACE/exports/...).")] = None,
    changed_since: Annotated[
        Optional[str], typer.Option("--changed-since", help="A run key (or prefix) of this workspace: write only who entered, left or moved.")
    ] = None,
) -> None:
    """Members of a segment (user_id, segment_id, segment_key, behaviour features in their units) as CSV, Parquet or JSON lines."""
    from tools.core.run_state import load_run
    from tools.report.export import check_format, export_members

    check_format(fmt)  # before loading the run: a typo should not cost a load
    result = export_members(load_run(workspace), segment=segment, fmt=fmt, out=out_path, changed_since=changed_since)
    what = f"{result.rows:,} {'changes' if result.since_run else 'members'} of segment {result.segment}"
    err.print(f"[dim]{what} ({result.format})[/]", highlight=False)
    print(result.path)
