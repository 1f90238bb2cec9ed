"""Connecting to a Ray cluster: an address that does not answer is one line, before anything is read or written."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.core.errors import EngineError

START_HINT = ("start a head with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address 127.0.0.1 "
              "--port 6379` and pass --ray-address 127.0.0.1:6379")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTALL_HINT = "install the cluster extras: `.venv/bin/pip install -e '.[cluster]'`"
CONNECT_TIMEOUT_S = 3.0


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of 'HOST:PORT' or 'ray://HOST:PORT' (the client port); ParameterError-like EngineError otherwise."""
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise EngineError(f"--ray-address {address!r} is not HOST:PORT", START_HINT)
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Fail with one line naming ``address`` when nothing listens there (Ray's own connect retries for a minute)."""
    if address in ("auto", "local"):
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EngineError(f"no Ray cluster answers at {address} ({reason})", START_HINT) from None


def require_ray() -> None:
    """EngineError with the install command when Ray is not installed."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError("--engine ray needs Ray Data, which is not installed", INSTALL_HINT) from None


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray connected to ``address`` (None: a private one-machine instance) for the block, then disconnected.

    The workers import this project's ``tools`` package from the driver's copy (``py_modules``), so a
    cluster started from another checkout runs this code, not its own.
    """
    if address:
        check_reachable(address)
    if address in (None, "", "local") or (address != "auto" and _host_port(address)[0] in LOOPBACK):
        # Ray swaps a loopback address for the machine's network address (for other nodes to reach); a
        # cluster on this machine's loopback needs that off, which this variable of Ray's does (it must be
        # set before Ray is imported, and for `ray start` too: START_HINT).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    require_ray()
    import ray
    import ray.data

    import tools

    runtime_env = {"py_modules": [str(Path(tools.__file__).parent)], "excludes": ["__pycache__", "*.pyc"]}
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    kwargs: dict = {"runtime_env": runtime_env, "logging_level": logging.ERROR, "log_to_driver": False}
    if not address:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever Ray raises, the user reads one line
        raise EngineError(f"could not connect to Ray at {address or 'a local instance'}: {type(exc).__name__}: {exc}",
                          START_HINT) from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_auto_log_stats = False
    try:
        yield
    finally:
        ray.shutdown()
