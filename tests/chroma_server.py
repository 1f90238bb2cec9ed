"""A real Chroma server on loopback for the tests: ``chroma run`` (the chromadb package's CLI) in a temp folder.

CI starts one in ``.ci/run`` and exports its URL as ``SEGSCOPE_TEST_CHROMA_URL``;
elsewhere the ``chroma_url`` fixture (tests/conftest.py) starts its own. Servers
started here run in their own process group and are always killed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 60.0


def chroma_binary() -> Path | None:
    """The `chroma` CLI beside this Python (the project's .venv), else on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return beside
    found = shutil.which("chroma")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=timeout) as response:
            return b"heartbeat" in response.read()
    except (urllib.error.URLError, OSError):
        return False


class ChromaServer:
    """``chroma run --path DIR --host 127.0.0.1 --port P``, started and waited for; ``stop()`` kills it."""

    def __init__(self, binary: Path, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        atexit.register(self.stop)  # even if pytest itself is stopped mid-test
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`chroma run` on port {self.port} did not come up: {self.log.read_text(errors='replace')[-1500:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
