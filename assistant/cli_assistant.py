"""CLI commands for the assistant: `ask` (one-shot, for scripts) and `tui`."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli_app import DEFAULT_WORKSPACE, app, err, error_line

DEFAULT_DATA = Path("sample-data")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question or request, e.g. 'describe the biggest segment'.")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")] = DEFAULT_WORKSPACE,
    data: Annotated[Optional[Path], typer.Option("--data", help="Data to segment when the workspace has no run yet.")] = None,
    llm: Annotated[Optional[str], typer.Option("--llm", help="'extractive' (default) or 'openai:MODEL'.")] = None,
    local_only: Annotated[Optional[bool], typer.Option("--local-only/--allow-remote", help="Refuse any remote LLM call.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the answer, tool calls and their results as JSON.")] = False,
    continue_: Annotated[bool, typer.Option("--continue", "-c", help="Continue the workspace's last conversation (follow-ups such as 'and for segment 3?').")] = False,
    conversation: Annotated[Optional[str], typer.Option("--conversation", help="Continue this conversation (its id is in `ask --json` output).")] = None,
    chroma_url: Annotated[Optional[str], typer.Option("--chroma-url", help="Chroma server (http://HOST:PORT) for the vectors of runs segmented here; 'local': the workspace's folder. Searches read the store the live run was written to.")] = None,
) -> None:
    """Ask once and print the answer (with --json: the tool calls and their results too).

    Each `ask` starts a new conversation unless --continue or --conversation ID says which to go on with.
    """
    from assistant.config import load_settings
    from assistant.events import (
        Notice,
        Token,
        ToolFinished,
        ToolStarted,
        TurnCancelled,
        TurnDone,
        TurnFailed,
    )
    from assistant.session import Session, event_to_dict
    from tools.core.errors import SegscopeError

    settings = load_settings(llm=llm, local_only=local_only, chroma_url=chroma_url)
    session = Session(workspace, settings, data_path=data, conversation=conversation or (None if continue_ else "new"))
    try:
        _ = session.conversation_id  # an unknown --conversation is one line and exit 2, before any work
    except SegscopeError as exc:
        error_line(exc.one_line())
        raise typer.Exit(2) from None
    events: list = []

    def emit(event) -> None:
        events.append(event)
        if json_output:
            return
        if isinstance(event, Token):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, ToolStarted):
            err.print(f"[dim]→ {event.name}({json.dumps(event.args, ensure_ascii=False)})[/]", highlight=False)
        elif isinstance(event, ToolFinished):
            mark = "✓" if event.ok else "✗"
            err.print(f"[dim]{mark} {event.name} in {event.duration_s:.1f}s[/]", highlight=False)
        elif isinstance(event, Notice):
            err.print(f"[yellow]{event.text}[/]", highlight=False)

    cancel = threading.Event()
    session.prepare(emit, cancel)
    session.run_turn(question, emit, cancel)
    final = events[-1]
    if json_output:
        calls: dict[str, dict] = {}
        for ev in events:
            if isinstance(ev, ToolStarted):
                calls[ev.call_id] = {"name": ev.name, "args": ev.args}
            elif isinstance(ev, ToolFinished):
                calls.setdefault(ev.call_id, {"name": ev.name})
                calls[ev.call_id].update(ok=ev.ok, summary=ev.summary, duration_s=round(ev.duration_s, 3), result=event_to_dict(ev).get("artifact"))
        payload = {
            "question": question,
            "conversation": session.conversation_id,
            "responder": getattr(final, "responder", "") or session.responder,  # the router, when it stood in for the model
            "status": type(final).__name__,
            "answer": getattr(final, "answer", None),
            "error": getattr(final, "error", None),
            "tool_calls": list(calls.values()),
            "notices": [ev.text for ev in events if isinstance(ev, Notice)],
        }
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        sys.stdout.write("\n")
    if isinstance(final, TurnFailed):
        error_line(final.error)
        raise typer.Exit(2)
    if isinstance(final, TurnCancelled):
        raise typer.Exit(130)
    assert isinstance(final, TurnDone)


@app.command()
def tui(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")] = DEFAULT_WORKSPACE,
    data: Annotated[Optional[Path], typer.Option("--data", help="Data to segment (default: the bundled sample).")] = None,
    llm: Annotated[Optional[str], typer.Option("--llm", help="'extractive' (default) or 'openai:MODEL'.")] = None,
    local_only: Annotated[Optional[bool], typer.Option("--local-only/--allow-remote", help="Refuse any remote LLM call.")] = None,
    chroma_url: Annotated[Optional[str], typer.Option("--chroma-url", help="Chroma server (http://HOST:PORT) for the vectors of runs segmented here; 'local': the workspace's folder. Searches read the store the live run was written to.")] = None,
) -> None:
    """Open the terminal UI on a workspace (the sample data when given nothing)."""
    from assistant.config import load_settings

    settings = load_settings(llm=llm, local_only=local_only, chroma_url=chroma_url)
    from tui.app import run_tui

    run_tui(workspace, data or DEFAULT_DATA, settings)
