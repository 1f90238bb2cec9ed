"""The one `segscope` Typer app and what every command module shares: consoles, the default workspace, failing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from tools.segment.engine import Engine

app = typer.Typer(
    name="segscope",
    help="Explainable user segments and recommendations from behaviour data.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

DEFAULT_WORKSPACE = Path("segscope-workspace")


def error_line(message: str) -> None:
    """``segscope: error: MESSAGE`` on stderr; the message is printed as written (a ``[cluster]`` in it is not markup),
    except that data the resolver fenced for a model (``<data>u99999</data>``) is quoted as a person reads it."""
    import re

    from rich.markup import escape

    message = re.sub(r"<data>(.*?)</data>", r"“\1”", message, flags=re.S)
    err.print(f"[bold red]segscope: error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    error_line(message)
    raise typer.Exit(2)


def show_progress(json_output: bool) -> bool:
    return not json_output and err.is_terminal


ENGINE_HELP = ("Where the per-user work runs: 'local' (this process, the default) or 'ray' (a Ray cluster; needs the "
               "cluster extras). Same result either way.")
RAY_ADDRESS_HELP = ("The Ray cluster for --engine ray: HOST:PORT of a head started with `ray start --head --port PORT` "
                    "(default: a private Ray on this machine).")


def check_engine(engine: str, ray_address: str | None) -> None:
    """--engine and --ray-address as given, checked before any work (one line, exit 2)."""
    if engine not in ("local", "ray"):
        fail(f"--engine must be 'local' or 'ray', got {engine!r}")
    if ray_address is not None and engine != "ray":
        fail("--ray-address is for --engine ray; add --engine ray, or leave the address out")


@contextmanager
def engine_session(name: str, ray_address: str | None, seed: int = 0) -> Iterator[Engine]:
    """The engine a command asked for, connected for the block (Ray is imported only for --engine ray)."""
    from tools.segment.engine import LOCAL

    if name == "local":
        yield LOCAL
        return
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    with ray_session(ray_address):
        yield RayEngine(seed=seed)
