"""Incremental updates (``segscope update``): cost against a full run, and equality with a full re-assign.

**Scale** (issue 12 item 3): a `segscope sample` of 100,000 users (seed 1, 20,000 items,
the hashing embedder: MiniLM would add the same embedding time to the full run only;
``--scale-embedder minilm`` measures that, the ratio with the default embedder), cut
14 days before its end. The run is fitted (`segscope segment`, the real command, with its
vector store) on everything before the cut, less the events that 1% of the users had in
the 30 days before it. Two updates of 1% of the users each, `segscope update` (the real
command, process start included), median of 3 (the workspace is reset to the fitted run
between them):

- **late**: those held-back events (inside the run's period: the data's end does not move,
  only the 1% are re-profiled and re-placed);
- **later**: another 1%'s events after the cut (the end moves ~14 days: everyone's recency
  and tenure change, so everyone is re-placed; only the 1% are re-profiled).

After each, the updated run is compared with a full re-assign of the merged data (the run's
events plus the new ones through ``assign_dataset`` with the same recipe and model): the
share of users with the same leaf and top segment (target 100%), and the largest difference
of a profile value.

**Real logs** (``--cdnow``, ``--online-retail``): fitted on the first part of the BENCHMARKS.md
§5 split, then updated with the first 14 days after the cut, and (from the fitted run again)
with the whole holdout; equality with a full re-assign, users moved, re-fit reasons, seconds.

    python -m bench.incremental                          # 100k sample + CDNOW (../shared/data)
    python -m bench.incremental --online-retail PATH --skip-scale
    python -m bench.incremental --scale-embedder minilm --work DIR  # the same split, fitted with MiniLM
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import SEGSCOPE, ext_data, run_command, save, shared_data

DAY = 86400.0


def _reset(ws: Path, parent: str, child: str | None) -> None:
    """The workspace back to its fitted run: the update's run folder removed, the parent published again."""
    from tools.core.workspace import Workspace

    w = Workspace(ws)
    with w.lock():
        if child:
            shutil.rmtree(w.run_dir(child), ignore_errors=True)
        w.publish(parent, None)


def compare_with_reassign(ws: Path, parent: str, child: str, new_data, embedder) -> dict:
    """The updated run against a full re-assign of the merged data with the parent's recipe and model."""
    from tools.segment.assign import assign_dataset, load_fitted_run
    from tools.segment.update import merged_dataset

    fitted = load_fitted_run(ws, parent)
    t0 = time.perf_counter()
    full = assign_dataset(fitted, merged_dataset(fitted.run, new_data), embedder)
    seconds = time.perf_counter() - t0
    upd = pd.read_csv(ws / ".segscope" / "runs" / child / "assignments.csv", dtype={"user_id": str})
    table = full.table()
    same_order = upd["user_id"].tolist() == table["user_id"].tolist()
    with np.load(ws / ".segscope" / "runs" / child / "profiles.npz") as p:
        fused_diff = float(np.abs(p["fused"] - full.profiles.fused).max()) if same_order else float("nan")
    return {
        "users": len(table), "same_order": same_order,
        "leaf_agreement": float((upd["segment_id"].to_numpy() == table["segment_id"].to_numpy()).mean()) if same_order else 0.0,
        "top_agreement": float((upd["top_segment_id"].to_numpy() == table["top_segment_id"].to_numpy()).mean()) if same_order else 0.0,
        "max_profile_difference": fused_diff, "reassign_seconds": round(seconds, 2),
    }  # fmt: skip


