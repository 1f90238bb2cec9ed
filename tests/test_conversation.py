"""The conversation log: conversations, their saved focus, and logs written before conversations existed."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.conversation import LEGACY, History
from assistant.followup import Focus
from tools.core.errors import WorkspaceError


def test_a_log_from_before_conversations_becomes_one_conversation(tmp_path):
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL)")
        db.executemany("INSERT INTO messages (role, content, created) VALUES (?, ?, ?)", [("user", "hi", 1.0), ("assistant", "hello", 2.0)])
    log = History(path)
    assert log.conversation == LEGACY and log.messages() == [("user", "hi"), ("assistant", "hello")]


def test_conversations_are_kept_apart_and_the_latest_is_continued(tmp_path):
    path = tmp_path / "history.sqlite"
    first = History(path, "c-one")
    first.add("user", "describe segment 2")
    second = History(path, "c-two")
    second.add("user", "list the segments")
    assert first.messages() == [("user", "describe segment 2")] and second.messages() == [("user", "list the segments")]
    assert History(path).conversation == "c-two"  # no id: the latest
    assert [c for c, _, _ in History(path).conversations()] == ["c-two", "c-one"]
    with pytest.raises(WorkspaceError, match="c-two"):
        History(path).require("c-three")


def test_the_focus_survives_the_process_and_a_damaged_one_is_a_fresh_start(tmp_path):
    path = tmp_path / "history.sqlite"
    focus = Focus().after("describe_segment", {"segment_id": 3}).after("rank_users", {"by": "monetary"}, {"users": [{"user_id": "u7"}, {"user_id": "u9"}]})
    log = History(path, "c")
    log.add("user", "x")
    log.save_focus(focus.to_json())
    again = Focus.from_json(History(path, "c").load_focus())
    assert again == focus and again.segments == (3,) and again.results == ("u7", "u9") and again.tool == "rank_users"
    assert Focus.from_json("{not json") == Focus() and Focus.from_json(None) == Focus()
