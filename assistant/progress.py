"""Progress bars for long CLI steps, fed by the tools' (stage, done, total) callbacks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class StageProgress:
    """One bar per stage, created when the stage first reports; quiet when disabled."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self.stage_times: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self._started.setdefault(stage, now)
        self.stage_times[stage] = now - self._started[stage]
        if self._progress is None:
            return
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(stage, total=max(total, 1))
            self._tasks[stage] = task
        self._progress.update(task, completed=done, total=max(total, 1))


@contextmanager
def stage_progress(console: Console, enabled: bool = True) -> Iterator[StageProgress]:
    """Bars on stderr while the block runs; disabled for --json or when stderr is not a terminal."""
    if not enabled:
        yield StageProgress(None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        yield StageProgress(progress)
