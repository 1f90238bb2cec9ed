"""The one `segscope` Typer app and what every command module shares: consoles, the default workspace, failing."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

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
