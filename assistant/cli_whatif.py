"""`segscope whatif`: the smallest change in a user's own behaviour that the saved model assigns to another segment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, out


@app.command()
def whatif(
    user: Annotated[str, typer.Option("--user", help="The user, as written in the data (u00042; 'user 42' and '#42' are understood).")],
    to: Annotated[str, typer.Option("--to", help="The target segment: its id, a rank ('biggest') or words of its name ('book reviewers').")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    max_changes: Annotated[int, typer.Option("--max-changes", help="At most this many unit changes (events or orders added, a new visit).")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """What would move USER into segment TO: changes in their units, verified by re-assigning the changed profile."""
    from tools.core.workspace import Workspace
    from tools.explain.resolve import Resolver, WorkspaceIndex
    from tools.segment.assign import load_fitted_run
    from tools.segment.whatif_text import what_would_move

    resolver = Resolver(WorkspaceIndex.load(Workspace(workspace).require_run()))
    user_id, target = resolver.user(user), resolver.segment(to)  # a bad --user or --to: one line, exit 2, before any work
    fitted = load_fitted_run(workspace)
    result = what_would_move(fitted, user_id, target, max_changes)
    if json_output:
        print(json.dumps(result.as_dict()))
        return
    for line in result.lines():
        out.print(line, highlight=False, markup=False)
