"""The assistant (issue: assistant and TUI): time to the first painted TUI screen, and for each request
the time from submit to the first token and to the full answer (extractive backend, sample data),
plus the memory of the running process. Measured in one process, on a workspace `segment` prepared."""

from __future__ import annotations

import asyncio
import resource
import tempfile
import threading
import time
from pathlib import Path

from bench.common import median, save

REQUESTS = [
    "split my customers into groups",
    "what is special about the biggest segment?",
    "recommend something for user u00001 and tell me why",
    "write a report",
]


def first_paint_s(workspace: Path, settings) -> float:
    """Seconds from building the app to its first screen being mounted and painted (headless)."""
    from tui.app import make_app

    async def run() -> float:
        started = time.perf_counter()
        app = make_app(workspace, settings, None)
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            return time.perf_counter() - started

    return asyncio.run(run())


def main() -> None:
    from assistant.config import load_settings
    from assistant.events import Token, TurnDone
    from assistant.session import Session
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.pipeline import RunParams, segment_dataset

    tmp = Path(tempfile.mkdtemp(prefix="segscope-assistant-"))
    generate_sample(tmp / "data", seed=7)
    segment_dataset(load_dataset(tmp / "data"), tmp / "ws", RunParams(seed=7))
    settings = load_settings()
    paints = [first_paint_s(tmp / "ws", settings) for _ in range(3)]

    session = Session(tmp / "ws", settings, data_path=tmp / "data")
    started = time.perf_counter()
    session.prepare(lambda e: None)  # loads the embedder and the router's examples
    warm_s = time.perf_counter() - started
    rows = {}
    for prompt in REQUESTS:
        marks: dict[str, float] = {}
        submitted = time.perf_counter()

        def emit(event, marks=marks, submitted=submitted) -> None:
            if isinstance(event, Token) and "first_token" not in marks:
                marks["first_token"] = time.perf_counter() - submitted
            if isinstance(event, TurnDone):
                marks["answer"] = time.perf_counter() - submitted

        session.run_turn(prompt, emit, threading.Event())
        rows[prompt] = {k: round(v, 3) for k, v in marks.items()}
    save(
        "assistant",
        {
            "first_paint_s_median": round(median(paints), 3),
            "session_warm_up_s": round(warm_s, 2),
            "requests": rows,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        },
    )


if __name__ == "__main__":
    main()
