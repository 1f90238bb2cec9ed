"""The Ray engine against the local engine on the sample: wall time (medians of 3) and agreement.

`segment_dataset` on a generated sample, three times per engine, each in a fresh workspace (cold
embedding cache), the engines taking turns; the Ray engine connected once to a head at
``--ray-address`` (connecting is timed apart). Agreement: ARI of the leaf and top-level segments
and whether every segment name is the same.

    python -m bench.ray_engine --ray-address 127.0.0.1:6379 --users 500 --embedder hashing
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.pipeline import RunParams, segment_dataset


def _assignments(ws: Path) -> pd.DataFrame:
    return pd.read_csv(ws / "assignments.csv", dtype=str, keep_default_na=False)


def _names(ws: Path) -> list[str]:
    return [s["name"] for s in json.loads((ws / "segments.json").read_text())["segments"]]


def main() -> None:
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray-address", required=True)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="segscope-bench-ray."))
    generate_sample(root / "data", n_users=args.users, seed=args.seed)
    data = load_dataset(root / "data")
    params = RunParams(seed=args.seed, embedder=args.embedder)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    t = time.perf_counter()
    with ray_session(args.ray_address):
        connect = time.perf_counter() - t
        for i in range(args.repeats):
            for engine in ("local", "ray"):
                ws = root / f"{engine}-{i}"
                t = time.perf_counter()
                kwargs = {"engine": RayEngine(seed=args.seed)} if engine == "ray" else {}
                segment_dataset(data, ws, params, write_store=False, **kwargs)
                times[engine].append(time.perf_counter() - t)
    local, ray = _assignments(root / "local-0"), _assignments(root / "ray-0")
    result = {
        "users": len(local), "embedder": args.embedder, "connect_s": round(connect, 2),
        "local_s": [round(x, 2) for x in times["local"]], "ray_s": [round(x, 2) for x in times["ray"]],
        "local_median_s": round(statistics.median(times["local"]), 2), "ray_median_s": round(statistics.median(times["ray"]), 2),
        "ari_leaf": round(adjusted_rand_score(local["segment_id"], ray["segment_id"]), 4),
        "ari_top": round(adjusted_rand_score(local["top_segment_id"], ray["top_segment_id"]), 4),
        "same_names": _names(root / "local-0") == _names(root / "ray-0"),
        "n_segments": len(_names(root / "local-0")),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