def scale(n_users: int, data: Path | None, reps: int, work: Path | None = None, embedder: str = "hashing") -> dict:
    """The 100k-user measurement (module docstring); ``work`` keeps the split and the fitted workspace for a re-run
    (a ``work`` holding only the split, base/, late.csv and later.csv, is fitted afresh with ``embedder``)."""
    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-incr-")) if work is None else work
    nice = ["nice", "-n", "10"]
    try:
        if (tmp / "fit.json").exists():  # fitted by an earlier run of this script: its split, workspace and recorded fit
            fitted = json.loads((tmp / "fit.json").read_text())
            if fitted["embedder"] != embedder:
                raise SystemExit(f"{tmp} was fitted with the {fitted['embedder']} embedder, not {embedder}: use another --work")
            return _updates(tmp, fitted, reps, nice)
        tmp.mkdir(parents=True, exist_ok=True)
        if not (tmp / "base").exists():
            _split(tmp, n_users, data, nice)
        split = json.loads((tmp / "split.json").read_text())
        ws = tmp / "ws"
        load = round(os.getloadavg()[0], 1)
        fit = run_command([*nice, str(SEGSCOPE), "segment", "--data", str(tmp / "base"), "--workspace", str(ws), "--seed", "1",
                           "--embedder", embedder, "--json"])  # fmt: skip
        parent = json.loads(fit["stdout"])["run_key"]
        fit_timings = json.loads((ws / ".segscope" / "runs" / parent / "timings.json").read_text())
        out: dict = {"users": split["users"], "events_fitted": split["events_fitted"], "embedder": embedder, "load_average_at_fit": load,
                     "parent": parent, "fit": {"wall_s": round(fit["wall_s"], 1), "peak_rss_mb": round(fit["peak_rss_mb"]),
                                               "timings": {k: round(v, 1) for k, v in fit_timings.items()}},
                     "late": {"users_with_new_events": split["late_users"], "events": split["late_events"]},
                     "later": {"users_with_new_events": split["later_users"], "events": split["later_events"]}}  # fmt: skip
        (tmp / "fit.json").write_text(json.dumps(out))
        return _updates(tmp, out, reps, nice)
    finally:
        if work is None:
            shutil.rmtree(tmp, ignore_errors=True)


