"""The TUI driven by Pilot against a real small workspace, with a scripted session standing in for the assistant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.events import (
    Notice,
    Token,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    TurnCancelled,
    TurnDone,
    TurnFailed,
    TurnStarted,
)
from assistant.service import WorkspaceService
from tui.app import make_app
from tui.chat import AnswerMessage, Note, PromptInput, UserMessage
from tui.detail import SegmentDetail, lift_bar
from tui.map import SegmentMap
from tui.segments import SegmentsTable
from tui.side import SidePanel
from tui.status import StatusBar
from tui.trace import ToolCallView

ROOT = Path(__file__).resolve().parents[1]
SIZE = (120, 40)
HISTORY = [("user", "what segments are there?"), ("assistant", "There are **6 segments**; the largest is segment 0.")]

Script = Callable[[int, str, Callable, threading.Event, "ScriptedSession"], None]


# ---------------------------------------------------------------- a scripted session


class ScriptedSession:
    """The Session protocol, answering each turn with the next queued script (no model, no agent)."""

    responder = "router (scripted)"

    def __init__(self, service: WorkspaceService, scripts: list[Script] = (), history=HISTORY) -> None:
        self.service = service
        self.scripts = deque(scripts)
        self._history = list(history)
        self.prompts: list[str] = []
        self.cancel_seen = threading.Event()
        self.gate = threading.Event()  # a script that waits on it holds its turn open
        self.gate.set()

    def history(self) -> list[tuple[str, str]]:
        return list(self._history)

    def prepare(self, emit, cancel=None) -> None:
        return None

    def run_turn(self, prompt: str, emit, cancel: threading.Event) -> None:
        self.prompts.append(prompt)
        script = self.scripts.popleft() if self.scripts else answer(["Done."])
        script(len(self.prompts), prompt, emit, cancel, self)


def answer(tokens: list[str], tool: str | None = "list_segments", summary: str = "6 segments listed", artifact=None) -> Script:
    def play(turn, prompt, emit, cancel, session):
        emit(TurnStarted(turn, prompt, session.responder))
        if tool:
            emit(ToolStarted(turn, f"call-{turn}", tool, {"limit": 10}))
            emit(ToolProgress(turn, f"call-{turn}", "reading", 1, 2))
            emit(ToolFinished(turn, f"call-{turn}", tool, True, summary, 0.25, artifact=artifact))
        for token in tokens:
            emit(Token(turn, token))
        session.gate.wait(10)
        emit(TurnDone(turn, "".join(tokens)))

    return play


def fail(error: str) -> Script:
    def play(turn, prompt, emit, cancel, session):
        emit(TurnStarted(turn, prompt, session.responder))
        emit(ToolStarted(turn, f"call-{turn}", "describe_segment", {"segment_id": 99}))
        emit(ToolFinished(turn, f"call-{turn}", "describe_segment", False, "there is no segment 99", 0.01))
        emit(TurnFailed(turn, prompt, error))

    return play


def until_cancelled(turn, prompt, emit, cancel, session):
    emit(TurnStarted(turn, prompt, session.responder))
    emit(Token(turn, "Working on it"))
    emit(ToolStarted(turn, "long", "segment_users", {}))
    if cancel.wait(10):
        session.cancel_seen.set()
        emit(TurnCancelled(turn, prompt))


def crash(turn, prompt, emit, cancel, session):
    raise RuntimeError("the session broke")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 sample users segmented with the hashing embedder (no model): built once for the module."""
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.embed.embedding import HashingEmbedder
    from tools.pipeline import RunParams, segment_dataset

    root = tmp_path_factory.mktemp("tui")
    generate_sample(root / "data", n_users=300, seed=1)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(embedder="hashing-64"), embedder=HashingEmbedder())
    return root / "ws"


@pytest.fixture
def settings():
    return load_settings(embedder="hashing-64")


@pytest.fixture
def service(workspace, settings) -> WorkspaceService:
    return WorkspaceService(workspace, settings)


def build(workspace: Path, settings, session: ScriptedSession):
    return make_app(workspace, settings, session_factory=lambda ws, st, data: session)


