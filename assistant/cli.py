"""The `segscope` command line: the same capabilities as the TUI, for scripts.

Heavy libraries (pandas, torch, chromadb, langchain) are imported inside the
commands that need them, so `segscope --help` answers at once.
"""

from __future__ import annotations

import sys

import typer

# Importing a command module registers its commands, in this order in --help.
from assistant import cli_segment  # noqa: F401  isort: skip
from assistant import cli_assistant  # noqa: F401  isort: skip
from assistant import cli_insights  # noqa: F401  isort: skip
from assistant import cli_export  # noqa: F401  isort: skip
from assistant import cli_assign  # noqa: F401  isort: skip
from assistant import cli_drift  # noqa: F401  isort: skip
from assistant import cli_update  # noqa: F401  isort: skip
from assistant import cli_audit  # noqa: F401  isort: skip
from assistant import cli_whatif  # noqa: F401  isort: skip
from assistant.cli_app import DEFAULT_WORKSPACE, app, err, error_line


@app.callback()
def _root(ctx: typer.Context) -> None:
    """With no command, open the terminal UI on ./segscope-workspace (the sample data when empty)."""
    if ctx.invoked_subcommand is None:
        from assistant.cli_assistant import tui

        tui(workspace=DEFAULT_WORKSPACE, data=None, llm=None, local_only=None, chroma_url=None)


def main() -> None:
    """Console-script entry point: every SegscopeError becomes one line and exit code 2."""
    from tools.core.errors import SegscopeError

    try:
        app()
    except SegscopeError as exc:
        error_line(exc.one_line())
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("segscope: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
