"""Bots and outliers (issue #13): are planted bots flagged, do they leave the segments alone, and are real users left alone?

Planted: ``segscope sample --users 3000 --bots 0.03`` (90 bots of four kinds among 2,910
people) for three seeds, segmented with the MiniLM embedder three ways: the same 2,910
people without bots, with the bots (default: flagged users left out of the fit), and with
the bots kept in the fit (``--keep-outliers``). Reported: recall and precision of the
flags on the planted bots (and recall per kind), and the ARI of the people against their
planted segments, at the level with the planted count (as bench/segments.py), in each
run; medians over the seeds. Fails when the median recall is under 0.95, the median
precision under 0.90, or the median gap between the ARI with bots and without is above 0.01.

Real logs: how many users each rule flags on ml-latest-small and CDNOW (../shared/data),
and on Online Retail, the DIGINETICA session log and Complete Journey when their paths
are given (absent paths are skipped and said so), with the heaviest figure of each rule
beside its threshold: how far the real heavy users are from being called bots.

    python -m bench.outliers --online-retail PATH --diginetica PATH --completejourney PATH
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ext_data, median, save, shared_data

SEEDS = (7, 8, 9)
USERS = 3000
BOT_SHARE = 0.03


def _assigned(ws: Path, key: str) -> pd.DataFrame:
    return pd.read_csv(ws / ".segscope" / "runs" / key / "assignments.csv", dtype=str, keep_default_na=False).set_index("user_id")


def _planted_ari(assigned: pd.DataFrame, truth: pd.DataFrame, summary: dict) -> tuple[float, str, int]:
    """ARI of ``truth``'s users at the level whose count matches the planted one (the top level when neither does)."""
    from sklearn.metrics import adjusted_rand_score

    planted = truth["segment"].nunique()
    k_top, k_leaf = int(summary["k_top"]), int(summary["k"])
    level = "segment_id" if k_leaf == planted != k_top else "top_segment_id"
    labels = assigned.loc[truth["user_id"], level].to_numpy()
    return float(adjusted_rand_score(truth["segment"], labels)), ("leaf" if level == "segment_id" else "top"), k_top


def planted(embedder, seeds=SEEDS, users: int = USERS, share: float = BOT_SHARE) -> dict:
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.pipeline import RunParams, segment_dataset

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="segscope-outliers-"))
    try:
        for seed in seeds:
            with_bots = generate_sample(tmp / f"b{seed}", n_users=users, seed=seed, bots=share)
            generate_sample(tmp / f"p{seed}", n_users=users - with_bots.n_bots, seed=seed, n_items=with_bots.n_items)
            truth = pd.read_csv(tmp / f"b{seed}" / "truth.csv", keep_default_na=False)
            people = truth[truth["segment"] != "bot"]
            bots = truth[truth["segment"] == "bot"].set_index("user_id")["bot_type"]
            ws = tmp / f"w{seed}"  # one workspace per seed: the three runs share its embedding cache
            row: dict = {"seed": seed, "bots": len(bots), "people": len(people)}
            for name, folder, keep in (("without_bots", "p", False), ("with_bots", "b", False), ("kept", "b", True)):
                run = segment_dataset(load_dataset(tmp / f"{folder}{seed}"), ws, RunParams(seed=seed, keep_outliers=keep),
                                      embedder=embedder, write_store=False)  # fmt: skip
                assigned = _assigned(ws, run.key)
                ari, level, k_top = _planted_ari(assigned, people, run.summary)
                row[name] = {"ari": round(ari, 4), "level": level, "k_top": k_top, "k": run.summary["k"]}
                if folder == "b":
                    flagged = set(assigned.index[assigned["outlier"] != ""])
                    caught = flagged & set(bots.index)
                    row[name]["flagged"] = len(flagged)
                    if not keep:
                        row["recall"] = round(len(caught) / len(bots), 4)
                        row["precision"] = round(len(caught) / max(len(flagged), 1), 4)
                        row["people_flagged"] = len(flagged - set(bots.index))
                        row["recall_by_kind"] = {k: round(float(np.mean([u in flagged for u in bots.index[bots == k]])), 4)
                                                 for k in sorted(bots.unique())}  # fmt: skip
                        row["reasons"] = assigned.loc[sorted(caught), "outlier"].value_counts().to_dict()
                    else:
                        # Kept in the fit, do the bots make a segment of their own?
                        tops = assigned.loc[list(bots.index), "top_segment_id"]
                        biggest = tops.value_counts()
                        size = (assigned["top_segment_id"] == biggest.index[0]).sum()
                        row[name]["bots_in_one_top_segment"] = int(biggest.iloc[0])
                        row[name]["that_segment_bot_share"] = round(float(biggest.iloc[0] / size), 4)
            row["ari_gap"] = round(abs(row["with_bots"]["ari"] - row["without_bots"]["ari"]), 4)
            rows.append(row)
            print(row, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"seeds": list(seeds), "users": users, "bot_share": share, "embedder": embedder.name, "per_seed": rows}
    for key in ("recall", "precision", "ari_gap"):
        out[f"{key}_median"] = round(median([r[key] for r in rows]), 4)
    for name in ("without_bots", "with_bots", "kept"):
        out[f"ari_{name}_median"] = round(median([r[name]["ari"] for r in rows]), 4)
        out[f"k_top_{name}"] = [r[name]["k_top"] for r in rows]
    return out


