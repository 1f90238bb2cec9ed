"""Labels and explanations: label distinctiveness, explanation pass rate over a full
report and over many recommendations, and the time to label a segment and explain a recommendation
with the extractive backend."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import median, save


def main() -> None:
    from assistant.config import load_settings
    from assistant.reporting import build_report
    from assistant.service import WorkspaceService
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.explain.labels import label_segments
    from tools.pipeline import RunParams, segment_dataset

    tmp = Path(tempfile.mkdtemp(prefix="segscope-explain-"))
    generate_sample(tmp / "data", seed=7)
    run = segment_dataset(load_dataset(tmp / "data"), tmp / "ws", RunParams(seed=7))
    summary = run.summary

    label_times = []
    for _ in range(5):
        started = time.perf_counter()
        label_segments(summary)
        label_times.append((time.perf_counter() - started) / summary["k"])

    service = WorkspaceService(tmp / "ws", load_settings())
    started = time.perf_counter()
    report = build_report(service, tmp / "report.html")
    report_s = time.perf_counter() - started

    users = [str(u) for u in service.run.user_ids[::15][:200]]
    service.recommender  # fit once, outside the per-explanation timing
    times, passed, total = [], 0, 0
    for user in users:
        for rec in service.recommender.recommend(user, k=10):
            started = time.perf_counter()
            result = service.explain(user, rec.item_id)
            times.append(time.perf_counter() - started)
            passed += result["verified"]
            total += 1
    save(
        "explain",
        {
            "k": summary["k"],
            "label_distinctiveness": summary["labels"]["distinctiveness"],
            "names": [s["name"] for s in summary["segments"]],
            "label_s_per_segment_median": round(median(label_times), 5),
            "report_explanations": report["n_explanations"],
            "report_pass_rate": report["pass_rate"],
            "report_s": round(report_s, 2),
            "explanations": total,
            "explanation_pass_rate": passed / total,
            "explain_s_per_recommendation_median": round(median(times), 4),
        },
    )


if __name__ == "__main__":
    main()