def _split(tmp: Path, n_users: int, data: Path | None, nice: list[str]) -> None:
    """The fitted part (base/) and the two 1% updates (late.csv, later.csv), with their counts in split.json."""
    if data is None:
        data = tmp / "data"
        run_command([*nice, str(SEGSCOPE), "sample", "--out", str(data), "--users", str(n_users), "--items", str(n_users // 5), "--seed", "1"])
    ev = pd.read_csv(data / "events.csv", dtype={"user_id": str, "item_id": str})
    end = float(ev["timestamp"].max())
    cut = end - 14 * DAY
    users = np.asarray(pd.unique(ev["user_id"]), dtype=object)
    rng = np.random.default_rng(0)
    picked = rng.choice(users, size=2 * (len(users) // 100), replace=False)
    late_users, later_users = picked[: len(picked) // 2], picked[len(picked) // 2 :]
    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    late = ev["user_id"].isin(late_users).to_numpy() & (ts >= cut - 30 * DAY) & (ts < cut - DAY)
    base = (ts < cut) & ~late
    later = ev["user_id"].isin(later_users).to_numpy() & (ts >= cut)
    (tmp / "base").mkdir()
    ev[base].to_csv(tmp / "base" / "events.csv", index=False)
    for name in ("items.csv", "users.csv"):
        shutil.copyfile(data / name, tmp / "base" / name)
    ev[late].to_csv(tmp / "late.csv", index=False)
    ev[later].to_csv(tmp / "later.csv", index=False)
    (tmp / "split.json").write_text(json.dumps({"users": len(users), "events_fitted": int(base.sum()), "late_users": len(late_users),
                                                "late_events": int(late.sum()), "later_users": len(later_users),
                                                "later_events": int(later.sum())}))  # fmt: skip


def _updates(tmp: Path, out: dict, reps: int, nice: list[str]) -> dict:
    """Each scenario's update, ``reps`` times from the fitted run, then checked against a full re-assign."""
    from tools.data.ingest import load_dataset
    from tools.embed.embedding import make_embedder

    ws, parent, fit = tmp / "ws", out["parent"], out["fit"]
    out = json.loads(json.dumps(out))
    out["load_average_at_updates"] = round(os.getloadavg()[0], 1)
    for name, path in (("late", tmp / "late.csv"), ("later", tmp / "later.csv")):
        walls, figures, child = [], None, None
        for _ in range(reps):
            _reset(ws, parent, child)
            res = run_command([*nice, str(SEGSCOPE), "update", "--workspace", str(ws), "--data", str(path), "--json"])
            walls.append(res["wall_s"])
            figures = json.loads(res["stdout"])
            child = figures["run_key"]
        assert figures is not None and child is not None
        check = compare_with_reassign(ws, parent, child, load_dataset(path), make_embedder(out["embedder"]))
        med = statistics.median(walls)
        out[name] = {
            **out[name], "wall_s": [round(w, 2) for w in walls], "median_s": round(med, 2),
            "ratio_to_full_run": round(med / fit["wall_s"], 4),
            "ratio_to_full_run_without_store": round(med / (fit["wall_s"] - fit["timings"].get("store_s", 0.0)), 4),
            "peak_rss_mb": round(res["peak_rss_mb"]),
            "update": {k: figures[k] for k in ("affected", "new_users", "placed", "moved", "moved_affected", "beyond_p99",
                                               "end_shift_days", "end_features", "texts_embedded", "names_kept", "refit", "timings")},
            "vs_full_reassign": check,
        }  # fmt: skip
        _reset(ws, parent, child)
    return out


def real_log(log, embedder) -> dict:
    from bench.assign import write_rows
    from tools.data.ingest import load_dataset
    from tools.pipeline import RunParams, segment_dataset
    from tools.update import update_run

    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-incr-log-"))
    try:
        first = load_dataset(write_rows(log, tmp / "first", False))
        later_path = write_rows(log, tmp / "later", True)
        later = load_dataset(later_path)
        ws = tmp / "ws"
        t0 = time.perf_counter()
        run = segment_dataset(first, ws, RunParams(seed=0, embedder=embedder.name), embedder=embedder, write_store=False)
        fit_s = time.perf_counter() - t0
        parent = run.key
        ts = later.events["timestamp"].to_numpy(dtype=np.float64)
        start = np.nanmin(ts)
        two_weeks = replace(later, events=later.events[ts < start + 14 * DAY].reset_index(drop=True),
                            fingerprint=later.fingerprint + ":14d", source=f"{later.source} (first 14 days)")
        out = {"log": log.name, "split": log.protocol, "embedder": embedder.name,
               "fit": {"users": int(run.summary["data"]["n_users"]), "k": run.summary["k"], "seconds": round(fit_s, 1)}}  # fmt: skip
        for name, new in (("first_14_days", two_weeks), ("whole_holdout", later)):
            t0 = time.perf_counter()
            res = update_run(ws, new, embedder)
            seconds = time.perf_counter() - t0
            s = res.stats
            out[name] = {
                "events": len(new.events), "affected": s["affected"], "new_users": s["new_users"], "placed": s["placed"],
                "moved": s["moved"], "moved_share": s["moved_share"], "moved_top": s["moved_top_since_fit"], "beyond_p99": s["beyond_p99"], "beyond_p99_all_share": s["beyond_p99_all_share"], "end_shift_days": s["end_shift_days"],
                "names_kept": s["names_kept"], "refit": list(res.refit), "seconds": round(seconds, 2),
                "ratio_to_fit": round(seconds / fit_s, 4), "vs_full_reassign": compare_with_reassign(ws, parent, res.key, new, embedder),
            }  # fmt: skip
            _reset(ws, parent, res.key)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    from bench.usefulness import read_cdnow, read_online_retail
    from tools.embed.embedding import make_embedder

    root = shared_data()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=None, help="a `segscope sample --users N --items N/5 --seed 1` folder to reuse")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="keep the split and fitted workspace here (reused when present)")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-embedder", default="hashing",
                        help="the 100k run's embedder: hashing (the harsher ratio, saved as 'scale') or minilm (the default's, 'scale_minilm')")
    parser.add_argument("--cdnow", type=Path, default=None if root is None else root / "cdnow" / "CDNOW_master.txt")
    parser.add_argument("--online-retail", type=Path, default=ext_data("online_retail"))
    parser.add_argument("--embedder", default="hashing", help="for the real logs")
    args = parser.parse_args()
    result: dict = {}
    previous = Path(__file__).parent / "results" / "incremental.json"
    if previous.exists():  # a part run on its own keeps the other parts' figures
        result = json.loads(previous.read_text())
    if not args.skip_scale:
        key = "scale" if args.scale_embedder == "hashing" else f"scale_{args.scale_embedder}"
        result[key] = scale(args.users, args.data, args.reps, args.work, args.scale_embedder)
    embedder = make_embedder(args.embedder)
    logs = {r["log"]: r for r in result.get("logs", [])}
    for path, reader in ((args.cdnow, read_cdnow), (args.online_retail, read_online_retail)):
        if path is not None and Path(path).exists():
            r = real_log(reader(Path(path)), embedder)
            logs[r["log"]] = r
    result["logs"] = list(logs.values())
    save("incremental", result)


if __name__ == "__main__":
    main()
