"""Run every benchmark in its own process, then write docs/benchmarks.md and the README table.

Every row of the README table comes from one of these runs: assign and drift also get the seed-7
sample their sample rows are measured on, the torch baseline of bench/scale.py is run, and the
real-LLM bench runs when its llama.cpp install is there (`make llm-server`, or SEGSCOPE_LLAMA_PYTHON
and SEGSCOPE_LLAMA_MODEL, or OPENAI_BASE_URL). A bench that fails is reported and the others still
run; the tables are written from the results there are, and the command then fails naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import SEGSCOPE
from bench.real_llm import server_install
from bench.report import write_reports

BENCHES = ["bench.recommend", "bench.explain", "bench.assistant_latency", "bench.routing", "bench.embedding", "bench.embed_backends",
           "bench.segments", "bench.usefulness", "bench.outliers", "bench.assign", "bench.drift", "bench.incremental", "bench.whatif", "bench.sequence", "bench.scale",
           "bench.store", "bench.tui_load"]
SAMPLE_SEED = "7"  # the sample the assign and drift rows name (`segscope sample --seed 7`)


def _llm_available() -> bool:
    if os.environ.get("OPENAI_BASE_URL"):
        return True
    return all(path.exists() for path in server_install())


def commands(only: list[str], sample: Path) -> list[list[str]]:
    """Each bench's command line (module and arguments)."""
    out = []
    for module in only:
        extra = ["--sample", str(sample)] if module in ("bench.assign", "bench.drift") else []
        out.append([module, *extra])
        if module == "bench.scale" and only == BENCHES:
            out.append([module, "--sizes", "10k", "--baseline", "--name", "scale-baseline"])
    if only == BENCHES:
        if _llm_available():
            out.append(["bench.real_llm"])
        else:
            print("bench.real_llm skipped: no llama.cpp install (make llm-server) and no OPENAI_BASE_URL; its rows are left out", flush=True)
    return out


def main() -> None:
    only = sys.argv[1:] or BENCHES
    failed = []
    with tempfile.TemporaryDirectory(prefix="segscope-bench-sample-") as tmp:
        sample = Path(tmp) / "shop"
        if {"bench.assign", "bench.drift"} & set(only):
            subprocess.run([str(SEGSCOPE), "sample", "--out", str(sample), "--seed", SAMPLE_SEED], check=True, stdout=subprocess.DEVNULL)
        for command in commands(only, sample):
            print(f"== {' '.join(command)}", flush=True)
            if subprocess.run([sys.executable, "-m", *command]).returncode != 0:
                failed.append(command[0])
    write_reports()
    if failed:
        raise SystemExit(f"these benches failed (the tables use whatever they saved): {', '.join(failed)}")


if __name__ == "__main__":
    main()
