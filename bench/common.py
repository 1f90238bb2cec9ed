"""Shared helpers for the benchmarks: timing, medians, peak memory, result files."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SEGSCOPE = Path(sys.executable).parent / "segscope"


# Public logs that are not in ../shared/data, each at a fixed place under one root: $SEGSCOPE_EXT_DATA, else
# ../ext-data beside the checkout (docs/ext-data.md says where each comes from). A bench reads each one
# it finds by default; a flag such as --online-retail PATH points it elsewhere.
EXT_DATA = {
    "online_retail": "online-retail/transactions.csv",  # UCI Online Retail (InvoiceNo, StockCode, ..., CustomerID, Country)
    "completejourney": "completejourney/transactions.csv",  # dunnhumby The Complete Journey sample; products.csv beside it
    "diginetica": "diginetica/train-item-views.csv",  # CIKM Cup 2016 DIGINETICA session views
    "clinc150": "clinc150/clinc150_test.csv",  # CLINC150 test split, in scope (text, category)
    "ml100k": "ml-100k",  # MovieLens 100k as GroupLens ships it (u.data, u.item, u.user)
}


def ext_data_root() -> Path:
    env = os.environ.get("SEGSCOPE_EXT_DATA")
    return Path(env) if env else ROOT.parent / "ext-data"


def ext_data(name: str) -> Path | None:
    """The external log ``name`` (a key of EXT_DATA) under :func:`ext_data_root` when it is there, else None."""
    path = ext_data_root() / EXT_DATA[name]
    return path if path.exists() else None


def shared_data() -> Path | None:
    """../shared/data (or $SEGSCOPE_SHARED_DATA) when present."""
    env = os.environ.get("SEGSCOPE_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.exists() else None


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def run_command(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run a command (with ``env`` added to the environment), returning wall seconds and the child's peak RSS in MB (GNU time)."""
    gnu_time = Path("/usr/bin/time").exists()
    prefix = ["/usr/bin/time", "-f", "%M"] if gnu_time else []
    start = time.perf_counter()
    proc = subprocess.run([*prefix, *args], capture_output=True, text=True, env=None if env is None else {**os.environ, **env})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr[-2000:]}")
    if gnu_time:
        peak_kb = int(proc.stderr.strip().splitlines()[-1])
    else:  # the largest child so far: run each measurement in its own bench process
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "stdout": proc.stdout}


def peak_rss_mb_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path
