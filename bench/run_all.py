"""Run every benchmark in its own process, then write docs/benchmarks.md and the README table."""

from __future__ import annotations

import subprocess
import sys

from bench.report import write_reports

BENCHES = ["bench.recommend", "bench.explain", "bench.assistant_latency", "bench.routing", "bench.embedding", "bench.embed_backends",
           "bench.segments", "bench.usefulness", "bench.outliers", "bench.assign", "bench.drift", "bench.incremental", "bench.whatif", "bench.sequence", "bench.scale",
           "bench.store", "bench.tui_load"]


def main() -> None:
    only = sys.argv[1:] or BENCHES
    for module in only:
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], check=True)
    write_reports()


if __name__ == "__main__":
    main()
