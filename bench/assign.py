"""Assigning new data with a fitted run (``segscope assign``) on real logs split by time.

For each log (BENCHMARKS.md §5 split: CDNOW 39 weeks / next 39, others all but
the last 90 days / the last 90 days), the published file's rows before the cut
are segmented; then

- **own data**: the calibration file assigned again must give back the run's
  assignments.csv exactly (leaf and top ids);
- **later slice, appended** (``assign --append``): the rows after the cut are
  assigned as a continuation of the run's data (each user profiled over all their
  events, in the run's space: its feature scaling, centring and weights) and
  compared with the model's ``predict`` on the profiles a full run on the whole
  log builds (scaled on the whole log): the share of the slice's users placed in
  the same leaf and top segment;
- **later slice, alone**: the same with the slice as all there is (``assign``
  without ``--append``) against a full run's profiles of the slice alone;
- **cost**: assign seconds against the fit's.

    python -m bench.assign                                      # CDNOW (../shared/data)
    python -m bench.assign --online-retail PATH --embedder minilm
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ext_data, save, shared_data
from bench.usefulness import TransactionLog, read_cdnow, read_online_retail, read_sample


def write_rows(log: TransactionLog, folder: Path, later: bool) -> Path:
    """The published rows before (or from) the cut, in the file's own layout: what ``load_dataset`` is given."""
    src = log.source
    assert src is not None
    folder.mkdir(parents=True, exist_ok=True)
    after = (src.time >= log.cut).to_numpy()
    src.rows[after if later else ~after].to_csv(folder / src.name, index=False, sep=src.sep)
    for extra in src.files:
        shutil.copyfile(extra, folder / extra.name)
    return folder if src.files else folder / src.name


def write_whole(log: TransactionLog, folder: Path) -> Path:
    """Every published row (calibration and holdout), in the file's own layout."""
    src = log.source
    assert src is not None
    folder.mkdir(parents=True, exist_ok=True)
    src.rows.to_csv(folder / src.name, index=False, sep=src.sep)
    for extra in src.files:
        shutil.copyfile(extra, folder / extra.name)
    return folder if src.files else folder / src.name


def measure(log: TransactionLog, embedder, seed: int = 0) -> dict:
    from tools.data.ingest import load_dataset
    from tools.embed.cache import EmbeddingCache
    from tools.embed.embedding import vectors_name
    from tools.pipeline import RunParams, segment_dataset
    from tools.segment.assign import assign_dataset, load_fitted_run
    from tools.segment.profiles import build_profiles

    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-assign-"))
    try:
        first, later = load_dataset(write_rows(log, tmp / "first", False)), load_dataset(write_rows(log, tmp / "later", True))
        ws = tmp / "ws"
        t0 = time.perf_counter()
        run = segment_dataset(first, ws, RunParams(seed=seed, embedder=embedder.name), embedder=embedder, write_store=False)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitted = load_fitted_run(ws)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        own = assign_dataset(fitted, first, embedder)
        own_s = time.perf_counter() - t0
        saved = pd.read_csv(ws / "assignments.csv", dtype={"user_id": str}).set_index("user_id")
        table = own.table().set_index("user_id").loc[saved.index]
        exact_leaf = float((table["segment_id"] == saved["segment_id"]).mean())
        exact_top = float((table["top_segment_id"] == saved["top_segment_id"]).mean())

        slices = {}
        whole = load_dataset(write_whole(log, tmp / "whole"))
        for name, append, full_data in (("appended", True, whole), ("alone", False, later)):
            t0 = time.perf_counter()
            slice_ = assign_dataset(fitted, later, embedder, append=append)
            seconds = time.perf_counter() - t0
            # Profiles a full run builds (scaled on the data it is given), then the model's predict.
            full = build_profiles(full_data, embedder, EmbeddingCache(ws / ".segscope" / "cache", vectors_name(embedder)))
            placed = fitted.segments.place(full.fused, full.features)
            order = pd.Index(full.user_ids).get_indexer(slice_.user_ids)
            # The whole data in the run's space (what assign does for everyone at once): must agree exactly.
            same = build_profiles(full_data, embedder, EmbeddingCache(ws / ".segscope" / "cache", vectors_name(embedder)), recipe=fitted.recipe)
            in_run_space = fitted.segments.place(same.fused, same.features)
            known = slice_.run_segment >= 0
            slices[name] = {
                "same_leaf_as_whole_data_in_run_space": round(float(np.mean(in_run_space.leaf[order] == slice_.placement.leaf)), 4),
                "users": len(slice_.user_ids), "not_in_run": slice_.n_new_users,
                "same_leaf_as_full_run_profiles": round(float(np.mean(placed.leaf[order] == slice_.placement.leaf)), 4),
                "same_top_as_full_run_profiles": round(float(np.mean(placed.top[order] == slice_.placement.top)), 4),
                "moved_from_run_segment": round(float(np.mean(slice_.placement.leaf[known] != slice_.run_segment[known])), 4),
                "beyond_p99": round(float(np.mean(slice_.percentile > 0.99)), 4),
                "seconds": round(seconds, 2),
            }  # fmt: skip
        return {
            "log": log.name, "split": log.protocol, "embedder": embedder.name,
            "fit": {"users": int(run.summary["data"]["n_users"]), "k": run.summary["k"], "k_top": run.summary["k_top"],
                    "seconds": round(fit_s, 2)},
            "own_data": {"users": len(saved), "leaf_agreement": exact_leaf, "top_agreement": exact_top,
                         "model_reload_agreement": round(fitted.fit_agreement, 6), "seconds": round(own_s + load_s, 2)},
            "later_slice": slices,
        }  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_on_logs(name: str, doc: str, measure_log) -> None:
    """The command line bench/assign.py and bench/drift.py share: each time-split log given (CDNOW by default)
    measured with ``measure_log(log, embedder)``, the results saved as bench/results/NAME.json."""
    from tools.embed.embedding import make_embedder

    root = shared_data()
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdnow", type=Path, default=None if root is None else root / "cdnow" / "CDNOW_master.txt")
    parser.add_argument("--online-retail", type=Path, default=ext_data("online_retail"))
    parser.add_argument("--sample", type=Path, default=None, help="A `segscope sample` folder.")
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args()
    embedder = make_embedder(args.embedder)
    results = []
    for path, reader in ((args.cdnow, read_cdnow), (args.online_retail, read_online_retail), (args.sample, read_sample)):
        if path is not None and Path(path).exists():
            results.append(measure_log(reader(Path(path)), embedder))
    save(name, {"results": results})


def main() -> None:
    run_on_logs("assign", __doc__, measure)


if __name__ == "__main__":
    main()