async def settle(pilot, rounds: int = 3) -> None:
    """Let every worker finish, including the ones their results start."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition never became true")


async def send(pilot, prompt: str) -> None:
    box = pilot.app.query_one(PromptInput)
    box.value = prompt
    box.focus()
    await pilot.press("enter")


def answers(app) -> list[AnswerMessage]:
    return list(app.query(AnswerMessage))


def top_level(service: WorkspaceService) -> list[dict]:
    """The rows the segments table shows before anything is opened."""
    return [s for s in service.segments() if s.get("parent") is None]


# ---------------------------------------------------------------- tests


@pytest.mark.asyncio
async def test_opens_with_history_segments_and_backend_in_the_status_bar(workspace, settings, service):
    app = build(workspace, settings, ScriptedSession(service))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = app.query_one(StatusBar).plain
        assert "extractive" in status and "router (scripted)" in status and "300 users" in status and "hashing-64" in status
        assert "ready" in status
        assert [m.text for m in app.query(UserMessage)] == ["what segments are there?"]
        assert "6 segments" in answers(app)[0].text
        assert app.query_one(SegmentsTable).row_count == len(top_level(service))  # sub-segments start folded
        assert not app.query_one(PromptInput).locked


@pytest.mark.asyncio
async def test_a_turn_streams_tokens_traces_the_tool_and_locks_the_input(workspace, settings, service):
    session = ScriptedSession(service, [answer(["Here are ", "the **6 segments**", " of this run."])])
    session.gate.clear()
    app = build(workspace, settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "list the segments")
        await until(pilot, lambda: "6 segments**" in answers(app)[-1].text)
        box = app.query_one(PromptInput)
        assert box.locked and app.busy  # locked while the turn runs
        # Locked is not frozen: typing is echoed, but Enter does not queue a second turn.
        await pilot.press(*"next one")
        await pilot.press("enter")
        await pilot.pause()
        assert box.value == "next one" and session.prompts == ["list the segments"]
        session.gate.set()
        await settle(pilot)
        assert not box.locked and not app.busy and box.value == "next one"
        assert session.prompts == ["list the segments"]
        assert [m.text for m in app.query(UserMessage)][-1] == "list the segments"
        last = answers(app)[-1]
        assert last.text == "Here are the **6 segments** of this run."
        assert "6 segments" in last.query_one("Markdown").source
        (call,) = app.query(ToolCallView)
        assert call.tool_name == "list_segments" and call.finished.ok
        assert "limit=10" in call.plain and "6 segments listed" in call.plain and "250 ms" in call.plain
        assert "ready" in app.query_one(StatusBar).plain


@pytest.mark.asyncio
async def test_a_failed_turn_restores_the_prompt_and_says_why(workspace, settings, service):
    app = build(workspace, settings, ScriptedSession(service, [fail("there is no segment 99")]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "describe segment 99")
        await settle(pilot)
        box = app.query_one(PromptInput)
        assert box.value == "describe segment 99" and not box.locked
        notes = [str(n.content) for n in app.query(Note)]
        assert any("there is no segment 99" in n for n in notes)
        (call,) = app.query(ToolCallView)
        assert not call.finished.ok and "✗" in call.plain
        assert "failed" in app.query_one(StatusBar).plain


@pytest.mark.asyncio
async def test_escape_cancels_the_running_turn(workspace, settings, service):
    session = ScriptedSession(service, [until_cancelled])
    app = build(workspace, settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "segment everything again")
        await until(pilot, lambda: answers(app)[-1].text == "Working on it")
        assert app.query_one(PromptInput).locked
        await pilot.press("escape")
        await settle(pilot)
        assert session.cancel_seen.is_set()
        assert "cancelled" in app.query_one(StatusBar).plain
        assert any("Cancelled" in str(n.content) for n in app.query(Note))
        box = app.query_one(PromptInput)
        assert box.value == "segment everything again" and not box.locked
        (call,) = app.query(ToolCallView)
        assert call.stopped == "cancelled" and "running" not in call.plain


@pytest.mark.asyncio
async def test_a_crashing_session_is_a_notification_not_a_crash(workspace, settings, service):
    app = build(workspace, settings, ScriptedSession(service, [crash]))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        assert any("the session broke" in n.message for n in app._notifications)
        box = app.query_one(PromptInput)
        assert box.value == "hello" and not box.locked


@pytest.mark.asyncio
async def test_the_first_screen_paints_before_the_session_exists(workspace, settings, service):
    release = threading.Event()

    def slow_factory(ws, st, data):
        release.wait(10)  # stands in for loading models
        return ScriptedSession(service)

    app = make_app(workspace, settings, session_factory=slow_factory)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "opening the workspace" in app.query_one(StatusBar).plain
        assert app.query_one(PromptInput).locked
        release.set()
        await settle(pilot)
        assert "ready" in app.query_one(StatusBar).plain and not app.query_one(PromptInput).locked


@pytest.mark.asyncio
async def test_palette_lists_the_namespaced_commands(workspace, settings, service):
    from textual.command import CommandList, CommandPalette

    app = build(workspace, settings, ScriptedSession(service))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen.query_one(CommandList).option_count > 0)
        titles = {str(option.prompt).split("\n")[0] for option in app.screen.query_one(CommandList).options}
        for title in ("segment: Re-run", "report: Write HTML report", "backend: Show current", "segments: Show map"):
            assert any(t.startswith(title) for t in titles), (title, titles)
        await pilot.press(*"show map", "enter")
        await settle(pilot)
        assert app.query_one(SidePanel).active == "map"


@pytest.mark.asyncio
async def test_selecting_a_segment_opens_its_detail(workspace, settings, service):
    app = build(workspace, settings, ScriptedSession(service))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(SegmentsTable).focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        detail = app.query_one(SegmentDetail)
        second = top_level(service)[1]
        assert detail.segment_id == second["id"] and detail.segment_name == second["name"]
        shown = app.query_one("#detail-body").content
        text = "\n".join(part.plain for part in shown.renderables)
        assert second["name"] in text and "What defines it" in text and "×" in text


@pytest.mark.asyncio
async def test_a_segmentation_tool_result_refreshes_the_table_and_a_description_fills_the_detail(workspace, settings, service):
    from tools.explain.describe import describe_segment

    reloads = []
    original = service.reload
    service.reload = lambda: (reloads.append(1), original())[1]
    desc = describe_segment(service.run, 2).as_dict()
    scripts = [answer(["Segmented."], tool="segment_users", summary="6 segments"), answer(["Segment 2…"], tool="describe_segment", artifact={"description": desc})]
    app = build(workspace, settings, ScriptedSession(service, scripts))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = len(reloads)
        await send(pilot, "segment the data")
        await settle(pilot)
        assert len(reloads) == before + 1 and app.query_one(SegmentsTable).row_count == len(top_level(service))
        await send(pilot, "describe segment 2")
        await settle(pilot)
        assert app.query_one(SegmentDetail).segment_id == 2


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


@pytest.mark.asyncio
async def test_an_audit_tool_result_fills_the_audit_tab_and_a_new_run_clears_it(workspace, settings, service):
    from textual.command import CommandList, CommandPalette

    from tools.explain.audit import audit_run
    from tui.app import AUDIT_PROMPT
    from tui.audit import AuditPanel
    from tui.messages import SegmentsLoaded

    audit = audit_run(service.run, ["age_band", "country"], recommendations=False, permutations=49).as_dict()
    session = ScriptedSession(service, [answer(["Audited."], tool="audit_segments", summary="audited", artifact={"audit": audit, "reused": False})])
    app = build(workspace, settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.query_one(AuditPanel).audit is None
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen.query_one(CommandList).option_count > 0)
        await pilot.press(*"run fairness audit", "enter")
        await settle(pilot)
        assert session.prompts == [AUDIT_PROMPT]
        side = app.query_one(SidePanel)
        assert side.active == "audit" and app.query_one(AuditPanel).audit == audit
        text = _plain(app.query_one("#audit-body").content)
        age = audit["attributes"][0]
        assert "Fairness audit" in text and f"Cramér's V {age['association']['cramers_v']:.3f}" in text
        assert all(f"{c['segment_id']} {c['name'][:10]}" in text for c in age["compositions"])
        side.post_message(SegmentsLoaded(service.segments(), {}, "hashing-64", side.colours, run_key="another-run"))
        await settle(pilot)
        assert app.query_one(AuditPanel).audit is None  # it audited a run that is no longer shown


@pytest.mark.asyncio
async def test_the_palette_exports_the_selected_segment_through_the_session(workspace, settings, service):
    """The TUI writes nothing itself: it asks the session for `/export ID csv`, which writes inside the workspace."""
    from textual.command import CommandList, CommandPalette

    session = ScriptedSession(service, [answer(["Wrote it."], tool="export_segment", summary="wrote")])
    app = build(workspace, settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(SegmentsTable).focus()
        await pilot.press("down")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen.query_one(CommandList).option_count > 0)
        await pilot.press(*"export selected", "enter")
        await settle(pilot)
        assert session.prompts == [f"/export {top_level(service)[1]['id']} csv"]


@pytest.mark.asyncio
async def test_the_map_tab_draws_every_segment(workspace, settings, service):
    app = build(workspace, settings, ScriptedSession(service))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        seg_map = app.query_one(SegmentMap)
        assert seg_map.n_points == 300
        legend = " ".join(entry.plain for entry in seg_map.legend)
        assert all(f"{s['id']} {s['name']}" in legend for s in top_level(service))  # the map colours the top level


@pytest.mark.asyncio
async def test_the_drift_tab_shows_the_runs_drift_and_a_drift_tool_result(workspace, settings, service):
    from tools.embed.embedding import HashingEmbedder
    from tools.segment.assign import load_fitted_run
    from tools.segment.drift_runs import drift_window, write_drift
    from tui.drift import PLACEHOLDER, DriftView

    fitted = load_fitted_run(workspace)
    saved = drift_window(fitted, "60d", HashingEmbedder())
    write_drift(fitted, saved)
    fresh = drift_window(fitted, "20d", HashingEmbedder()).as_dict()
    scripts = [answer(["Moves…"], tool="segment_drift", summary="drift", artifact={"drift": fresh, "movers": []})]
    app = build(workspace, settings, ScriptedSession(service, scripts))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.query_one(DriftView)
        assert view.report is None
        await pilot.press("f4")
        await settle(pilot)
        assert app.query_one(SidePanel).active == "drift"
        assert view.report == json.loads(json.dumps(saved.as_dict()))  # read back from the run's drift.json
        from rich.console import Console

        console = Console(width=110, record=True, file=open(os.devnull, "w"))
        console.print(app.query_one("#drift-body").content)
        body = console.export_text()
        assert PLACEHOLDER not in body and f"{saved.users['in_both']:,} users in both" in body and "migration" in body
        await send(pilot, "who moved between segments in the last 20 days?")
        await settle(pilot)
        assert view.report == fresh


@pytest.mark.asyncio
async def test_a_notice_is_shown_in_the_conversation(workspace, settings, service):
    def with_notice(turn, prompt, emit, cancel, session):
        emit(TurnStarted(turn, prompt, session.responder))
        emit(Notice(turn, "the LLM timed out: answered extractively"))
        emit(TurnDone(turn, "An extractive answer."))

    app = build(workspace, settings, ScriptedSession(service, [with_notice]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "hi")
        await settle(pilot)
        assert any("timed out" in str(n.content) for n in app.query(Note))
        assert answers(app)[-1].text == "An extractive answer."


@pytest.mark.asyncio
async def test_switching_the_backend_rebuilds_the_session_with_it(workspace, service):
    asked: list[str] = []

    def factory(ws, st, data):
        asked.append(st.llm)
        return ScriptedSession(service)

    app = make_app(workspace, load_settings(llm="openai:gpt-4o-mini", embedder="hashing-64"), session_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.backend_choices() == ["extractive"]
        app.switch_backend("extractive")
        await settle(pilot)
        assert asked == ["openai:gpt-4o-mini", "extractive"] and app.settings.llm == "extractive"
        assert app.backend_choices() == ["openai:gpt-4o-mini"] and not app.busy
        assert len(app.query(UserMessage)) == 1  # the conversation stays as it was


def test_lift_bars_point_the_right_way():
    assert lift_bar(1.0).plain.strip("·") == "│"
    assert lift_bar(4.0).plain.index("█") > lift_bar(4.0).plain.index("│")
    assert lift_bar(0.25).plain.index("█") < lift_bar(0.25).plain.index("│")
    assert len(lift_bar(100.0).plain) == len(lift_bar(0.001).plain) == len(lift_bar(None).plain)


def test_importing_the_tui_loads_no_heavy_library():
    heavy = ("pandas", "torch", "sklearn", "sentence_transformers", "chromadb", "langchain_core", "assistant.session")
    code = f"import sys, tui.app; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_the_session_and_cli_load_no_tui_at_import():
    """The import contracts in pyproject.toml (lint-imports) forbid it statically; this checks what actually loads."""
    code = "import sys, assistant.session, assistant.cli; print([m for m in sys.modules if m == 'tui' or m.startswith(('tui.', 'textual'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- snapshots (fixed size, no cursor blink, no timings)
# They render canned segments, not the sample workspace, so a change in tools/ (sample data, labels)
# never moves a pixel here: these pin the TUI's own rendering.

CANNED_TRAITS = [
    {"feature": "category_Books", "label": "share of activity in Books", "unit": "share", "segment_value": 0.62, "population_value": 0.12, "lift": 5.17, "effect": 1.4},
    {"feature": "share_review", "label": "share of events that are reviews", "unit": "share", "segment_value": 0.18, "population_value": 0.06, "lift": 3.0, "effect": 0.9},
    {"feature": "recency_days", "label": "days since last activity", "unit": "days", "segment_value": 12.0, "population_value": 41.0, "lift": 0.29, "effect": -0.8},
]
CANNED_SEGMENTS = [
    {"id": 0, "name": "Weekend Gardeners", "description": "", "size": 140, "share": 0.4667, "keywords": ["garden", "seeds"], "traits": CANNED_TRAITS[:1], "representative_user_ids": ["u1"]},
    {"id": 1, "name": "Book Reviewers", "description": "", "size": 100, "share": 0.3333, "keywords": ["novel", "author"], "traits": CANNED_TRAITS, "representative_user_ids": ["u2"]},
    {"id": 2, "name": "Lapsed Toy Buyers", "description": "", "size": 60, "share": 0.2, "keywords": ["lego"], "traits": CANNED_TRAITS[2:], "representative_user_ids": ["u3"]},
]
CANNED_DESCRIPTION = {
    "segment_id": 1, "name": "Book Reviewers", "description": "", "size": 100, "share": 0.3333, "traits": CANNED_TRAITS,
    "keywords": ["novel", "author", "chapter"], "representative_user_ids": ["u00012", "u00087"], "representative_texts": ["A gripping novel."],
    "contrastive_user_ids": ["u00200"], "typical_items": [{"item_id": "b7", "title": "The Long Winter", "count": 31, "lift": 4.2}],
    "narrative": 'Segment 1 ("Book Reviewers") has 100 users (33.3% of all). Compared with everyone, they favour Books.', "note": None,
    "examples": [{"user_id": "u00012", "item_id": "b9", "title": "Night Trains", "explanation": "Bought 4 novels by this author.", "verified": True}],
}


class CannedService:
    """What the side panel reads from a WorkspaceService, with fixed numbers."""

    class backend:
        class info:
            @staticmethod
            def label() -> str:
                return "extractive (built in)"

    def __init__(self, settings) -> None:
        self.settings = settings
        self.run = type("Run", (), {"summary": {
            "segments": CANNED_SEGMENTS, "data": {"source": "/data/shop", "n_users": 300}, "parameters": {"embedder": "hashing-64", "seed": 0},
        }})()

    def has_run(self) -> bool:
        return True

    def summary(self) -> dict:
        return self.run.summary

    def reload(self) -> None:
        pass


def canned(settings, scripts=()):
    return build(Path("unused"), settings, ScriptedSession(CannedService(settings), list(scripts)))


async def _steady(pilot) -> None:
    await settle(pilot)
    for screen in pilot.app.screen_stack:  # the palette is a screen of its own
        for box in screen.query("Input"):
            box.cursor_blink = False


def test_snapshot_after_a_turn_with_the_trace(snap_compare, settings):
    app = canned(settings, [answer(["There are **3 segments**:\n\n", "- 0 Weekend Gardeners\n"])])

    async def run_before(pilot):
        await _steady(pilot)
        await send(pilot, "what segments are there?")
        await _steady(pilot)
        app.show_tab("trace")
        await _steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_segment_detail_from_a_tool_artifact(snap_compare, settings):
    app = canned(settings, [answer(["Segment 1 is **Book Reviewers**."], tool="describe_segment", artifact={"description": CANNED_DESCRIPTION})])

    async def run_before(pilot):
        await _steady(pilot)
        await send(pilot, "describe segment 1")
        await _steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_command_palette(snap_compare, settings):
    app = canned(settings)

    async def run_before(pilot):
        await _steady(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await _steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.fixture(scope="module")
def tiered_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three taste groups, each split into steady and fading buyers: a run with sub-segments."""
    from helpers import tiered_dataset

    from tools.embed.embedding import HashingEmbedder
    from tools.pipeline import RunParams, segment_dataset

    root = tmp_path_factory.mktemp("tui-tree")
    data, _ = tiered_dataset()
    segment_dataset(data, root / "ws", RunParams(embedder="hashing-64"), embedder=HashingEmbedder())
    return root / "ws"


