"""Assemble a report: the run's summary, a 2-D map, and verified example recommendations per segment."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tools.report.charts import map_coordinates
from tools.report.model import ExampleRecommendation, ReportInput
from tools.report.write import write_report
from tools.segment.drift_runs import read_drift


def pick_examples(ranked: Iterable[tuple[str, list[str]]], n: int) -> list[tuple[str, str]]:
    """(user, item) pairs, one per user in order: each user's best-ranked item the card does not show yet.

    Representative users of one segment tend to share their top item, and three
    cards of one item say less than three items. A user whose every item is shown
    already is passed over; only when the users run out does an item repeat.
    """
    chosen: list[tuple[str, str]] = []
    shown: set[str] = set()
    passed: list[tuple[str, str]] = []
    for user, items in ranked:
        if len(chosen) == n:
            break
        fresh = next((item for item in items if item not in shown), None)
        if fresh is None:
            if items:
                passed.append((user, items[0]))
            continue
        chosen.append((user, fresh))
        shown.add(fresh)
    return chosen + passed[: n - len(chosen)]


def example_recommendations(service, segment_ids: list[int], n_examples: int) -> dict[int, list[ExampleRecommendation]]:
    """For each segment, recommendations for its representative users (different items where it has them), explained and verified."""
    run = service.run
    examples: dict[int, list[ExampleRecommendation]] = {}
    if run.summary["data"]["kind"] == "text" or n_examples == 0 or not run.summary["data"].get("n_items", 1):
        # messages, or transactions without items (CDNOW): segments but nothing to recommend
        return examples
    min_size = service.settings.min_segment_size
    for sid in segment_ids:
        seg = run.segment(sid)
        if seg["size"] < min_size:
            continue  # too small to show anyone individually
        # The i-th user needs at most i items already shown skipped, so n items each always suffice.
        # (A generator: users past those needed are never scored.)
        ranked = ((str(u), [r.item_id for r in service.recommender.recommend(str(u), k=n_examples)]) for u in seg["representative_user_ids"])
        chosen = []
        for user_id, item_id in pick_examples(ranked, n_examples):
            exp = service.explain(user_id, item_id)
            chosen.append(ExampleRecommendation(user_id, item_id, exp["title"], exp["explanation"], exp["verified"], exp["source"]))
        examples[sid] = chosen
    return examples


def report_audit(run) -> dict:
    """The run's saved fairness audit (`segscope audit`), else its segment part computed now (it says so when there are no attributes)."""
    from tools.explain.audit import audit_run, load_audit

    saved = load_audit(run.run_dir)
    if saved is not None:
        return saved
    return audit_run(run, recommendations=False).as_dict()  # the recommendation part needs a model fit: `segscope audit`


def build_report(service, out: str | Path, fmt: str | None = None, segment_id: int | None = None, n_examples: int = 3) -> dict:
    """Write the report; returns its path, how many explanations it holds and the share verified."""
    run = service.run
    out = Path(out)
    fmt = fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")
    ids = [segment_id] if segment_id is not None else [s["id"] for s in run.summary["segments"]]
    if segment_id is not None:
        run.segment(segment_id)  # a clear error for an unknown id
    with service.llm_batch("report explanations"):
        examples = example_recommendations(service, ids, n_examples)
    flat = [e for group in examples.values() for e in group]
    pass_rate = (sum(e.verified for e in flat) / len(flat)) if flat else None
    # The map colours users by top-level segment (a flat run's top level is its segments).
    top = run.labels if run.top_labels is None else run.top_labels
    points, labels = map_coordinates(run.fused, top, seed=int(run.summary["parameters"].get("seed", 0)))
    audit = report_audit(run) if segment_id is None else None
    from tools.report.whatif_section import whatif_lines

    whatif = whatif_lines(service.workspace, ids, service.settings.min_segment_size)
    inp = ReportInput(
        summary=run.summary,
        map_points=points,
        map_labels=labels,
        examples=examples,
        explanation_pass_rate=pass_rate,
        min_segment_size=service.settings.min_segment_size,
        generated_by=f"segscope, LLM backend {service.backend.info.name}",
        drift=read_drift(run.run_dir),
        audit=audit,
        whatif=whatif,
    )
    path = write_report(inp, out, fmt=fmt, segment_id=segment_id)
    return {"path": str(path), "n_explanations": len(flat), "pass_rate": pass_rate or 0.0, "format": fmt}
