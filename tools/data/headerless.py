"""Name the columns of a file without a header line by what they hold.

Each column is judged on up to 5,000 filled cells:
- dates: YYYYMMDD whole numbers, or date strings -> timestamp (epoch numbers when no date column);
- ids: whole numbers that are not small counts (or codes with leading zeros / letters),
  in file order -> user_id, then item_id;
- decimals -> amount (money), unless they look like half-star ratings with an item column;
- small whole numbers (median ≤ 10, max ≤ 1,000) -> quantity, or the rating (value) when
  there is an item column, no money column and they stay within 0..10;
- long mostly distinct text -> text; short words naming event types -> event_type.
The caller says how each column was read in one warning line; ``--map ROLE=columnN`` overrides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.data.cells import EVENT_SYNONYMS
from tools.data.columns import normalise_name

SAMPLE = 5000


@dataclass(frozen=True)
class _Profile:
    column: str
    kind: str  # "yyyymmdd" | "date" | "epoch" | "decimal" | "count" | "id" | "text" | "event" | "empty"
    low: float = np.nan
    high: float = np.nan


def _profile(column: str, values: pd.Series) -> _Profile:
    cells = values.dropna().astype(str).str.strip()
    cells = cells[cells != ""].iloc[:SAMPLE]
    if cells.empty:
        return _Profile(column, "empty")
    numbers = pd.to_numeric(cells, errors="coerce")
    if numbers.notna().mean() >= 0.98:
        x = numbers.dropna().to_numpy(dtype=np.float64)
        whole = bool(np.all(x == np.round(x)))
        low, high, median = float(x.min()), float(x.max()), float(np.median(x))
        if whole and low >= 19000101 and high <= 21001231:
            dates = pd.to_datetime(cells.str.split(".").str[0], format="%Y%m%d", errors="coerce")
            if dates.notna().mean() >= 0.98:
                return _Profile(column, "yyyymmdd", low, high)
        if whole and low >= 1e8 and high < 1e14:
            return _Profile(column, "epoch", low, high)
        if not whole:
            return _Profile(column, "decimal", low, high)
        leading_zero = bool(cells.str.fullmatch(r"0\d+").any())
        if not leading_zero and low >= -1000 and median <= 10 and high <= 1000:
            return _Profile(column, "count", low, high)
        return _Profile(column, "id", low, high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(cells, errors="coerce", format="mixed")
    if dates.notna().mean() >= 0.98:
        return _Profile(column, "date")
    words = cells.map(normalise_name)
    if words.isin(set(EVENT_SYNONYMS) | {"rating", "review"}).mean() >= 0.9:
        return _Profile(column, "event")
    if cells.str.len().mean() > 20 and cells.nunique() > 0.5 * len(cells):
        return _Profile(column, "text")
    return _Profile(column, "id")


_WHY = {
    "yyyymmdd": "YYYYMMDD dates", "date": "dates", "epoch": "epoch numbers", "decimal": "decimal numbers",
    "count": "small whole numbers", "id": "ids", "text": "free text", "event": "event names",
}  # fmt: skip


def guess_roles(frame: pd.DataFrame, taken: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """Role -> column for a header-less table, and how they were read ("column1 user_id (ids), ...").

    ``taken`` (role -> column, from --map) is kept as given; those roles and columns are not guessed.
    """
    taken = dict(taken or {})
    free = [str(c) for c in frame.columns if str(c) not in taken.values()]
    profiles = [_profile(c, frame[c]) for c in free]
    roles: dict[str, str] = {}
    why: dict[str, str] = {}

    def assign(role: str, profile: _Profile) -> None:
        if role not in taken and role not in roles and profile.column not in roles.values():
            roles[role] = profile.column
            seen = "ratings: " + _WHY[profile.kind] + " within 0..10" if role == "value" else _WHY[profile.kind]
            why[profile.column] = f"{profile.column} {role} ({seen})"

    def kind(*kinds: str) -> list[_Profile]:
        return [p for p in profiles if p.kind in kinds and p.column not in roles.values()]

    for p in kind("yyyymmdd", "date")[:1] or kind("epoch")[:1]:
        assign("timestamp", p)
    for role, p in zip(("user_id", "item_id"), kind("id")):
        assign(role, p)
    has_item = "item_id" in roles or "item_id" in taken
    for p in kind("event")[:1]:
        assign("event_type", p)
    for p in kind("text")[:1]:
        assign("text", p)
    for p in kind("decimal"):
        x = pd.to_numeric(frame[p.column], errors="coerce").dropna().to_numpy(dtype=np.float64)
        halves = p.low >= 0 and p.high <= 10 and bool(np.all((x * 2) % 1 == 0))
        assign("value" if halves and has_item and "amount" not in roles else "amount", p)
    for p in kind("count"):
        rating = has_item and "amount" not in roles and "amount" not in taken and p.low >= 0 and p.high <= 10
        assign("value" if rating else "quantity", p)
    roles.update(taken)
    read = [why[c] for c in map(str, frame.columns) if c in why]
    return roles, ", ".join(read)
