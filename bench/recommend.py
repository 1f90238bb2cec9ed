"""Recommendation quality: leave-last-out HR@10 / NDCG@10 on ml-latest-small ratings,
segscope's hybrid against Pop, ItemKNN and EASE on the same split, plus the time to explain each recommendation."""

from __future__ import annotations

import time

from bench.common import save, shared_data


def main() -> None:
    from tools.data.ingest import load_dataset
    from tools.recommend.evaluate import evaluate

    root = shared_data()
    if root is None:
        save("recommend", {"skipped": "../shared/data is absent"})
        return
    data = load_dataset(root / "ml-latest-small" / "ratings.csv")
    started = time.perf_counter()
    report = evaluate(data.events, k=10)
    result = report.as_dict()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["dataset"] = "ml-latest-small/ratings.csv"
    save("recommend", result)


if __name__ == "__main__":
    main()
