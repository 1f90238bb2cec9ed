"""The conversation log of a workspace, in ``.segscope/history.sqlite``: messages by conversation, and each conversation's focus.

A conversation is what `segscope ask --continue` continues (as `llm -c` does) and what
`--conversation ID` names; the TUI opens the latest one. Its focus (assistant/followup.py)
is the entities of its last turns, so a follow-up in the next process still knows what
"it" and "that user" are. Logs written before conversations existed become one
conversation, ``legacy``.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

from tools.core.errors import WorkspaceError

LEGACY = "legacy"


def new_conversation_id() -> str:
    """Sortable by time, unique without coordination: 20250101-120000-3fa9c2."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class History:
    """Messages of one conversation (``conversation``), in the workspace's log."""

    def __init__(self, path: Path, conversation: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL)")
            columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            if "conversation" not in columns:
                db.execute("ALTER TABLE messages ADD COLUMN conversation TEXT")
                db.execute("UPDATE messages SET conversation = ? WHERE conversation IS NULL", (LEGACY,))
            db.execute("CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation, id)")
            db.execute("CREATE TABLE IF NOT EXISTS focus (conversation TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL)")
        self.conversation = conversation or self.latest() or new_conversation_id()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5)

    # -- conversations ------------------------------------------------------------------
    def latest(self) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT conversation FROM messages WHERE conversation IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def conversations(self, limit: int = 20) -> list[tuple[str, int, str]]:
        """(id, messages, first prompt) of the most recent conversations, newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT conversation, COUNT(*), MIN(id), MAX(id) FROM messages GROUP BY conversation ORDER BY MAX(id) DESC LIMIT ?", (limit,)
            ).fetchall()
            out = []
            for conv, count, first_id, _ in rows:
                first = db.execute("SELECT content FROM messages WHERE id = ?", (first_id,)).fetchone()
                out.append((conv, int(count), (first[0] if first else "")[:60]))
        return out

    def require(self, conversation: str) -> str:
        """``conversation`` when the log has it; a WorkspaceError naming the recent ones when not."""
        with self._connect() as db:
            found = db.execute("SELECT 1 FROM messages WHERE conversation = ? LIMIT 1", (conversation,)).fetchone()
        if found:
            return conversation
        recent = ", ".join(c for c, _, _ in self.conversations(3)) or "none yet"
        raise WorkspaceError(f"there is no conversation {conversation!r} in this workspace", f"recent conversations: {recent}")

    # -- messages and focus -------------------------------------------------------------------
    def add(self, role: str, content: str) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO messages (role, content, created, conversation) VALUES (?, ?, ?, ?)", (role, content, time.time(), self.conversation))

    def messages(self, limit: int = 200) -> list[tuple[str, str]]:
        with self._connect() as db:
            rows = db.execute("SELECT role, content FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?", (self.conversation, limit)).fetchall()
        return list(reversed(rows))

    def load_focus(self) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT state FROM focus WHERE conversation = ?", (self.conversation,)).fetchone()
        return row[0] if row else None

    def save_focus(self, state: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO focus (conversation, state, updated) VALUES (?, ?, ?)", (self.conversation, state, time.time()))
