"""CLI commands that read a finished run: describe, compare, recommend, explain, evaluate, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, ENGINE_HELP, RAY_ADDRESS_HELP, app, check_engine, engine_session, err, fail, out

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder of a `segment` run.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
LlmOpt = Annotated[Optional[str], typer.Option("--llm", help="'extractive' (default) or 'openai:MODEL'.")]
LocalOpt = Annotated[Optional[bool], typer.Option("--local-only/--allow-remote", help="Refuse any remote LLM call.")]


def _service(workspace: Path, llm: str | None = None, local_only: bool | None = None):
    from assistant.config import load_settings
    from assistant.service import WorkspaceService

    settings = load_settings(llm=llm, local_only=local_only)
    service = WorkspaceService(workspace, settings)
    return service


def _backend_note(service) -> None:
    err.print(f"[dim]LLM backend: {service.backend.info.label()}[/]", highlight=False)


@app.command()
def describe(
    segment: Annotated[Optional[int], typer.Option("--segment", "-s", help="Segment id (without it: the tree of segments).")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    compare: Annotated[Optional[int], typer.Option("--compare", help="Another segment id to compare with.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Size, share, defining traits with lift, keywords, representative users, typical items; without --segment, the segment tree."""
    from tools.explain.describe import compare_segments, describe_segment

    service = _service(workspace)
    if segment is None:
        summary = service.summary()
        if json_output:
            tree = [{k: s.get(k) for k in ("id", "name", "parent", "level", "children", "size", "share", "outliers")}
                    for s in summary["segments"]]
            print(json.dumps({"k": summary["k"], "k_top": summary.get("k_top", summary["k"]), "segments": tree,
                              "outliers": (summary.get("data") or {}).get("outliers")}, ensure_ascii=False))  # fmt: skip
            return
        from assistant.render import outliers_note, segments_table

        out.print(segments_table(summary))
        note = outliers_note(summary)
        if note:
            out.print(note, highlight=False)
        return
    if compare is not None:
        result = compare_segments(service.run, segment, compare)
        if json_output:
            print(json.dumps(result.as_dict(), ensure_ascii=False))
            return
        from assistant.render import comparison_panel

        out.print(comparison_panel(result))
        return
    desc = describe_segment(service.run, segment, min_segment_size=service.settings.min_segment_size)
    if json_output:
        print(json.dumps(desc.as_dict(), ensure_ascii=False))
        return
    from assistant.render import description_panel

    out.print(description_panel(desc))