@pytest.mark.asyncio
async def test_the_segments_table_opens_and_folds_sub_segments(tiered_workspace, settings):
    service = WorkspaceService(tiered_workspace, settings)
    segments = service.segments()
    tops = [s for s in segments if s["parent"] is None]
    first = next(s for s in tops if s["children"])
    app = build(tiered_workspace, settings, ScriptedSession(service))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.query_one(SegmentsTable)
        assert table.row_count == len(tops)  # folded: the top level only
        assert str(table.get_row_at(0)[-1]).startswith("▸ ")
        table.focus()
        table.move_cursor(row=table.get_row_index(str(first["id"])))
        await pilot.press("right")
        assert table.row_count == len(tops) + len(first["children"])
        assert [str(table.get_row_at(table.get_row_index(str(c)))[-1])[:2] for c in first["children"]] == ["├ "] * (len(first["children"]) - 1) + ["└ "]
        await pilot.press("down", "enter")  # a sub-segment is selected and described like any segment
        await settle(pilot)
        detail = app.query_one(SegmentDetail)
        assert detail.segment_id == first["children"][0]
        text = "\n".join(part.plain for part in app.query_one("#detail-body").content.renderables if hasattr(part, "plain"))
        assert f"Sub-segment of {first['id']}" in text and "What sets it apart within its parent" in text
        await pilot.press("left")  # folding from a sub-segment folds its parent, the cursor back on the parent
        assert table.row_count == len(tops) and table.selected_segment() == first["id"]
        await pilot.press("space")
        assert table.row_count == len(tops) + len(first["children"])
        table.select_segment(first["children"][-1])
        await pilot.press("space")
        assert table.row_count == len(tops)
        table.select_segment(first["children"][-1])  # selecting a folded sub-segment opens its parent
        assert table.row_count == len(tops) + len(first["children"]) and table.selected_segment() == first["children"][-1]


def test_snapshot_audit_panel_from_a_tool_artifact(snap_compare, settings):
    from helpers import canned_audit

    app = canned(settings, [answer(["One segment is a proxy for gender."], tool="audit_segments", artifact={"audit": canned_audit(), "reused": False})])

    async def run_before(pilot):
        await _steady(pilot)
        await send(pilot, "is any segment a proxy for gender?")
        await _steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
