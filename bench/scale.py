"""Scale: `segscope segment` end to end on generated data.

Each size is generated with `segscope sample` and segmented with the real
console script in a child process, measuring wall time and peak RSS of that
child. Target at 100k users / 1M events / 20k items: within 5 minutes, under 4 GB.

``--baseline`` also segments each size the way segscope did before the ONNX
backend (SEGSCOPE_EMBED_BACKEND=torch) into a fresh workspace, in the same
command, and reports default ÷ baseline. The CPU's
features and the load average beside each run are recorded: on a shared machine
the load says how far a figure is from an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.common import SEGSCOPE, run_command, save

SIZES = {"10k": (10_000, 2_000), "100k": (100_000, 20_000), "1m": (1_000_000, 50_000)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--baseline", action="store_true", help="also run the torch backend, for a ratio")
    parser.add_argument("--name", default="scale", help="results file name in bench/results/")
    args = parser.parse_args()
    import time

    from bench.embed_backends import cpu_features
    from tools.embed.embedding import make_embedder

    tmp = Path(tempfile.mkdtemp(prefix="segscope-scale-"))
    rows: dict = {"cpu_features": cpu_features()}
    # The ONNX export is built once per machine (first run only): built here, timed apart from the runs.
    embedder, start = make_embedder(), time.perf_counter()
    if hasattr(embedder, "load"):
        embedder.load()
    rows["embed_backend_prepare_s"] = round(time.perf_counter() - start, 1)
    for name in args.sizes.split(","):
        users, items = SIZES[name]
        data, ws = tmp / f"data-{name}", tmp / f"ws-{name}"
        gen = run_command([str(SEGSCOPE), "sample", "--out", str(data), "--users", str(users), "--items", str(items), "--seed", "1"])
        load_before = round(os.getloadavg()[0], 1)
        seg = run_command([str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(ws), "--seed", "1", "--json"])
        load_after = round(os.getloadavg()[0], 1)
        summary = json.loads(seg["stdout"])
        run_dir = ws / ".segscope" / "runs" / summary["run_key"]
        timings = json.loads((run_dir / "timings.json").read_text())
        rerun = run_command([str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(ws), "--seed", "1", "--json"])
        rows[name] = {
            "users": summary["data"]["n_users"],
            "events": summary["data"]["n_events"],
            "items": summary["data"]["n_items"],
            "k": summary["k"],
            "generate_s": round(gen["wall_s"], 1),
            "segment_wall_s": round(seg["wall_s"], 1),
            "segment_peak_rss_mb": round(seg["peak_rss_mb"]),
            "stages_s": {key: round(value, 1) for key, value in timings.items()},
            "cached_rerun_wall_s": round(rerun["wall_s"], 2),
            "embed_backend": summary["parameters"].get("embed_backend"),
            "load_avg_1min_before_after": [load_before, load_after],
        }
        if args.baseline:
            env = {"SEGSCOPE_EMBED_BACKEND": "torch"}
            base = run_command([str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(tmp / f"base-{name}"), "--seed", "1", "--json"], env)
            base_summary = json.loads(base["stdout"])
            base_timings = json.loads((tmp / f"base-{name}" / ".segscope" / "runs" / base_summary["run_key"] / "timings.json").read_text())
            rows[name]["baseline_torch"] = {
                "segment_wall_s": round(base["wall_s"], 1),
                "segment_peak_rss_mb": round(base["peak_rss_mb"]),
                "stages_s": {key: round(value, 1) for key, value in base_timings.items()},
                "k": base_summary["k"],
                "load_avg_1min_after": round(os.getloadavg()[0], 1),
            }
            rows[name]["wall_ratio_vs_baseline"] = round(seg["wall_s"] / base["wall_s"], 3)
            rows[name]["profiles_ratio_vs_baseline"] = round(timings["profiles_s"] / base_timings["profiles_s"], 3)
            rows[name]["store_ratio_vs_baseline"] = round(timings["store_s"] / base_timings["store_s"], 3)
        print(name, rows[name], flush=True)
    names = [n for n in rows if n in SIZES]
    if len(names) >= 2:
        a, b = rows[names[0]], rows[names[1]]
        rows["growth"] = {
            "users_factor": round(b["users"] / a["users"], 1),
            "time_factor": round(b["segment_wall_s"] / a["segment_wall_s"], 2),
            "memory_factor": round(b["segment_peak_rss_mb"] / a["segment_peak_rss_mb"], 2),
        }
    save(args.name, rows)


if __name__ == "__main__":
    main()
