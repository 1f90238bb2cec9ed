"""Behaviour in order (issue 12 item 4): the order-only sample separated with the order of events, and not without.

The order-only sample (``segscope sample --order-only``, tools/data/sample_order.py) plants
two segments with the same items, counts, types and timestamps, in another order. Each run
is made twice, with the order block (tools/segment/sequence.py) and order-blind
(``RunParams(order=False)``, ``segscope segment --no-order``: the profiles of before):

- order-only sample, k auto: the ARI of the two variants' users alone (their truth against
  their segments, leaf and top level), and the ARI of everyone at the planted level;
- the ordinary sample, k auto, seeds 7 and 8 (and more with ``--seeds``): planted ARI with
  and without, so the order block is seen not to dilute the rest;
- CDNOW and ml-latest-small (from ../shared/data): k with and without, and the ARI between
  the two runs' segments (1.0: the order changed nothing; CDNOW has no event types).

    python -m bench.sequence [--seeds 7 8] [--embedder minilm]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from bench.common import median, save, shared_data
from bench.segments import labels_for

VARIANT_PREFIX = "fashion_forward_"  # tools/data/sample_order.py ORDER_SEGMENT
TARGET = 0.9


def _run(data, ws: Path, seed: int, order: bool, embedder, k="auto") -> dict:
    from tools.pipeline import RunParams, segment_dataset

    run = segment_dataset(data, ws, RunParams(seed=seed, k=k, order=order, embedder=embedder.name), embedder=embedder,
                          write_store=False)
    return run.summary


def _planted_scores(ws: Path, truth: pd.DataFrame, summary: dict) -> dict:
    from sklearn.metrics import adjusted_rand_score

    ids = truth["user_id"].tolist()
    leaf, top = labels_for(ws, ids), labels_for(ws, ids, "top_segment_id")
    k_top, k_leaf = summary.get("k_top", summary["k"]), summary["k"]
    n_planted = truth["segment"].nunique()
    at_leaf = k_leaf == n_planted != k_top  # scored at the level whose count matches the planted one (as bench.segments)
    out = {"ari": adjusted_rand_score(truth["segment"], leaf if at_leaf else top), "ari_top": adjusted_rand_score(truth["segment"], top),
           "ari_leaf": adjusted_rand_score(truth["segment"], leaf), "k_top": k_top, "k_leaf": k_leaf}
    pair = truth["segment"].str.startswith(VARIANT_PREFIX).to_numpy()
    if pair.any():
        out["pair_ari_leaf"] = adjusted_rand_score(truth["segment"][pair], leaf[pair])
        out["pair_ari_top"] = adjusted_rand_score(truth["segment"][pair], top[pair])
        out["pair_ari"] = out["pair_ari_leaf"] if at_leaf else out["pair_ari_top"]  # at the planted level, as "ari"
    return {key: round(float(v), 4) if isinstance(v, float) else v for key, v in out.items()}


def samples(embedder, seeds: list[int], order_only: bool, tmp: Path) -> dict:
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample

    rows: dict[str, list[dict]] = {"with_order": [], "order_blind": []}
    for seed in seeds:
        folder = tmp / f"{'order' if order_only else 'plain'}{seed}"
        generate_sample(folder, seed=seed, order_only=order_only)
        data, truth = load_dataset(folder), pd.read_csv(folder / "truth.csv", dtype=str)
        for name, order in (("with_order", True), ("order_blind", False)):
            ws = tmp / f"ws-{folder.name}"  # one workspace per data set: the embedding cache is shared
            summary = _run(data, ws, seed, order, embedder)
            rows[name].append({"seed": seed, **_planted_scores(ws, truth, summary)})
            print(folder.name, name, rows[name][-1], flush=True)
    out: dict = {"seeds": seeds}
    for name, per_seed in rows.items():
        keys = [k for k in per_seed[0] if k not in ("seed", "k_top", "k_leaf")]
        out[name] = {**{f"{k}_median": round(median([r[k] for r in per_seed]), 4) for k in keys},
                     **{f"{k}_min": round(min(r[k] for r in per_seed), 4) for k in keys},
                     "per_seed": per_seed}  # fmt: skip
    return out


def real_log(embedder, path: Path, seed: int, tmp: Path) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from tools.data.ingest import load_dataset
    from tools.segment.sequence import is_order_feature

    data = load_dataset(path)
    ws = tmp / f"ws-{path.name}"
    out: dict = {"source": path.name, "n_users": data.n_users}
    labels = {}
    for name, order in (("with_order", True), ("order_blind", False)):
        summary = _run(data, ws, seed, order, embedder)
        assigned = pd.read_csv(ws / "assignments.csv", dtype=str).sort_values("user_id")
        labels[name] = (assigned["segment_id"].to_numpy(), assigned["top_segment_id"].to_numpy())
        features = summary["parameters"]["behaviour_features"]
        out[name] = {"k_top": summary.get("k_top", summary["k"]), "k_leaf": summary["k"], "n_features": len(features),
                     "order_features": [f for f in features if is_order_feature(f)]}  # fmt: skip
    out["ari_between_leaf"] = round(float(adjusted_rand_score(labels["with_order"][0], labels["order_blind"][0])), 4)
    out["ari_between_top"] = round(float(adjusted_rand_score(labels["with_order"][1], labels["order_blind"][1])), 4)
    print(path.name, out, flush=True)
    return out


def checks(result: dict) -> list[str]:
    """The issue's figure: ARI ≥ 0.9 on the order-only variants with the order, at every seed."""
    failed = []
    for row in result["order_only"]["with_order"]["per_seed"]:
        if row["pair_ari"] < TARGET:
            failed.append(f"order-only sample seed {row['seed']}: ARI of the two variants {row['pair_ari']} < {TARGET} with the order")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--plain-seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--embedder", default="minilm", help="minilm (what the other benches use) or hashing (quick)")
    parser.add_argument("--skip-real", action="store_true", help="no CDNOW / ml-latest-small")
    args = parser.parse_args()
    from tools.embed.embedding import make_embedder

    embedder = make_embedder(args.embedder)
    tmp = Path(tempfile.mkdtemp(prefix="segscope-sequence-"))
    result: dict = {"embedder": args.embedder,
                    "order_only": samples(embedder, args.seeds, True, tmp),
                    "sample": samples(embedder, args.plain_seeds, False, tmp)}  # fmt: skip
    root = shared_data()
    if not args.skip_real:
        result["real"] = {}
        for name, file in (("cdnow", "CDNOW_master.txt"), ("ml-latest-small", "")):
            path = None if root is None else root / name / file
            result["real"][name] = real_log(embedder, path, 7, tmp) if path is not None and path.exists() else {"skipped": "absent"}
    result["checks_failed"] = checks(result)
    save("sequence", result)
    if result["checks_failed"]:
        raise SystemExit("sequence benchmark checks failed: " + "; ".join(result["checks_failed"]))


if __name__ == "__main__":
    main()
