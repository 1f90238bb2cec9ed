"""Scale: `segscope segment` end to end on generated data.

Each size is generated with `segscope sample` and segmented with the real
console script in a child process, measuring wall time and peak RSS of that
child. Target at 100k users / 1M events / 20k items: within 5 minutes, under 4 GB.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.common import SEGSCOPE, run_command, save

SIZES = {"10k": (10_000, 2_000), "100k": (100_000, 20_000), "1m": (1_000_000, 50_000)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10k,100k")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="segscope-scale-"))
    rows = {}
    for name in args.sizes.split(","):
        users, items = SIZES[name]
        data, ws = tmp / f"data-{name}", tmp / f"ws-{name}"
        gen = run_command([str(SEGSCOPE), "sample", "--out", str(data), "--users", str(users), "--items", str(items), "--seed", "1"])
        seg = run_command([str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(ws), "--seed", "1", "--json"])
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
        }
        print(name, rows[name], flush=True)
    names = list(rows)
    if len(names) >= 2:
        a, b = rows[names[0]], rows[names[1]]
        rows["growth"] = {
            "users_factor": round(b["users"] / a["users"], 1),
            "time_factor": round(b["segment_wall_s"] / a["segment_wall_s"], 2),
            "memory_factor": round(b["segment_peak_rss_mb"] / a["segment_peak_rss_mb"], 2),
        }
    save("scale", rows)


if __name__ == "__main__":
    main()
