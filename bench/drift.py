"""``segscope drift`` on real logs split into two halves by time.

For each log the published rows are cut at the middle of their time span:

- **--data**: the first half is segmented, the second half compared with it
  (assigned with the run's model): the migration matrix's rows must sum to the
  users present in both halves (checked, not assumed), and how many moved,
  how many fit no segment (beyond the run's own 99th percentile);
- **--since**: the whole log is then segmented in the same workspace and
  compared with the first half's run: segments paired by Hungarian matching,
  how many kept their id and name, the centroid shifts and member overlaps;
- **--window**: the whole-log run's last 90 days against before;
- **--since, nothing changed**: the whole log segmented again with another
  seed and compared with its first run: how many segments keep id and name.

    python -m bench.drift                                       # CDNOW (../shared/data)
    python -m bench.drift --online-retail PATH --embedder minilm
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.assign import run_on_logs, write_rows, write_whole
from bench.usefulness import TransactionLog


def halves(log: TransactionLog) -> TransactionLog:
    """The log cut at the middle of its time span."""
    assert log.source is not None
    t = log.source.time.dropna()
    return replace(log, cut=t.min() + (t.max() - t.min()) / 2, protocol="first half / second half of the time span")


def rows_sum_ok(report: dict) -> bool:
    m = report["migration"]
    counts = np.asarray(m["counts"])
    return bool(counts.sum() == report["users"]["in_both"] and (counts.sum(axis=1) == np.asarray(m["row_totals"])).all())


def summary(report: dict, seconds: float) -> dict:
    return {
        "users": report["users"], "rows_sum_to_users_in_both": rows_sum_ok(report),
        "kept": f"{report['matching']['kept']}/{report['matching']['segments']}",
        "pairs": report["matching"]["pairs"], "trait_shifts": len(report["trait_shifts"]),
        "unusual": {k: report["unusual"][k] for k in ("pool", "beyond_p99", "share_beyond_p99", "candidate")},
        "kept_names": [s["name"] for s in report["segments"] if s["kept"]], "seconds": round(seconds, 2),
    }  # fmt: skip


def measure(log: TransactionLog, embedder, seed: int = 0) -> dict:
    from tools.data.ingest import load_dataset
    from tools.pipeline import RunParams, segment_dataset
    from tools.segment.assign import load_fitted_run
    from tools.segment.drift_runs import drift_data, drift_since, drift_window

    log = halves(log)
    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-drift-"))
    try:
        ws = tmp / "ws"
        first = load_dataset(write_rows(log, tmp / "first", False))
        second = load_dataset(write_rows(log, tmp / "second", True))
        params = RunParams(seed=seed, embedder=embedder.name)
        segment_dataset(first, ws, params, embedder=embedder, write_store=False)
        fitted = load_fitted_run(ws)
        out: dict = {"log": log.name, "split": log.protocol, "cut": str(log.cut), "embedder": embedder.name}
        t0 = time.perf_counter()
        out["data"] = summary(drift_data(fitted, second, embedder).as_dict(), time.perf_counter() - t0)
        t0 = time.perf_counter()
        out["data_appended"] = summary(drift_data(fitted, second, embedder, append=True).as_dict(), time.perf_counter() - t0)
        segment_dataset(load_dataset(write_whole(log, tmp / "whole")), ws, params, embedder=embedder, write_store=False)
        whole = load_fitted_run(ws)
        t0 = time.perf_counter()
        out["since"] = summary(drift_since(whole, "previous", embedder).as_dict(), time.perf_counter() - t0)
        t0 = time.perf_counter()
        out["window_90d"] = summary(drift_window(whole, "90d", embedder).as_dict(), time.perf_counter() - t0)
        # The same whole log again with another seed: nothing changed but the fit's draws.
        segment_dataset(load_dataset(write_whole(log, tmp / "whole")), ws, replace(params, seed=seed + 1), embedder=embedder,
                        write_store=False)  # fmt: skip
        t0 = time.perf_counter()
        out["since_same_data_other_seed"] = summary(drift_since(load_fitted_run(ws), "previous", embedder).as_dict(),
                                                    time.perf_counter() - t0)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    run_on_logs("drift", __doc__, measure)


if __name__ == "__main__":
    main()
