"""`segscope assign`: place the users of new data in the current run's segments, without re-fitting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, ENGINE_HELP, RAY_ADDRESS_HELP, app, check_engine, engine_session, err, out, show_progress


@app.command()
def assign(
    data: Annotated[Path, typer.Option("--data", help="New data with the same columns as the run's (a file or folder).")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="CSV file to write (default: WORKSPACE/exports/assign-RUN-DATA.csv).")] = None,
    mapping: Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping, e.g. --map user_id=reviewerID (repeatable).")] = None,
    append: Annotated[bool, typer.Option("--append", help="NEW continues the run's data (a later slice): profile each of its users over their run events too.")] = False,
    entity: Annotated[Optional[str], typer.Option("--entity", help="user | session (default: what the run segmented).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print what was written as JSON on stdout.")] = False,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help=RAY_ADDRESS_HELP)] = None,
) -> None:
    """Assign each user of NEW data to the run's segments with the saved model: segment, top segment, distances, next segment."""
    from assistant.progress import stage_progress
    from tools.data.ingest import load_dataset, parse_mapping
    from tools.segment.assign import (
        assign_dataset,
        check_out,
        default_out,
        load_fitted_run,
        write_assignment,
    )

    check_engine(engine, ray_address)
    if out_path is not None:
        check_out(out_path)  # before any work: a bad --out should not cost a profile run
    fitted = load_fitted_run(workspace)
    with engine_session(engine, ray_address) as run_on:  # an unreachable Ray cluster fails before the data is read
        dataset = load_dataset(data, parse_mapping(mapping or []), entity=entity or fitted.run.summary["data"].get("entity", "user"))
        with stage_progress(err, show_progress(json_output)) as progress:
            result = assign_dataset(fitted, dataset, progress=progress, append=append, engine=run_on)
    if fitted.fit_agreement < 1:  # the saved model no longer reproduces its own run: say so rather than hide it
        err.print(f"[yellow]warning:[/] the saved model places {fitted.fit_agreement:.1%} of the run's own users where the run did; "
                  "segment the data again for exact assignments", highlight=False)
    for warning in (*dataset.warnings, *result.warnings):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    path = write_assignment(result, out_path or default_out(workspace, result, dataset.fingerprint, append))
    unusual = int((result.percentile > 0.99).sum())
    summary = {
        "path": str(path), "run_key": result.run_key, "users": len(result.user_ids), "new_users": result.n_new_users,
        "texts_embedded": result.profiles.n_texts_embedded, "unusual_users": unusual, "sizes": result.sizes(),
        "fit_agreement": round(fitted.fit_agreement, 4),
    }  # fmt: skip
    if json_output:
        print(json.dumps(summary))
        return
    sizes = ", ".join(f"{seg}: {n:,}" for seg, n in sorted(result.sizes().items()))
    out.print(f"assigned {summary['users']:,} users ({summary['new_users']:,} not in the run) to run {result.run_key[:12]}: {sizes}",
              highlight=False)
    out.print(f"[dim]{unusual:,} users are farther from their segment than 99% of the run's users are from theirs; "
              f"{summary['texts_embedded']:,} new texts embedded[/]", highlight=False)
    print(path)
