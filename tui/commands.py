"""The command palette's commands, namespaced like Posting's ("segment: Re-run", "app: Quit")."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import SegscopeApp


class SegscopeCommands(Provider):
    @property
    def segscope(self) -> SegscopeApp:
        return cast("SegscopeApp", self.screen.app)

    def commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.segscope
        items: list[tuple[str, Callable[[], object], str]] = [
            ("segment: Re-run", app.action_rerun, "Segment the workspace's data again and refresh the table and map (ctrl+r)"),
            ("report: Write HTML report", app.action_write_report, "Ask the assistant for a shareable HTML report: segments, map, verified examples (f2)"),
            ("segments: Export selected (CSV)", app.action_export_segment,
             "The selected segment's members, with their segment key and features, as a CSV in the workspace's exports folder"),
            ("audit: Run fairness audit", app.action_audit, "Is any segment a proxy for a user attribute; recommendation quality and exposure per group"),
            ("segments: Show map", app.action_show_map, "Users on a 2-D map, coloured by segment (f3)"),
            ("segments: Show drift", app.action_show_drift, "Who moved between segments, sizes before and after, users who fit none (f4)"),
            ("segments: Show table", partial(app.show_tab, "segments"), "The segments of the current run and the selected one's detail"),
            ("trace: Show tool calls", partial(app.show_tab, "trace"), "Every tool call of this session: arguments, time, result"),
            ("audit: Show last audit", partial(app.show_tab, "audit"), "The last fairness audit of this session"),
            ("backend: Show current", app.action_show_backend, f"Answers come from: {app.backend_label}"),
        ]
        for choice in app.backend_choices():
            items.append((f"backend: Switch to {choice}", partial(app.switch_backend, choice), "Rebuild the session with this LLM backend"))
        if app.busy:
            items.append(("turn: Cancel", app.action_cancel_turn, "Stop the running turn (Esc)"))
        # Textual's own commands (theme, keys, quit…) come from here too: one provider keeps the order fixed.
        for command in app.get_system_commands(self.screen):
            items.append((f"app: {command.title}", command.callback, command.help))
        return items

    async def discover(self) -> Hits:
        for title, callback, help_text in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self.commands():
            if (score := matcher.match(title)) > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
