"""The workspace folder: where a run's results live, written so a crash never leaves half of one.

Layout::

    DIR/segments.json          the latest run's summary (what people read)
    DIR/assignments.csv        user_id,segment_id for the latest run
    DIR/.segscope/current      the run key of the latest complete run
    DIR/.segscope/runs/KEY/    everything one run produced (profiles, model, summary)
    DIR/.segscope/cache/       text embeddings by content hash, shared by all runs
    DIR/.segscope/chroma/      the embedded Chroma vector store (items, users, segments)
    DIR/.segscope/store.json   which store holds the live run's vectors (this folder, or a Chroma server)
                               (the summary files and store.json are copies of the current run's; the pointer wins)
    DIR/.segscope/lock         held while a run writes

Each file is written to a temporary name in the same folder and renamed into
place; a run folder is built under a temporary name and renamed whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tools.core.errors import WorkspaceError

STATE_DIR = ".segscope"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_name_pattern(path: Path) -> str:
    """The glob that matches the temporary files ``atomic_file(path)`` leaves when a process is killed mid-write."""
    return f".{path.name}.*.tmp"


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write that becomes ``path`` only when the block finishes: a crash leaves the old file.

    The data goes to ``.NAME.XXXX.tmp`` beside ``path`` (so the rename stays on one
    file system), is flushed to disk, then renamed over ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); results and reports are meant to be shared.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: Path, merge: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path`` that becomes ``path`` only when the block finishes.

    An existing ``path`` is replaced whole; with ``merge``, the new files are moved
    into an existing non-empty folder one by one instead, and its other files stay.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; results are meant to be shared
        yield tmp
        if merge and path.is_dir() and any(path.iterdir()):
            for child in tmp.iterdir():
                os.replace(child, path / child.name)
            return
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


class Workspace:
    """Paths and safe writes for one workspace folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.state = self.root / STATE_DIR

    @property
    def segments_json(self) -> Path:
        return self.root / "segments.json"

    @property
    def assignments_csv(self) -> Path:
        return self.root / "assignments.csv"

    @property
    def cache_dir(self) -> Path:
        return self.state / "cache"

    @property
    def chroma_dir(self) -> Path:
        return self.state / "chroma"

    @property
    def store_json(self) -> Path:
        return self.state / "store.json"

    def store_record(self) -> dict | None:
        """Where the live run's vectors were written (tools.search.locator reads it); None before any record."""
        if not self.store_json.exists():
            return None
        try:
            record = json.loads(self.store_json.read_text())
        except (OSError, ValueError) as exc:
            raise WorkspaceError(
                f"{self.store_json} cannot be read ({exc})", "delete it: the next `segscope segment` records the store again"
            ) from exc
        if not isinstance(record, dict):
            raise WorkspaceError(f"{self.store_json} is not a JSON object", "delete it: the next `segscope segment` records the store again")
        return record

    @property
    def runs_dir(self) -> Path:
        return self.state / "runs"

    def run_dir(self, key: str) -> Path:
        return self.runs_dir / key

    def has_run(self, key: str) -> bool:
        """Whether run KEY is complete (a run folder only appears whole, renamed from a temp name)."""
        return (self.run_dir(key) / "run.json").exists()

    def current_run(self) -> str | None:
        """The key of the latest complete run, or None when there is none.

        The pointer is the truth; the summary copies beside it are put back in step with it when a
        writer was killed between copying them up and moving the pointer (and no writer holds the lock).
        """
        key = self._pointer()
        if key is not None and not self._copies_match(key):
            self._restore_copies_unless_locked(key)
        return key

    def _pointer(self) -> str | None:
        pointer = self.state / "current"
        if not pointer.exists():
            return None
        key = pointer.read_text().strip()
        return key if key and self.has_run(key) else None

    def _copies_match(self, key: str) -> bool:
        """Whether DIR/segments.json is run KEY's (publish copies it first and moves the pointer last,
        so when it matches, assignments.csv and store.json, copied between the two, match too).

        A copy in step is the run's file byte for byte, which is cheaper to see than to parse (every
        reader asks); only a copy that differs is parsed, for the run it names.
        """
        try:
            copy = self.segments_json.read_bytes()
            if copy == (self.run_dir(key) / "segments.json").read_bytes():
                return True
            return json.loads(copy).get("run_key") == key
        except (OSError, ValueError, AttributeError):
            return False

    def _restore_copies(self, key: str) -> None:
        run = self.run_dir(key)
        atomic_write_bytes(self.segments_json, (run / "segments.json").read_bytes())
        atomic_write_bytes(self.assignments_csv, (run / "assignments.csv").read_bytes())
        if (run / "store.json").exists():
            atomic_write_bytes(self.store_json, (run / "store.json").read_bytes())

    def _restore_copies_unless_locked(self, key: str) -> None:
        """Restore the copies for run KEY, but only when no writer is mid-publish (it holds the lock)."""
        import fcntl

        try:
            fh = open(self.state / "lock", "a+")
        except OSError:
            return  # a read-only workspace: the pointer still answers, the copies stay as they are
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            if self._pointer() == key and not self._copies_match(key):
                try:
                    self._restore_copies(key)
                except OSError:
                    pass
        finally:
            fh.close()

    def require_run(self) -> Path:
        key = self.current_run()
        if key is None:
            raise WorkspaceError(
                f"{self.root}: no segmentation run found in this workspace",
                f"run `segscope segment --data PATH --workspace {self.root}` first",
            )
        return self.run_dir(key)

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"{self.root} exists and is not a folder", "choose another --workspace")
        try:
            self.state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace {self.root}: {exc.strerror}", "choose a writable --workspace") from exc

    def clean_leftovers(self) -> int:
        """Remove temp files and half-built run folders a killed run left behind, and put the summary
        copies back in step with the pointer (call under the lock)."""
        key = self._pointer()
        if key is not None and not self._copies_match(key):
            self._restore_copies(key)
        removed = 0
        for folder in (self.root, self.state, self.runs_dir):
            if not folder.is_dir():
                continue
            for leftover in folder.glob(".*.tmp"):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
                removed += 1
        return removed

    @contextmanager
    def new_run(self, key: str) -> Iterator[Path]:
        """A temporary folder that becomes ``runs/KEY`` only if the block finishes."""
        with atomic_folder(self.run_dir(key)) as tmp:
            yield tmp

    def publish(self, key: str, store: dict | None = None) -> None:
        """Make run KEY the current one: copy its summary files up, record its store, then move the pointer.

        The pointer moves last, so a kill before it leaves the previous run current; its copies are put
        back by the next reader (``current_run``) or writer (``clean_leftovers``). The store is recorded in
        the run folder too, so that restoring a run restores the store it was written to.
        """
        run = self.run_dir(key)
        if store is not None:
            atomic_write_json(run / "store.json", store)
        elif not (run / "store.json").exists() and self.store_json.exists():
            atomic_write_bytes(run / "store.json", self.store_json.read_bytes())  # an update keeps its parent's store
        self._restore_copies(key)
        atomic_write_text(self.state / "current", key + "\n")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Refuse a second writer on the same workspace instead of letting both corrupt it."""
        import fcntl

        self.state.mkdir(parents=True, exist_ok=True)
        fh = open(self.state / "lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkspaceError(
                    f"{self.root}: another segscope run is writing to this workspace",
                    "wait for it to finish, or use another --workspace",
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fh.close()