@app.command()
def recommend(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="User id as in the data.")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Recommend for every user (batch).")] = False,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many items.")] = 10,
    explain: Annotated[bool, typer.Option("--explain", help="Add a verified explanation to each item.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table | jsonl (with --all-users: one JSON object per user)")] = "table",
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP + " With --all-users only.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help=RAY_ADDRESS_HELP)] = None,
    llm: LlmOpt = None,
    local_only: LocalOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Segment-aware hybrid recommendations for one user, or for all users (a table, or JSON lines)."""
    from tools.core.errors import ParameterError

    if all_users == (user is not None):
        raise ParameterError("give either --user ID or --all-users", "e.g. segscope recommend --user 42 or --all-users --format jsonl")
    if fmt not in ("jsonl", "table"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or jsonl")
    check_engine(engine, ray_address)
    if engine != "local" and not all_users:
        fail("--engine ray scores every user (--all-users); one user's recommendations are made here")
    service = _service(workspace, llm, local_only)
    if all_users:
        with engine_session(engine, ray_address) as run_on:  # an unreachable Ray cluster fails before the fit
            rows = list(service.recommend_all(k=k, engine=run_on))
        if fmt == "jsonl" or json_output:
            for user_id, items in rows:
                print(json.dumps({"user_id": user_id, "items": items}, ensure_ascii=False))
        else:
            _print_all_users_table(rows, k)
        return
    if explain:
        _backend_note(service)
    recs = service.recommend(user, k=k, explain=explain)
    if json_output or fmt == "jsonl":
        print(json.dumps({"user_id": user, "items": [r.as_dict() for r in recs]}, ensure_ascii=False))
        return
    from assistant.render import recommendations_table

    seg = service.run.labels[service.run.row_of(user)]
    out.print(recommendations_table(user, service.run.segment(int(seg)), recs))


def _print_all_users_table(rows: list[tuple[str, list[str]]], k: int) -> None:
    """Plain aligned columns, a line a user: a rich table of every user would be built whole in memory first."""
    width = max([len("user")] + [len(user) for user, _ in rows])
    print(f"{'user':<{width}}  top {k} items, best first")
    for user, items in rows:
        print(f"{user:<{width}}  {' '.join(items) if items else '(nothing unseen to recommend)'}")


@app.command("explain")
def explain_cmd(
    user: Annotated[str, typer.Option("--user", "-u", help="User id as in the data.")],
    item: Annotated[str, typer.Option("--item", "-i", help="Item id as in the data.")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    llm: LlmOpt = None,
    local_only: LocalOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Why ITEM suits USER: evidence from the data, phrased, and checked against that evidence."""
    service = _service(workspace, llm, local_only)
    _backend_note(service)
    result = service.explain(user, item)
    if json_output:
        print(json.dumps(result, ensure_ascii=False))
        return
    from assistant.render import explanation_panel

    out.print(explanation_panel(result))


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="A data file or folder with user-item events.")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off for HR@k and NDCG@k.")] = 10,
    mapping: Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping, e.g. --map user_id=reviewerID.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Leave-last-out evaluation: HR@k and NDCG@k for segscope and for Pop, ItemKNN and EASE on the same split."""
    from tools.data.ingest import load_dataset, parse_mapping
    from tools.recommend.evaluate import evaluate as run_evaluation

    dataset = load_dataset(data, parse_mapping(mapping or []))
    if dataset.kind == "text":
        from tools.core.errors import DataError

        raise DataError(f"{data}: text-only data has no user-item events to evaluate", "pass events with user and item columns")
    events = dataset.events
    # Tags (MovieLens tags.csv) annotate items a user already has; the protocol scores consumption events.
    consumption = events[events["event_type"] != "tag"]
    if len(consumption) < len(events):
        err.print(f"[dim]evaluating {len(consumption):,} consumption events ({len(events) - len(consumption):,} tag events left out)[/]", highlight=False)
    with err.status("evaluating (tuning on a validation split, then scoring every method)…"):
        report = run_evaluation(consumption, k=k)
    if json_output:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    out.print(report.table())


@app.command()
def report(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the report.")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    segment: Annotated[Optional[int], typer.Option("--segment", "-s", help="Only this segment's card.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="html | md (default from --out's suffix)")] = None,
    examples: Annotated[int, typer.Option("--examples", min=0, max=10, help="Example recommendations per segment.")] = 3,
    min_segment_size: Annotated[Optional[int], typer.Option("--min-segment-size", min=1, help="Smaller segments are not shown member by member.")] = None,
    llm: LlmOpt = None,
    local_only: LocalOpt = None,
) -> None:
    """A shareable report: overview, 2-D map, one card per segment with verified example recommendations."""
    from assistant.reporting import build_report
    from tools.explain.wording import fmt_pct

    service = _service(workspace, llm, local_only)
    if min_segment_size is not None:
        service.settings = service.settings.model_copy(update={"min_segment_size": min_segment_size})
    _backend_note(service)
    with err.status("writing the report…"):
        result = build_report(service, out_path, fmt=fmt, segment_id=segment, n_examples=examples)
    out.print(
        f"wrote {result['path']} ({result['n_explanations']} explanations, "
        f"{fmt_pct(result['pass_rate'], 0)} verified)" if result["n_explanations"] else f"wrote {result['path']}"
    )
