"""Segmentation in a child process, so the interface stays responsive and Esc stops it at once.

A thread cannot be stopped from outside, and the pure-Python stretches of a
large segmentation (reading a million events, KMeans set-up, metadata for
Chroma) compete with the interface for the GIL. The assistant therefore runs
``python -m assistant.jobs segment SPEC`` in a child that streams JSON lines on
its stdout: progress, then one result or one error. Cancelling kills the child
(SIGKILL, exactly as a crash would; the pipeline's writes are crash-safe) and
then tidies the workspace in a second short child: temp run folders go, the
vector collections of the unfinished run go, and a workspace the job created
is removed. The published run is never touched, so the workspace is as it was.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.core import errors

POLL_S = 0.05  # how often the waiting thread looks at the cancel flag
ProgressFn = Callable[[str, int, int], None]


class Cancelled(Exception):
    """The user cancelled the turn; raised by progress callbacks and by a stopped job."""


@dataclass(frozen=True)
class JobResult:
    key: str
    summary: dict
    cached: bool
    notices: tuple[str, ...] = ()


# -- the parent side -----------------------------------------------------------------


def run_segment_job(
    data_path: str | Path,
    workspace: str | Path,
    params: dict,
    progress: ProgressFn,
    stop_requested: Callable[[], bool] = lambda: False,
    store: dict | None = None,
) -> JobResult:
    """Segment ``data_path`` into ``workspace`` in a child process; blocks until done, failed or stopped.

    ``store`` is the record of the vector store to write to (``StoreSpec.record()``;
    default: the one the workspace records). ``progress`` gets the child's
    (stage, done, total) reports; if it raises (a cancelled turn does), or
    ``stop_requested()`` turns true, the child is killed, the workspace tidied,
    and :class:`Cancelled` (or that error) raised.
    """
    from tools.core.workspace import Workspace

    workspace = Path(workspace)
    existed = workspace.exists()
    spec = {"data": str(data_path), "workspace": str(workspace), "params": params, "existed": existed,
            "store": store, "previous_store": Workspace(workspace).store_record() if existed else None}
    proc, lines, stderr = _start("segment", spec)
    storing = False  # whether the child got as far as writing vectors
    try:
        while True:
            # Once the child has exited its run is published or failed: nothing is left to stop.
            if proc.poll() is None and stop_requested():
                raise Cancelled()
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the child is done
                break
            message = _parse(line)
            if "progress" in message:
                stage, done, total = message["progress"]
                storing = storing or stage.startswith("storing")
                if proc.poll() is None:  # (a finished child's late reports cannot be cancelled any more)
                    progress(stage, int(done), int(total))
            elif "result" in message:
                proc.wait()
                r = message["result"]
                return JobResult(r["key"], r["summary"], bool(r["cached"]), tuple(r.get("notices") or ()))
            elif "error" in message:
                proc.wait()
                raise _rebuild(message["error"])
        code = proc.wait()
        raise errors.SegscopeError(
            f"the segmentation process stopped unexpectedly (exit code {code}): {_last_line(stderr)}",
            "run `segscope segment` on the command line to see the full message",
        )
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            discard_unfinished(workspace, existed, vectors=storing, store=store, previous_store=spec["previous_store"])
        raise
    finally:
        stderr.close()


def discard_unfinished(workspace: Path, existed: bool, vectors: bool, store: dict | None = None, previous_store: dict | None = None) -> None:
    """Undo what a killed job left: its temp folders, its vector collections, or the whole new workspace.

    ``store`` is the record of the store the job wrote to (None: the workspace's own),
    ``previous_store`` the workspace's record before the job started.
    """
    server = bool(store and store.get("store") == "chroma-server")
    if existed or (vectors and server):  # a server's collections outlive the folder: a child drops them
        spec = {"workspace": str(workspace), "vectors": vectors, "store": store, "previous_store": previous_store, "existed": existed}
        proc, lines, stderr = _start("discard", spec)
        try:
            while lines.get() is not None:
                pass
            proc.wait()
        finally:
            stderr.close()
    if not existed:
        import shutil

        shutil.rmtree(workspace, ignore_errors=True)


def _start(command: str, spec: dict) -> tuple[subprocess.Popen, queue.Queue, object]:
    stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.jobs", command, json.dumps(spec)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        encoding="utf-8",
        env=_child_env(),
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name=f"segscope-job-{command}", daemon=True).start()
    return proc, lines, stderr


def _child_env() -> dict[str, str]:
    """This environment, with the folder holding our packages first on the path (a checkout works too)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _parse(line: str) -> dict:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return message if isinstance(message, dict) else {}


def _rebuild(error: dict) -> Exception:
    """The child's SegscopeError as the same class here (only classes from tools.core.errors)."""
    cls = getattr(errors, str(error.get("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.SegscopeError)):
        cls = errors.SegscopeError
    return cls(str(error.get("message", "segmentation failed")), error.get("hint"))


def _last_line(stderr) -> str:
    stderr.seek(0)
    tail = [line.strip() for line in stderr.read().splitlines() if line.strip()]
    return tail[-1][:300] if tail else "no message"


# -- the child side -------------------------------------------------------------------


def _child(command: str, spec: dict) -> int:
    # Only our JSON lines go to the parent: anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    parent = os.getppid()

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    if command == "discard":
        return _discard(spec)
    last: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if os.getppid() != parent:  # the assistant is gone: stop rather than finish unseen
            os._exit(3)
        now = time.monotonic()
        if done < total and now - last.get(stage, 0.0) < 0.1:
            return
        last[stage] = now
        send({"progress": [stage, done, total]})

    try:
        from tools.data.ingest import load_dataset
        from tools.pipeline import RunParams, segment_dataset
        from tools.search.locator import StoreSpec

        progress("loading data", 0, 1)
        data = load_dataset(spec["data"])
        progress("loading data", 1, 1)
        store = StoreSpec.from_record(spec["store"], spec["workspace"]) if spec.get("store") else None
        run = segment_dataset(data, spec["workspace"], RunParams(**spec["params"]), progress=progress, store=store)
    except errors.SegscopeError as exc:
        send({"error": {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}})
        return 2
    send({"result": {"key": run.key, "summary": run.summary, "cached": run.cached, "notices": list(run.notices)}})
    return 0


def _discard(spec: dict) -> int:
    from tools.core.workspace import Workspace

    try:
        return _discard_in(Workspace(spec["workspace"]), spec)
    except errors.SegscopeError as exc:  # e.g. the server went away too: nothing more to tidy from here
        print(f"segscope: {exc.one_line()}", file=sys.stderr)
        return 2


def _discard_in(ws, spec: dict) -> int:
    from tools.search.locator import StoreSpec, recorded_store
    from tools.search.store import VectorStore
    from tools.search.vectors import keep_only, leave_store

    if not spec.get("existed", True):  # a first run: the folder goes (the parent removes it), and the store it wrote to
        if spec.get("vectors") and spec.get("store"):
            VectorStore(StoreSpec.from_record(spec["store"], ws.root)).discard()
        return 0
    with ws.lock():
        ws.clean_leftovers()
        if not spec.get("vectors"):
            return 0
        live = recorded_store(ws.root)
        target = StoreSpec.from_record(spec["store"], ws.root) if spec.get("store") else live
        if target != live:  # a store the workspace does not use: everything in it is the killed run's
            VectorStore(target).discard()
            return 0
        previous = StoreSpec.from_record(spec.get("previous_store"), ws.root)
        if previous != live:  # killed after publishing into a new store, before it emptied the old one
            leave_store(previous, live)
        if live.is_server or ws.chroma_dir.exists():
            current = ws.current_run()
            fingerprint = json.loads(ws.segments_json.read_text())["data"]["fingerprint"] if current else None
            keep_only(VectorStore(live), current, fingerprint)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], json.loads(sys.argv[2])))
