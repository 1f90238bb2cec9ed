"""Scale-out: `segscope segment --engine ray` on generated data read as Parquet parts, the local engine beside it.

For each size in ``--sizes`` (``10k``, ``100k``, ``300k``, ``1m``: N users, N/10 items, about 10 events a
user), ``segscope sample`` writes the data and its events are rewritten as Parquet parts
(``events/part-NNNNN.parquet``, ``--part-rows`` rows each) beside items.csv and users.csv. The
bench starts its own Ray head on a free loopback port (its own temp folder; ``--cpus``,
``--object-store-mb``), runs ``segscope segment --engine ray --ray-address …`` on every size, and
the local engine (no ``--engine``) on the sizes in ``--local-sizes``, then stops the head, also
when a run fails.

Measured per run, from the run's timings.json and from /proc:
- wall time per stage: profiles (with the Ray engine: embedding, recipe, partitions, scaling),
  clustering (with the Ray engine: of which placing users on the workers), summary, store;
- the peak resident memory (VmHWM) of the largest single process, and which one it was, among the
  segscope process and every process of the bench's Ray head (GCS, raylet, workers), sampled
  every ``--interval`` seconds; the peak of their sum is reported too (it counts shared pages once
  per process, so it overstates);
- the bytes the shuffle moved (the events table in Ray's object store, shuffled once).

``--store server`` starts a Chroma server (`chroma run`) in the head's temp folder and passes
``--chroma-url`` to every run (the sampler counts it among the run's processes); ``--cache-from DIR``
starts each Ray run's workspace with an embedding cache (its texts are looked up, not embedded again,
and the run's row says so).

``python -m bench.scale_out --sizes 100k,1m`` writes bench/results/scale_out.json; the growth
between the first and the last size of each engine is reported with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import SEGSCOPE, save

SIZES = {"10k": 10_000, "100k": 100_000, "300k": 300_000, "1m": 1_000_000}
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_parts(source: Path, out: Path, part_rows: int) -> dict:
    """``source`` (a `segscope sample` folder) as ``out``: events as Parquet parts, the other tables as they are."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parts = out / "events"
    parts.mkdir(parents=True)
    for name in ("items.csv", "users.csv"):
        (out / name).write_bytes((source / name).read_bytes())
    convert = pacsv.ConvertOptions(column_types={"user_id": pa.string(), "item_id": pa.string(), "event_type": pa.string(),
                                                 "timestamp": pa.int64(), "value": pa.float64(), "text": pa.string()})
    reader = pacsv.open_csv(source / "events.csv", convert_options=convert, read_options=pacsv.ReadOptions(block_size=64 << 20))
    n_parts = n_rows = 0
    pending: list = []
    pending_rows = 0

    def flush() -> None:
        nonlocal n_parts, pending, pending_rows
        if pending_rows:
            pq.write_table(pa.Table.from_batches(pending), parts / f"part-{n_parts:05d}.parquet")
            n_parts, pending, pending_rows = n_parts + 1, [], 0

    for batch in reader:
        pending.append(batch)
        pending_rows += batch.num_rows
        n_rows += batch.num_rows
        if pending_rows >= part_rows:
            flush()
    flush()
    return {"parts": n_parts, "events": n_rows, "bytes": sum(p.stat().st_size for p in parts.iterdir())}


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "PPid"):
            out[key] = int(value.split()[0])
    return out


