"""Segment quality (BENCHMARKS.md §2): planted-segment ARI, α sweep, and text-only sets beside BERTopic.

Text-only sets (Banking77 from ../shared/data, and any ``--text CSV``): segscope with the
true k and with k auto, and BERTopic (bench/text_peers.py) on the very vectors segscope
used, in the same run, three seeds each: NMI, ARI, k, outlier share and seconds per seed,
and their medians. Exits non-zero when Banking77 k=77 NMI falls below 0.82 at any seed or
segscope is behind BERTopic on a set.

    python -m bench.segments --text /path/to/clinc150_test.csv
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ext_data, median, save, shared_data


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


def _summary(rows: list[dict]) -> dict:
    """Medians (and the worst seed) of a method's per-seed rows."""
    out = {
        "nmi_median": round(median([r["nmi"] for r in rows]), 4),
        "nmi_min": round(min(r["nmi"] for r in rows), 4),
        "ari_median": round(median([r["ari"] for r in rows]), 4),
        "k_chosen": [r["k"] for r in rows],
        "outlier_share_median": round(median([r["outliers"] for r in rows]), 4),
        "seconds_median": round(median([r["seconds"] for r in rows]), 2),
    }
    if "acc" in rows[0]:
        out["acc_median"] = round(median([r["acc"] for r in rows]), 4)
    for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        if name in rows[0]:
            out[f"{name}_median"] = round(median([r[name] for r in rows]), 4)
    return out


def _scores(truth: np.ndarray, labels: np.ndarray, seed: int, seconds: float) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "seed": seed,
        "k": int(len(set(labels.tolist()) - {-1})),
        "nmi": round(float(normalized_mutual_info_score(truth, labels)), 4),
        "ari": round(float(adjusted_rand_score(truth, labels)), 4),
        "outliers": round(float(np.mean(labels == -1)), 4),
        "seconds": round(seconds, 2),
    }


def text_set(path: Path, embedder, seeds=(0, 1, 2), peers: bool = True, truth_column: str = "category") -> dict:
    """segscope (k given and auto) and BERTopic (UMAP+KMeans, default) on the same vectors, per seed.

    ``path`` is a CSV with a text column and a ``truth_column`` that is the
    ground truth only: segscope's loader ignores it, and it is read here to score.
    """
    from sklearn.metrics import adjusted_rand_score

    from bench import text_peers
    from tools.core.workspace import Workspace
    from tools.data.ingest import load_dataset
    from tools.pipeline import RunParams, segment_dataset

    data = load_dataset(path)
    ids = data.events["user_id"].astype(str).tolist()  # row numbers: a text-only CSV without an id column
    truth = pd.read_csv(path)[truth_column].to_numpy()[[int(i) for i in ids]]
    n_classes = len(np.unique(truth))
    ws = Path(tempfile.mkdtemp(prefix="segscope-text-")) / "ws"
    out: dict = {"source": path.name, "n_texts": len(ids), "n_classes": int(n_classes), "seeds": list(seeds)}
    vectors = None
    for k in (n_classes, "auto"):
        rows, label_sets = [], []
        for seed in seeds:
            run = segment_dataset(data, ws, RunParams(k=k, seed=seed), embedder=embedder, write_store=False)
            labels = labels_for(ws, ids).astype(int)
            label_sets.append(labels)
            row = _scores(truth, labels, seed, run.timings.get("clustering_s", float("nan")))
            rows.append({**row, "acc": round(accuracy(truth, labels), 4), **run.summary["metrics"]})
            if vectors is None:
                saved = np.load(Workspace(ws).run_dir(run.key) / "profiles.npz")
                order = pd.Index(saved["user_ids"].astype(str)).get_indexer(ids)
                vectors = saved["fused"][order]  # exactly what segscope clustered
        stability = [adjusted_rand_score(label_sets[i], label_sets[j]) for i in range(len(seeds)) for j in range(i + 1, len(seeds))]
        out[f"k={k}"] = {**_summary(rows), "stability_ari_between_seeds_median": round(median(stability), 4), "per_seed": rows}
    if not peers:
        return out
    why = text_peers.missing()
    if why is not None:
        out["peers"] = {"skipped": why}
        return out
    docs = data.events.set_index(data.events["user_id"].astype(str)).loc[ids, "text"].astype(str).tolist()
    out["peers"] = {}
    for name, k in (("bertopic_umap_kmeans", n_classes), ("bertopic_default", None)):
        rows = []
        for seed in seeds:
            labels, seconds = text_peers.bertopic_labels(docs, vectors, seed, k)
            rows.append(_scores(truth, labels, seed, seconds))
        out["peers"][name] = {**_summary(rows), "per_seed": rows}
    given, auto = out[f"k={n_classes}"], out["k=auto"]
    out["comparison"] = {
        "k given: segscope − BERTopic UMAP+KMeans (NMI median)": round(given["nmi_median"] - out["peers"]["bertopic_umap_kmeans"]["nmi_median"], 4),
        "k auto: segscope − BERTopic default (NMI median)": round(auto["nmi_median"] - out["peers"]["bertopic_default"]["nmi_median"], 4),
    }
    return out


def checks(result: dict) -> list[str]:
    """What must hold (BENCHMARKS.md §2, issue 10): the failures, as sentences."""
    failed = []
    b = result.get("text", {}).get("banking77", {})
    given = b.get("k=77")
    if given is not None:
        low = [r for r in given["per_seed"] if r["nmi"] < 0.82]
        failed += [f"Banking77 k=77 NMI {r['nmi']} < 0.82 at seed {r['seed']}" for r in low]
    for name, s in result.get("text", {}).items():
        for key, delta in s.get("comparison", {}).items():
            if delta < 0:
                failed.append(f"{name}: {key} = {delta} (behind)")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-planted", action="store_true")
    parser.add_argument("--skip-banking", action="store_true")
    parser.add_argument("--no-peers", action="store_true", help="segscope only, no BERTopic beside it")
    parser.add_argument(
        "--text", type=Path, action="append", default=[], metavar="CSV",
        help="another text-only set (text + category columns), e.g. CLINC150's clinc150_test.csv; repeatable "
             "(default: CLINC150 from the external data root, bench/common.py EXT_DATA, when it is there)",
    )
    args = parser.parse_args()
    from tools.embed.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    result: dict = {}
    if not args.skip_planted:
        result["planted"] = planted(embedder)
    result["text"] = {}
    if not args.skip_banking:
        root = shared_data()
        if root is None:
            result["text"]["banking77"] = {"skipped": "../shared/data is absent"}
        else:
            result["text"]["banking77"] = text_set(root / "banking77" / "test.csv", embedder, peers=not args.no_peers)
    clinc = ext_data("clinc150")
    for path in args.text or ([clinc] if clinc else []):
        result["text"][path.stem] = text_set(path, embedder, peers=not args.no_peers)
    result["checks_failed"] = checks(result)
    save("segments", result)
    if result["checks_failed"]:
        raise SystemExit("segment benchmark checks failed: " + "; ".join(result["checks_failed"]))


if __name__ == "__main__":
    main()
