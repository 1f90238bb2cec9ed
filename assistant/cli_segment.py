"""`segscope sample` and `segscope segment`: make data, and segment it into a workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, ENGINE_HELP, RAY_ADDRESS_HELP, app, check_engine, engine_session, err, fail, out, show_progress


@app.command()
def sample(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the sample dataset into.")],
    users: Annotated[int, typer.Option("--users", min=10, help="Number of users.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed writes the same files.")] = 0,
    items: Annotated[Optional[int], typer.Option("--items", help="Catalogue size (default scales with users).")] = None,
    bots: Annotated[float, typer.Option("--bots", help="Share of the users that are bots (crawlers, item hammers, rapid-fire, duplicate bursts); truth.csv calls them 'bot'.")] = 0.0,
    plant_gender: Annotated[bool, typer.Option("--plant-gender", help="Add a gender column to users.csv, with one planted segment mostly F (for trying `segscope audit`).")] = False,
    order_only: Annotated[bool, typer.Option("--order-only", help="Split one planted segment in two that differ only in the order of their events (same items, counts and times); truth.csv names both.")] = False,
) -> None:
    """Write a realistic e-commerce dataset with planted segments (and truth.csv)."""
    from tools.data.sample import GENDER_SKEW, generate_sample

    result = generate_sample(out_dir, n_users=users, seed=seed, n_items=items, bots=bots, plant_gender=plant_gender,
                             order_only=order_only)
    planted = f"{len(result.segments)} planted segments" + (f" and {result.n_bots} bots" if result.n_bots else "")
    out.print(f"wrote {result.n_users} users, {result.n_items} items, {result.n_events} events ({planted}) to {result.out_dir}")
    if plant_gender:
        out.print(f"users.csv has a gender column; planted segment {GENDER_SKEW[0]} is {GENDER_SKEW[1]:.0%} F, the others near even")


@app.command()
def segment(
    data: Annotated[Path, typer.Option("--data", help="A data file or folder (CSV, TSV, Parquet, JSONL, .gz; MovieLens layouts).")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder for results.")] = DEFAULT_WORKSPACE,
    k: Annotated[str, typer.Option("--k", help="Number of segments, or 'auto'.")] = "auto",
    algorithm: Annotated[str, typer.Option("--algorithm", help="kmeans | hdbscan | agglomerative")] = "kmeans",
    alpha: Annotated[float, typer.Option("--alpha", help="Weight of text vs behaviour in profiles (0..1).")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for reproducible runs.")] = 0,
    embedder: Annotated[str, typer.Option("--embedder", help="'minilm' (bundled, the default), 'hashing' (fast, low quality: for tests and dry runs only), or a local sentence-transformers model folder.")] = "minilm",
    mapping: Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping, e.g. --map user_id=reviewerID (repeatable).")] = None,
    entity: Annotated[str, typer.Option("--entity", help="What to segment: user | session | auto (sessions when user ids are mostly missing).")] = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Refuse rows without the user (or session) id instead of skipping and counting them.")] = False,
    keep_outliers: Annotated[bool, typer.Option("--keep-outliers", help="Fit flagged outliers (bots, implausible behaviour) with everyone instead of leaving them out and assigning them afterwards.")] = False,
    order: Annotated[bool, typer.Option("--order/--no-order", help="Profile the order of events (steps such as view->cart->purchase, time to convert, sessions) where the data has event types and times; --no-order: order-blind profiles.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")] = False,
    llm: Annotated[Optional[str], typer.Option("--llm", help="'extractive' (default) or 'openai:MODEL' to polish segment names.")] = None,
    local_only: Annotated[Optional[bool], typer.Option("--local-only/--allow-remote", help="Refuse any remote LLM call.")] = None,
    chroma_url: Annotated[Optional[str], typer.Option("--chroma-url", help="Write the vectors to this Chroma server (http://HOST:PORT, started with `chroma run --path DIR --port PORT`) instead of the workspace's folder; 'local' moves them back. Default: the store the workspace already uses, else its folder.")] = None,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help=RAY_ADDRESS_HELP)] = None,
) -> None:
    """Segment users: profiles from texts and behaviour, clustering, traits, keywords, names."""
    from rich.markup import escape

    from assistant.config import load_settings
    from assistant.llm import make_backend
    from assistant.progress import stage_progress
    from tools.data.ingest import load_dataset, parse_mapping
    from tools.embed.embedding import hashing_dim
    from tools.pipeline import RunParams, segment_dataset
    from tools.search.locator import choose_store
    from tools.search.store import VectorStore

    k_value: int | str = k if k == "auto" else _parse_k(k)
    check_engine(engine, ray_address)
    hashing_dim(embedder)  # a malformed name fails here, before any data is read
    settings = load_settings(llm=llm, local_only=local_only, chroma_url=chroma_url)
    backend = make_backend(settings)  # fails early (e.g. --local-only with a remote endpoint)
    store = choose_store(workspace, settings.chroma_url)
    VectorStore(store).check_reachable()  # an unreachable server fails before the data is read or the workspace touched
    with engine_session(engine, ray_address, seed) as run_on:  # so does an unreachable Ray cluster
        dataset = load_dataset(data, parse_mapping(mapping or []), entity=entity, strict=strict)
        for warning in dataset.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        params = RunParams(algorithm=algorithm, k=k_value, alpha=alpha, seed=seed, embedder=embedder, keep_outliers=keep_outliers,
                           order=order)
        with stage_progress(err, show_progress(json_output)) as progress:
            run = segment_dataset(dataset, workspace, params, progress=progress, store=store, engine=run_on)
    for notice in run.notices:
        err.print(f"[yellow]warning:[/] {escape(notice)}", highlight=False)
    if backend.info.generative and (run.summary.get("labels") or {}).get("source") == "extractive":
        from assistant.labelling import polish_labels
        from tools.embed.embedding import make_embedder

        err.print(f"[dim]naming segments with {backend.info.label()}…[/]", highlight=False)
        for notice in polish_labels(workspace, backend, make_embedder(embedder), settings.min_segment_size, settings.llm_batch_seconds):
            err.print(f"[yellow]{notice}[/]", highlight=False)
        run = type(run)(run.workspace, run.key, json.loads((Path(workspace) / "segments.json").read_text()), run.cached, run.timings)
    if json_output:
        print(json.dumps(run.summary, ensure_ascii=False))
        return
    from assistant.render import outliers_note, segments_table

    out.print(segments_table(run.summary))
    summary = run.summary
    note = outliers_note(summary)
    if note:
        out.print(note, highlight=False)
    if summary.get("k_selection"):
        out.print(f"[dim]{summary['k_selection']['reason']}[/]", highlight=False)
    m = summary["metrics"]
    out.print(
        f"[dim]silhouette {m['silhouette']:.3f} · Calinski–Harabasz {m['calinski_harabasz']:.1f} · "
        f"Davies–Bouldin {m['davies_bouldin']:.3f}{' · reused cached run' if run.cached else ''}[/]",
        highlight=False,
    )
    out.print(f"wrote {run.workspace / 'segments.json'} and {run.workspace / 'assignments.csv'}")
    if store.is_server:
        out.print(f"[dim]vectors on {store.describe()}[/]", highlight=False)


def _parse_k(k: str) -> int:
    try:
        return int(k)
    except ValueError:
        fail(f"--k must be a whole number or 'auto', got {k!r}")
        raise  # unreachable: fail exits
