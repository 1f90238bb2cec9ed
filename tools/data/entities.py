"""Who a row belongs to: the entity (user or session), rows without its id, and per-user attributes.

- Entity: ``--entity user|session|auto``. Auto picks sessions when a session column
  exists and the user id is missing on more than half of the rows (or there is no
  user column), and says so.
- Rows without the entity id are skipped and counted (one warning line, and
  ``Dataset.skipped``); ``strict`` refuses them instead; a file where every row lacks
  it is refused.
- Columns that hold one value per user (country, plan, gender, age band) are user
  attributes: kept in the users table, not clustering inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.core.errors import DataError
from tools.data.cells import as_ids, as_texts, is_present
from tools.data.columns import Columns, looked_for
from tools.data.readers import RawTable

ENTITIES = ("auto", "user", "session")
SESSION_WHEN_USER_MISSING = 0.5  # auto: sessions when more than this share of rows lack a user id
ATTRIBUTE_AGREEMENT = 0.99  # share of repeat users whose rows agree for a column to be an attribute


@dataclass(frozen=True)
class EntityChoice:
    """The column whose ids are the entities, and why it was chosen."""

    entity: str  # "user" | "session"
    column: str
    ids: pd.Series  # str or NA, aligned with the table's rows
    notice: str | None  # the warning line said when auto chose sessions
    reason: str | None = None  # why auto chose sessions ("the user id (user_id) is missing on 62% of rows")


def check_entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise DataError(f"--entity {entity!r} is not one of {', '.join(ENTITIES)}", "use --entity auto, user or session")
    return entity


def choose_entity(table: RawTable, columns: Columns, requested: str) -> EntityChoice | None:
    """The entity column for ``requested`` (auto/user/session); None when the table has neither column."""
    check_entity(requested)
    user_col, session_col = columns.get("user_id"), columns.get("session_id")
    if requested == "session" and session_col is None:
        raise DataError(
            f"{table.label}: --entity session, but there is no session column (looked for {looked_for('session_id')})",
            "pass --map session_id=YOURCOLUMN, or --entity user",
        )
    if requested == "user" and user_col is None:
        return None
    users = None if user_col is None else as_ids(table.frame[user_col], table, user_col)
    if requested == "user" or (requested == "auto" and session_col is None):
        return None if users is None else EntityChoice("user", str(user_col), users, None)
    sessions = as_ids(table.frame[str(session_col)], table, str(session_col))
    if requested == "session":
        return EntityChoice("session", str(session_col), sessions, None)
    missing = 1.0 if users is None else float(users.isna().mean())
    if users is not None and missing <= SESSION_WHEN_USER_MISSING:
        return EntityChoice("user", str(user_col), users, None)
    why = "there is no user column" if users is None else f"the user id ({user_col}) is missing on {missing:.0%} of rows"
    notice = (
        f"{table.label}: segmenting sessions (column {session_col}), because {why}; "
        "pass --entity user to segment users instead"
    )
    return EntityChoice("session", str(session_col), sessions, notice, why)


@dataclass
class Skips:
    """Rows to leave out of one table, by reason, and where the first of each is."""

    table: RawTable
    strict: bool
    keep: np.ndarray
    counts: dict[str, int]
    first: dict[str, str]

    @classmethod
    def start(cls, table: RawTable, strict: bool) -> Skips:
        return cls(table, strict, np.ones(len(table.frame), dtype=bool), {}, {})

    def drop(self, missing: np.ndarray, field: str, column: str, hint: str) -> None:
        """Leave out the rows where ``missing`` holds (they lack ``field``, e.g. "user_id"); refused under strict."""
        missing = missing & self.keep  # a row is skipped for its first reason only
        count = int(missing.sum())
        if count == 0:
            return
        n, reason, what = int(self.keep.sum()), f"missing {field}", field.replace("_", " ")
        where = self.table.at(self.table.frame.index[np.flatnonzero(missing)[0]])
        if count == n:
            raise DataError(f"{self.table.label}: none of the {n} rows has a {what} (column {column})", hint)
        if self.strict:
            raise DataError(
                f"{self.table.label}: {count} of {len(missing)} rows have no {what} (first at {where}, column {column})",
                "fill them in or remove those rows, or run without --strict to skip and count them",
            )
        self.keep &= ~missing
        self.counts[reason] = self.counts.get(reason, 0) + count
        self.first.setdefault(reason, f"column {column}, first at {where}")

    def warning(self) -> str | None:
        """One line naming every reason rows were skipped, or None."""
        if not self.counts:
            return None
        total = int((~self.keep).sum())
        parts = [f"{count} {reason} ({self.first[reason]})" for reason, count in self.counts.items()]
        return (
            f"{self.table.label}: skipped {total} of {len(self.keep)} rows: {'; '.join(parts)}"
            "; --strict refuses them instead"
        )


def merge_skipped(into: dict[str, int], more: Mapping[str, int]) -> None:
    for reason, count in more.items():
        into[reason] = into.get(reason, 0) + count


def user_attributes(
    table: RawTable, ids: pd.Series, candidates: Sequence[str], names: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame | None, list[str]]:
    """Columns among ``candidates`` that hold one value per user, as a users table (user_id + columns).

    A column qualifies when at least ``ATTRIBUTE_AGREEMENT`` of the users with two or more
    filled rows have a single value in it (a user's first filled value is kept), and at
    least one user has two filled rows (one row per user proves nothing). ``names``
    renames columns in the users table (a session log's user id becomes "user").
    Returns (table or None, the columns used).
    """
    present = ids.notna().to_numpy()
    if not candidates or not present.any():
        return None, []
    codes, uniques = pd.factorize(ids[present])
    out = pd.DataFrame({"user_id": pd.Series(uniques, dtype="str")})
    used: list[str] = []
    for column in candidates:
        try:
            values = as_texts(table.frame[column][present], table, column)
        except DataError:  # lists or structs: not an attribute, stays an ignored column
            continue
        filled = is_present(values)
        if not filled.any():
            continue
        frame = pd.DataFrame({"u": codes[filled], "v": values[filled].to_numpy()})
        per_user = frame.groupby("u")["v"].agg(["size", "nunique"])
        repeat = per_user[per_user["size"] >= 2]
        if repeat.empty or float((repeat["nunique"] <= 1).mean()) < ATTRIBUTE_AGREEMENT:
            continue
        first = frame.drop_duplicates("u").set_index("u")["v"]
        out[(names or {}).get(column, column)] = first.reindex(range(len(uniques))).astype("str").to_numpy()
        used.append(column)
    return (out if used else None), used