def _label(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return raw[:80] or Path(f"/proc/{pid}/comm").read_text().strip()


def processes(root_pid: int | None, marker: str) -> list[int]:
    """``root_pid`` and every process whose command line holds ``marker``, with all their descendants."""
    parents: dict[int, int] = {}
    roots = set() if root_pid is None else {root_pid}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            parents[pid] = _status(pid)["PPid"]
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                roots.add(pid)
        except (OSError, KeyError):
            continue
    ours = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                changed = True
    return sorted(p for p in ours if p in parents and p != os.getpid())


def stop_head(marker: str) -> None:
    """SIGKILL the bench's own Ray head (its processes name its temp folder) and its workers; `ray stop` would stop
    every Ray on the machine."""
    for pid in processes(None, marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Sampler(threading.Thread):
    """The processes of a run: the child's tree and every process whose command line names ``marker`` (the Ray
    head's temp folder), with their descendants; each one's peak RSS (VmHWM) and the peak of the sum of RSS."""

    def __init__(self, root_pid: int, marker: str, interval: float, limit_mb: float) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.marker, self.interval, self.limit_kb = root_pid, marker, interval, limit_mb * 1024
        self.over: tuple[float, str] | None = None  # (MB, process) when one passed the limit and the run was stopped
        self.peaks: dict[int, tuple[int, str]] = {}  # pid -> (VmHWM kB, label)
        self.sum_peak_kb = 0
        self.done = threading.Event()

    def sample(self) -> None:
        total = 0
        for pid in processes(self.root_pid, self.marker):
            try:
                status = _status(pid)
                label = self.peaks[pid][1] if pid in self.peaks else _label(pid)
            except (OSError, KeyError):
                continue
            total += status.get("VmRSS", 0)
            if status.get("VmHWM", 0) >= self.peaks.get(pid, (0, ""))[0]:
                self.peaks[pid] = (status.get("VmHWM", 0), label)
            if status.get("VmRSS", 0) > self.limit_kb and self.over is None:  # the machine would swap, or kill at random
                self.over = (status["VmRSS"] / 1024, label)
                os.kill(self.root_pid, 9)
        self.sum_peak_kb = max(self.sum_peak_kb, total)

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)

    def largest(self) -> tuple[float, str]:
        kb, label = max(self.peaks.values(), default=(0, ""))
        return kb / 1024, label


def run_segment(data: Path, ws: Path, args: list[str], marker: str, interval: float, limit_mb: float,
                cache_from: Path | None = None) -> dict:
    """`segscope segment` on ``data`` in a child, sampled; its summary, timings and the memory figures.
    ``cache_from``: an embedding cache folder the workspace starts with (the texts are then not embedded again)."""
    if ws.exists():  # a finished run there would be served from its cache
        shutil.rmtree(ws)
    if cache_from is not None:
        shutil.copytree(cache_from, ws / ".segscope" / "cache")
    cmd = [str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(ws), "--seed", "1", "--json", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid, marker, interval, limit_mb)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    if sampler.over is not None:
        mb, who = sampler.over
        return {"stopped": f"stopped after {wall:.0f} s: {who} passed {limit_mb:.0f} MB ({mb:.0f} MB)",
                "wall_s": round(wall, 1), "largest_process_peak_mb": round(mb), "largest_process": who,
                "sum_of_processes_peak_mb": round(sampler.sum_peak_kb / 1024)}
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr[-3000:]}")
    summary = json.loads(stdout)
    timings = json.loads((ws / ".segscope" / "runs" / summary["run_key"] / "timings.json").read_text())
    peak_mb, who = sampler.largest()
    return {
        "users": summary["data"]["n_users"], "events": summary["data"]["n_events"], "items": summary["data"]["n_items"],
        "k": summary["k"], "wall_s": round(wall, 1),
        "stages_s": {k: round(v, 1) for k, v in timings.items() if k.endswith("_s")},
        "shuffled_mb": round(timings.get("ray_shuffled_bytes", 0.0) / 2**20, 1) if "ray_shuffled_bytes" in timings else None,
        "largest_process_peak_mb": round(peak_mb), "largest_process": who,
        "sum_of_processes_peak_mb": round(sampler.sum_peak_kb / 1024),
        "load_avg_1min_after": round(os.getloadavg()[0], 1),
        "embedding_cache_from": None if cache_from is None else str(cache_from),
    }


