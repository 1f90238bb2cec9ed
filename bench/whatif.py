"""Counterfactual membership (``segscope whatif``): for random users and target segments, is there a proposal, and does the
saved model, given the changed user from scratch, place them in the target?

For each dataset: segment it, draw 50 users at random and for each a random target segment other than the user's own (leaf
and top level), ask ``what_would_move`` (at most 10 changes), then apply every proposal independently (the user's events
plus the proposed ones, profiled with the run's recipe and placed by its model in a fresh evaluator). Reported: the share
with a proposal, the share of proposals the model places in the target once applied (must be 100%), the median number of
changes, the reasons given where there is none, and the median seconds per answer.

    python -m bench.whatif                                  # the sample (seed 7) and CDNOW (../shared/data)
    python -m bench.whatif --online-retail PATH             # and UCI Online Retail
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import ext_data, save, shared_data

N_PAIRS = 50


def run_one(name: str, data_path: Path, embedder: str, seed: int = 7, n: int = N_PAIRS) -> dict:
    from tools.data.ingest import load_dataset
    from tools.embed.embedding import make_embedder
    from tools.pipeline import RunParams, segment_dataset
    from tools.segment.assign import load_fitted_run
    from tools.segment.whatif import WhatIfSearch, target_of
    from tools.segment.whatif_events import Evaluator
    from tools.segment.whatif_text import answer

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        t0 = time.perf_counter()
        segment_dataset(load_dataset(data_path), ws, RunParams(seed=seed, embedder=embedder), embedder=make_embedder(embedder), write_store=False)
        fit_s = time.perf_counter() - t0
        fitted = load_fitted_run(ws)
        run = fitted.run
        ids = [int(s["id"]) for s in run.summary["segments"]]
        rng = np.random.default_rng(seed)
        evaluator, rows = Evaluator(fitted), []
        for user in rng.choice(run.user_ids, n, replace=False):
            r = run.row_of(str(user))
            here = {int(run.labels[r]), int(run.top_labels[r] if run.top_labels is not None else run.labels[r])}
            target = int(rng.choice([i for i in ids if i not in here]))
            t = time.perf_counter()
            search = WhatIfSearch(fitted, str(user), target_of(fitted, target), 10, evaluator).run()
            result = answer(search, fitted)
            seconds = time.perf_counter() - t
            applied = None
            if result.reached:
                again = Evaluator(fitted).place(search.history.events, [list(search.best.rows)]).placement
                seg = run.segment(target)
                applied = bool(int(again.leaf[0]) == target or (seg.get("parent") is None and int(again.top[0]) == target))
            rows.append({"user": str(user), "target": target, "target_level": int(run.segment(target).get("level", 0)),
                         "reached": result.reached, "applied_in_target": applied, "steps": result.steps,
                         "reason_code": result.reason_code, "seconds": round(seconds, 2), "first_change": (result.changes or [""])[0]})
    proposed = [x for x in rows if x["reached"]]
    return {
        "dataset": name, "users": len(run.user_ids), "segments": len(ids), "fit_s": round(fit_s, 1), "pairs": len(rows),
        "proposed_share": round(len(proposed) / len(rows), 4),
        "applied_in_target_share": round(sum(bool(x["applied_in_target"]) for x in proposed) / max(len(proposed), 1), 4),
        "median_changes": float(np.median([x["steps"] for x in proposed])) if proposed else None,
        "reasons": dict(Counter(x["reason_code"] for x in rows if not x["reached"])),
        "median_seconds": float(np.median([x["seconds"] for x in rows])),
        "sub_segment_targets": sum(x["target_level"] > 0 for x in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default="hashing", help="the sample's embedder (CDNOW has no text)")
    parser.add_argument("--online-retail", type=Path, default=ext_data("online_retail"))
    parser.add_argument("--n", type=int, default=N_PAIRS)
    args = parser.parse_args()
    from tools.data.sample import generate_sample

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_sample(Path(tmp) / "shop", seed=7)
        results.append(run_one("sample (segscope sample --seed 7)", Path(tmp) / "shop", args.embedder, n=args.n))
    data = shared_data()
    if data is not None and (data / "cdnow" / "CDNOW_master.txt").exists():
        results.append(run_one("CDNOW", data / "cdnow" / "CDNOW_master.txt", "hashing", n=args.n))
    if args.online_retail is not None:
        results.append(run_one("Online Retail", args.online_retail, args.embedder, n=args.n))
    from bench.common import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)  # each pair's answer, for reading; the summary without them
    (RESULTS / "whatif-rows.json").write_text(json.dumps({r["dataset"]: r.pop("rows") for r in results}, indent=1) + "\n")
    save("whatif", {"max_changes": 10, "embedder": args.embedder, "results": results})


if __name__ == "__main__":
    main()
