"""The TUI under load: typing while 100k users are segmented, and Esc.

Set-up: a workspace whose current run is the 3k-user sample (the "previous run"),
and a generated 100k users / 1M events / 20k items dataset. The real app runs
headless (App.run_test) with the built-in router, exactly as `segscope` would.

A. `/segment --data D100K`, Esc while texts are being embedded.
B. The same request run to the end, a key pressed every half second: echo
   latency (key press → the character is in the prompt box), by stage, and as a
   ratio to the same measurement with nothing running.
C. `/segment --data D100K k=5` (embeddings now cached), Esc while users are
   being written to Chroma.

For A and C: seconds from Esc until the segmentation process is gone, and until
the turn reports it was cancelled; and whether the workspace (every file but the
chat log and the lock, every vector collection and its size) is exactly as before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import SEGSCOPE, run_command, save

SIZE = (140, 42)
# The chat log records the cancelled request (as it should), and the lock file its last holder.
NOT_STATE = {"lock", "history.sqlite", "history.sqlite-journal", "history.sqlite-wal", "history.sqlite-shm"}


def job_pids() -> list[int]:
    """Our segmentation child processes (python -m assistant.jobs segment …)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\x00")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and b"assistant.jobs" in cmd and b"segment" in cmd:
            found.append(int(entry.name))
    return found


def workspace_state(ws: Path) -> tuple[dict[str, str], dict[str, int]]:
    import hashlib

    from tools.core.workspace import Workspace
    from tools.search.store import VectorStore

    files = {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and "chroma" not in p.relative_to(ws).parts and p.name not in NOT_STATE
    }
    store = VectorStore(Workspace(ws).chroma_dir)
    names = [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
    return files, {n: store.count(n) for n in sorted(names)}


async def wait_for(pilot, condition, timeout: float, step: float = 0.05) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("condition not reached")
        await pilot.pause(step)
    return time.perf_counter() - start


async def send(app, pilot, text: str) -> None:
    from tui.chat import PromptInput

    box = app.query_one(PromptInput)
    box.value = text
    box.focus()
    await pilot.press("enter")


async def echo_latency(app, pilot) -> float:
    """Seconds from pressing a key to seeing it in the prompt box."""
    from tui.chat import PromptInput

    box = app.query_one(PromptInput)
    if len(box.value) > 60:
        box.value = ""
        await pilot.pause()
    before = box.value
    start = time.perf_counter()
    await pilot.press("x")
    while box.value == before:
        await pilot.pause(0.001)
    return time.perf_counter() - start


async def cancel_case(app, pilot, ws: Path, prompt: str, stage: str, after_s: float) -> dict:
    from tui.status import StatusBar

    status = app.query_one(StatusBar)
    before = workspace_state(ws)
    await send(app, pilot, prompt)
    await wait_for(pilot, lambda: status.state.startswith(stage), timeout=900)
    await asyncio.sleep(after_s)
    pids = job_pids()
    assert pids, "no segmentation process is running"
    await pilot.press("escape")
    pressed = time.perf_counter()
    while job_pids():
        await asyncio.sleep(0.005)
    stopped = time.perf_counter() - pressed
    await wait_for(pilot, lambda: status.state == "cancelled", timeout=60, step=0.01)
    reported = time.perf_counter() - pressed
    await wait_for(pilot, lambda: not app.busy, timeout=60)
    after = workspace_state(ws)
    changed = sorted(k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k))
    return {
        "stage": stage,
        "stopped_s": round(stopped, 3),
        "cancelled_reported_s": round(reported, 3),
        "workspace_unchanged": after == before,
        "changed_files": changed,
        "collections_after": after[1],
        "files": len(before[0]),
        "collections": before[1],
    }


async def drive(ws: Path, data: Path, pause: float) -> dict:
    from assistant.config import load_settings
    from tui.app import make_app
    from tui.status import StatusBar

    app = make_app(ws, load_settings(llm="extractive"))
    out: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None and not app.busy, timeout=300)
        status = app.query_one(StatusBar)
        idle = []
        for _ in range(40):  # the same measurement with nothing running: the baseline
            idle.append(await echo_latency(app, pilot))
            await asyncio.sleep(0.05)
        out["idle_echo_median_ms"] = round(1000 * statistics.median(idle), 1)
        out["A"] = await cancel_case(app, pilot, ws, f"/segment --data {data}", "embedding texts", after_s=15)
        print("A", out["A"], flush=True)

        # B: the whole run, typing all along.
        await send(app, pilot, f"/segment --data {data}")
        await wait_for(pilot, lambda: app.busy, timeout=10)
        started = time.perf_counter()
        samples: list[tuple[str, float]] = []
        while app.busy:
            stage = status.state.rsplit(" ", 1)[0] if "/" in status.state else status.state
            samples.append((stage, await echo_latency(app, pilot)))
            await asyncio.sleep(pause)
        run_s = time.perf_counter() - started
        lat = sorted(s for _, s in samples)
        by_stage: dict[str, list[float]] = {}
        for name, s in samples:
            by_stage.setdefault(name, []).append(s)
        out["B"] = {
            "run_s": round(run_s, 1),
            "ended": status.state,
            "keys": len(lat),
            "echo_median_ms": round(1000 * statistics.median(lat), 1),
            "echo_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
            "echo_max_ms": round(1000 * lat[-1], 1),
            "echo_median_ratio_to_idle": round(statistics.median(lat) / statistics.median(idle), 2),
            "echo_max_ms_by_stage": {k: round(1000 * max(v), 1) for k, v in by_stage.items()},
        }
        print("B", out["B"], flush=True)
        out["C"] = await cancel_case(app, pilot, ws, f"/segment --data {data} k=5", "storing users", after_s=0.5)
        print("C", out["C"], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between key presses")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="segscope-tui-load-"))
    small, big, ws = tmp / "sample", tmp / "big", tmp / "ws"
    run_command([str(SEGSCOPE), "sample", "--out", str(small), "--seed", "7"])
    run_command([str(SEGSCOPE), "segment", "--data", str(small), "--workspace", str(ws), "--seed", "7", "--json"])
    run_command([str(SEGSCOPE), "sample", "--out", str(big), "--users", str(args.users), "--items", str(args.items), "--seed", "1"])
    result = asyncio.run(drive(ws, big, args.pause))
    result["users"] = args.users
    save("tui_load", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
