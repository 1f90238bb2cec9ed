"""`segscope audit`: is any segment a proxy for a user attribute, and do recommendations serve every group alike?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, err, out, show_progress


@app.command()
def audit(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")] = DEFAULT_WORKSPACE,
    sensitive: Annotated[Optional[str], typer.Option("--sensitive", help="User attributes to audit, comma-separated (e.g. gender,age,occupation); default: every attribute of the users table.")] = None,
    level: Annotated[str, typer.Option("--level", help="leaf (the segments users are in, default) | top (the top level of a two-level run)")] = "leaf",
    recommendations: Annotated[bool, typer.Option("--recommendations/--no-recommendations", help="Also audit recommendation quality (HR@10, NDCG@10) and popular-item exposure per group.")] = True,
    permutations: Annotated[int, typer.Option("--permutations", min=1, max=100_000, help="Shuffles behind each permutation p-value.")] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutations.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the audit as JSON on stdout.")] = False,
) -> None:
    """Fairness audit: Cramér's V of segments against each attribute, each segment's composition, proxies and what carries them, recommendation quality and exposure per group."""
    from assistant.progress import stage_progress
    from tools.core.run_state import load_run
    from tools.explain.audit import AUDIT_FILE, saved_or_new_audit
    from tools.explain.audit_text import audit_lines

    asked = None if sensitive is None else [name.strip() for name in sensitive.split(",") if name.strip()]
    run = load_run(workspace)
    with stage_progress(err, show_progress(json_output)) as progress:
        result, reused = saved_or_new_audit(run, asked or None, level=level, recommendations=recommendations,
                                            permutations=permutations, seed=seed, progress=progress)  # fmt: skip
    if json_output:
        print(json.dumps(result, ensure_ascii=False))
        return
    for line in audit_lines(result):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if result.get("attributes"):
        where = run.run_dir / AUDIT_FILE
        out.print(f"[dim]{'reused' if reused else 'wrote'} {where}[/]", highlight=False)