def start_chroma(path: Path, env: dict) -> str:
    """A Chroma server (`chroma run`) on a free loopback port, its data under ``path``; its URL once it answers."""
    import chromadb
    from chromadb.config import Settings

    port = _free_port()
    path.mkdir(parents=True)
    log = open(path.parent / "chroma.log", "wb")  # noqa: SIM115 - the server writes to it until the bench stops it
    subprocess.Popen([str(RAY.parent / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                     stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)).heartbeat()
            return f"http://127.0.0.1:{port}"
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Chroma server did not answer on port {port}: see {path.parent / 'chroma.log'}")
            time.sleep(0.5)


def _growth(rows: dict, names: list[str]) -> dict | None:
    if len(names) < 2:
        return None
    names = [n for n in names if "stopped" not in rows[n]]
    if len(names) < 2:
        return None
    a, b = rows[names[0]], rows[names[-1]]
    return {
        "from_to": [names[0], names[-1]], "users_factor": round(b["users"] / a["users"], 1),
        "time_factor": round(b["wall_s"] / a["wall_s"], 2),
        "largest_process_memory_factor": round(b["largest_process_peak_mb"] / a["largest_process_peak_mb"], 2),
        "stage_factors": {k: round(b["stages_s"][k] / a["stages_s"][k], 2) for k in a["stages_s"]
                          if k in b["stages_s"] and a["stages_s"][k] >= 0.5},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--local-sizes", default="100k", help="sizes the local engine also runs (comma list, or none)")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--object-store-mb", type=int, default=2048)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--limit-mb", type=float, default=16_000, help="stop a run whose one process passes this (MB)")
    parser.add_argument("--work", type=Path, help="keep the generated data here (reused when present)")
    parser.add_argument("--store", choices=("embedded", "server"), default="embedded",
                        help="server: a Chroma server the bench starts (`chroma run`), counted among the run's processes")
    parser.add_argument("--cache-from", type=Path, help="start each Ray run's workspace with this embedding cache folder "
                        "(a workspace's .segscope/cache): its texts are not embedded again, and the run says so")
    parser.add_argument("--name", default="scale_out")
    args = parser.parse_args()
    from bench.embed_backends import cpu_features

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the head is stopped by the finally below

    work = args.work or Path(tempfile.mkdtemp(prefix="segscope-scale-out."))
    work.mkdir(parents=True, exist_ok=True)
    rows: dict = {"cpu_features": cpu_features(), "cpus": args.cpus, "object_store_mb": args.object_store_mb,
                  "embedder": args.embedder, "store": args.store, "ray": {}, "local": {}}
    temp = Path(tempfile.mkdtemp(prefix="ssray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    subprocess.run([str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--num-cpus", str(args.cpus), "--object-store-memory", str(args.object_store_mb << 20),
                    "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp)],
                   check=True, capture_output=True, env=env)
    store_args: list[str] = []
    try:
        if args.store == "server":  # its data in the head's temp folder: the sampler and the cleanup find it by that
            store_args = ["--chroma-url", start_chroma(temp / "chroma", env)]
        local_sizes = [] if args.local_sizes == "none" else args.local_sizes.split(",")
        for name in args.sizes.split(","):
            users = SIZES[name]
            raw, data = work / f"sample-{name}", work / f"parts-{name}"
            if not data.is_dir():
                t = time.perf_counter()
                subprocess.run([str(SEGSCOPE), "sample", "--out", str(raw), "--users", str(users), "--items",
                                str(users // 10), "--seed", "1"], check=True, capture_output=True)
                written = write_parts(raw, data, args.part_rows)
                written["generate_s"] = round(time.perf_counter() - t, 1)
                (data / "parts.json").write_text(json.dumps(written))
                for path in raw.iterdir():
                    path.unlink()
                raw.rmdir()
            rows.setdefault("data", {})[name] = json.loads((data / "parts.json").read_text())
            ray_args = ["--embedder", args.embedder, "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", *store_args]
            rows["ray"][name] = run_segment(data, work / f"ws-ray-{name}", ray_args, str(temp), args.interval, args.limit_mb,
                                            args.cache_from)
            print(name, "ray", json.dumps(rows["ray"][name]), flush=True)
            save(args.name, rows)  # each figure kept as it comes: a later, larger size may not finish
            if name in local_sizes:
                rows["local"][name] = run_segment(data, work / f"ws-local-{name}", ["--embedder", args.embedder, *store_args],
                                                  str(temp), args.interval, args.limit_mb)
                print(name, "local", json.dumps(rows["local"][name]), flush=True)
                save(args.name, rows)
    finally:
        stop_head(str(temp))
    rows["growth"] = {engine: _growth(rows[engine], list(rows[engine])) for engine in ("ray", "local")}
    save(args.name, rows)


if __name__ == "__main__":
    main()