def real(name: str, path: Path) -> dict:
    """What the rules flag on a real log, and how far its heaviest users are from each threshold."""
    from tools.data.ingest import load_dataset
    from tools.data.outliers import ITEM_MIN_EVENTS, detect_outliers, volume_limit

    data = load_dataset(path)
    found = detect_outliers(data)
    block = found.as_dict(kept_in_fit=False)
    f = found.figures
    on_item = f[f["top_item_events"] >= ITEM_MIN_EVENTS]
    out = {
        "dataset": name, "entity": data.entity, "users": len(found.user_ids), "events": len(data.events),
        "flagged": block["count"], "share": block["share"], "by_reason": block["by_reason"],
        "rules_off": {r["reason"]: r["note"] for r in block["rules"] if not r["applied"]},
        "heaviest": {
            "events": int(f["events"].max()), "median_events": float(np.median(f["events"])),
            "volume_limit": round(volume_limit(f["events"].to_numpy()), 1),
            f"largest_share_on_one_item_with_{ITEM_MIN_EVENTS}_or_more": round(float(on_item["top_item_share"].max()), 4) if len(on_item) else None,
            "densest_minute_actions": int(f["densest_window"].max()), "duplicates": int(f["duplicates"].max()),
        },
        "examples": block["examples"],
    }  # fmt: skip
    print(out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--online-retail", type=Path, default=ext_data("online_retail"))
    parser.add_argument("--diginetica", type=Path, default=ext_data("diginetica"))
    parser.add_argument("--completejourney", type=Path, default=ext_data("completejourney"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--skip-planted", action="store_true")
    args = parser.parse_args()
    from tools.embed.embedding import make_embedder

    result: dict = {"real": []}
    shared = shared_data()
    logs = [("ml-latest-small", None if shared is None else shared / "ml-latest-small"),
            ("CDNOW", None if shared is None else shared / "cdnow" / "CDNOW_master.txt"),
            ("Online Retail", args.online_retail), ("DIGINETICA sessions", args.diginetica),
            ("Complete Journey (sample)", args.completejourney)]  # fmt: skip
    for name, path in logs:
        if path is None or not path.exists():
            print(f"{name}: {'not given' if path is None else f'{path} is absent'}, skipped", flush=True)
            continue
        result["real"].append(real(name, path))
    if not args.skip_planted:
        result["planted"] = planted(make_embedder(args.embedder), seeds=tuple(args.seeds))
    save("outliers", result)
    p = result.get("planted")
    if p and (p["recall_median"] < 0.95 or p["precision_median"] < 0.90 or p["ari_gap_median"] > 0.01):
        print(f"FAIL: recall {p['recall_median']}, precision {p['precision_median']}, ARI gap {p['ari_gap_median']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
