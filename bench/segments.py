"""Segment quality (BENCHMARKS.md §2): planted-segment ARI, α sweep, Banking77 NMI/ARI/ACC."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import median, save, shared_data


def accuracy(truth: np.ndarray, labels: np.ndarray) -> float:
    """Best one-to-one matching of clusters to classes (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    t_codes, t = np.unique(truth, return_inverse=True)
    l_codes, lab = np.unique(labels, return_inverse=True)
    table = np.zeros((len(l_codes), len(t_codes)))
    np.add.at(table, (lab, t), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(truth))


def labels_for(ws: Path, ids: list[str], column: str = "segment_id") -> np.ndarray:
    """Each user's segment (``segment_id``: the leaf; ``top_segment_id``: its top-level segment)."""
    assigned = pd.read_csv(ws / "assignments.csv", dtype=str).set_index("user_id")
    return assigned[column if column in assigned else "segment_id"].loc[ids].to_numpy()


def planted(embedder, seeds=(7, 8, 9), alphas=(0.0, 0.25, 0.5, 0.75, 1.0)) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.pipeline import RunParams, segment_dataset

    out = {"seeds": list(seeds), "alpha": {}}
    tmp = Path(tempfile.mkdtemp(prefix="segscope-planted-"))
    for seed in seeds:
        generate_sample(tmp / f"d{seed}", seed=seed)
    for alpha in alphas:
        scores = []
        for seed in seeds:
            data = load_dataset(tmp / f"d{seed}")
            truth = pd.read_csv(tmp / f"d{seed}" / "truth.csv", dtype=str)
            run = segment_dataset(data, tmp / f"w{seed}", RunParams(seed=seed, alpha=alpha), embedder=embedder, write_store=False)
            ids = truth["user_id"].tolist()
            top = adjusted_rand_score(truth["segment"], labels_for(tmp / f"w{seed}", ids, "top_segment_id"))
            leaf = adjusted_rand_score(truth["segment"], labels_for(tmp / f"w{seed}", ids))
            k_top, k_leaf = run.summary.get("k_top", run.summary["k"]), run.summary["k"]
            # Scored at the level whose count matches the planted one (the top level when neither does).
            at_leaf = k_leaf == truth["segment"].nunique() != k_top
            scores.append({"ari": leaf if at_leaf else top, "ari_top": top, "ari_leaf": leaf, "k": k_top, "k_leaf": k_leaf})
        out["alpha"][str(alpha)] = {
            "ari_median": round(median([s["ari"] for s in scores]), 4),
            "ari_min": round(min(s["ari"] for s in scores), 4),
            "k": [s["k"] for s in scores],
            "ari_top_median": round(median([s["ari_top"] for s in scores]), 4),
            "ari_leaf_median": round(median([s["ari_leaf"] for s in scores]), 4),
            "k_leaf": [s["k_leaf"] for s in scores],
        }
    return out


def banking77(embedder, seeds=(0, 1, 2)) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from tools.data.ingest import load_dataset
    from tools.pipeline import RunParams, segment_dataset

    root = shared_data()
    if root is None:
        return {"skipped": "../shared/data is absent"}
    path = root / "banking77" / "test.csv"
    truth = pd.read_csv(path)["category"].to_numpy()
    ids = [str(i) for i in range(len(truth))]
    data = load_dataset(path)
    ws_root = Path(tempfile.mkdtemp(prefix="segscope-b77-"))
    out: dict = {}
    for k in (77, "auto"):
        rows, label_sets = [], []
        for seed in seeds:
            run = segment_dataset(data, ws_root / "ws", RunParams(k=k, seed=seed), embedder=embedder, write_store=False)
            labels = labels_for(ws_root / "ws", ids)
            label_sets.append(labels)
            rows.append(
                {
                    "seed": seed,
                    "k": run.summary["k"],
                    "nmi": normalized_mutual_info_score(truth, labels),
                    "ari": adjusted_rand_score(truth, labels),
                    "acc": accuracy(truth, labels),
                    **run.summary["metrics"],
                }
            )
        stability = [adjusted_rand_score(label_sets[i], label_sets[j]) for i in range(len(seeds)) for j in range(i + 1, len(seeds))]
        out[f"k={k}"] = {
            "nmi_median": round(median([r["nmi"] for r in rows]), 4),
            "nmi_min": round(min(r["nmi"] for r in rows), 4),
            "ari_median": round(median([r["ari"] for r in rows]), 4),
            "acc_median": round(median([r["acc"] for r in rows]), 4),
            "k_chosen": [r["k"] for r in rows],
            "silhouette_median": round(median([r["silhouette"] for r in rows]), 4),
            "calinski_harabasz_median": round(median([r["calinski_harabasz"] for r in rows]), 2),
            "davies_bouldin_median": round(median([r["davies_bouldin"] for r in rows]), 4),
            "stability_ari_between_seeds_median": round(median(stability), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-banking", action="store_true")
    args = parser.parse_args()
    from tools.embed.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    result = {"planted": planted(embedder)}
    if not args.skip_banking:
        result["banking77"] = banking77(embedder)
    save("segments", result)


if __name__ == "__main__":
    main()
