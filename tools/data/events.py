"""Normalise one events-like table: behaviour (who did what, when, for how much) or text-only rows.

The entity and skipped rows come from ``tools.data.entities``; spend, orders and
returns of transaction logs from ``tools.data.transactions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tools.core.dataset import ITEM_COLUMNS, DatasetKind
from tools.core.errors import DataError
from tools.data.cells import (
    as_event_types,
    as_ids,
    as_money,
    as_numbers,
    as_seconds,
    as_texts,
)
from tools.data.columns import (
    ALIASES,
    ITEM_ATTRIBUTES,
    Columns,
    looked_for,
    normalise_name,
)
from tools.data.entities import Skips, choose_entity, user_attributes
from tools.data.readers import RawTable
from tools.data.transactions import is_transaction_log, transaction_lines

PURCHASE = "purchase"


@dataclass(frozen=True)
class LoadOptions:
    """How to read rows: which entity to segment (auto/user/session); refuse rows without its id (strict)."""

    entity: str = "auto"
    strict: bool = False


@dataclass
class Parts:
    events: pd.DataFrame
    kind: DatasetKind
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    entity: str = "user"
    currency: str | None = None
    spend: str | None = None
    entity_reason: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # role -> the input column it was read from


def column(table: RawTable, columns: Columns, role: str, convert: Callable[..., Any], *args: Any) -> Any:
    """The input column playing ``role`` through ``convert``, or None when the table has none."""
    name = columns.get(role)
    return None if name is None else convert(table.frame[name], table, name, *args)


def events_parts(table: RawTable, columns: Columns, default_type: str, options: LoadOptions) -> Parts:
    """Decide what an events-like table is (behaviour or text-only) and normalise it."""
    has_item, has_text = "item_id" in columns, "text" in columns
    transactions = is_transaction_log(columns)
    if has_item or transactions or not has_text:
        choice = choose_entity(table, columns, options.entity)
        if choice is not None and (has_item or transactions):
            return behaviour_parts(table, columns, PURCHASE if transactions else default_type, options)
    if not has_item and has_text:
        return text_only_parts(table, columns, options)
    available = ", ".join(map(str, table.frame.columns[:20]))
    if "user_id" not in columns and "session_id" not in columns:
        raise DataError(
            f"{table.label}: no user column (looked for {looked_for('user_id', 5)}); its columns: {available}",
            "pass --map user_id=YOURCOLUMN (or give a text column for text-only data)",
        )
    if "user_id" not in columns:
        raise DataError(
            f"{table.label}: --entity user, but there is no user column (looked for {looked_for('user_id', 5)})",
            "pass --map user_id=YOURCOLUMN, or --entity session",
        )
    raise DataError(
        f"{table.label}: no item column (looked for {looked_for('item_id', 5)}); its columns: {available}",
        "pass --map item_id=YOURCOLUMN (or give a text column for text-only data)",
    )


def behaviour_parts(table: RawTable, columns: Columns, default_type: str, options: LoadOptions = LoadOptions()) -> Parts:
    choice = choose_entity(table, columns, options.entity)
    assert choice is not None  # events_parts checked
    frame, used, warnings = table.frame, columns.used, [choice.notice] if choice.notice else []
    skips = Skips.start(table, options.strict)
    role = f"{choice.entity}_id"
    skips.drop(choice.ids.isna().to_numpy(), role, choice.column,
               f"fill them in, or pass --map {role}=OTHERCOLUMN" + ("" if choice.entity == "session" else " (or --entity session)"))  # fmt: skip
    transactions = is_transaction_log(columns)
    items = None if "item_id" not in used else as_ids(frame[used["item_id"]], table, used["item_id"])
    if items is not None and not transactions:  # a transaction line needs no item: its spend still counts
        skips.drop(items.isna().to_numpy(), "item_id", used["item_id"], "fill them in, or pass --map item_id=OTHERCOLUMN")
    ids = choice.ids
    if not skips.keep.all():
        frame, ids = frame[skips.keep], ids[skips.keep]
        items = None if items is None else items[skips.keep]
    warnings += [w for w in (skips.warning(),) if w]
    table = RawTable(frame, table.label, table.unit)
    index = frame.index
    if items is None:
        items = pd.Series(np.nan, index=index, dtype="str")
    event_type = column(table, columns, "event_type", as_event_types, default_type)
    if event_type is None:
        event_type = pd.Series(default_type, index=index, dtype="str")
    value = column(table, columns, "value", as_numbers, "value")
    value = np.full(len(frame), np.nan) if value is None else value
    order_id = column(table, columns, "order_id", as_ids)
    order_id = pd.Series(np.nan, index=index, dtype="str") if order_id is None else order_id
    quantity, currency, spend = np.full(len(frame), np.nan), None, None
    if transactions:
        lines = transaction_lines(table, columns, event_type, value, order_id)
        event_type, value, quantity, currency, spend = lines.event_type, lines.value, lines.quantity, lines.currency, lines.spend
        if lines.n_returns:
            warnings.append(f"{table.label}: {lines.n_returns} lines are returns or cancellations: netted out of spend, never counted as purchases")
    elif "value" in used and bool(np.isfinite(value[event_type.eq(PURCHASE).to_numpy()]).any()):
        spend = f"value column {used['value']} on purchase rows"
    timestamp = column(table, columns, "timestamp", as_seconds)
    text = column(table, columns, "text", as_texts)
    events = pd.DataFrame(
        {
            "user_id": ids,
            "item_id": items,
            "event_type": event_type,
            "timestamp": np.full(len(frame), np.nan) if timestamp is None else timestamp,
            "value": value,
            "text": pd.Series(np.nan, index=index, dtype="str") if text is None else text,
            "order_id": order_id,
            "quantity": quantity,
        },
        index=index,
    )
    items_table = None
    if any(r in used for r in ITEM_ATTRIBUTES) and items.notna().any():
        # Item attributes on each event row (Online Retail): the catalogue is their first occurrence.
        first = (~items.duplicated() & items.notna()).to_numpy()
        items_table = items_table_of(RawTable(frame[first], table.label, table.unit), columns, items[first])
    candidates = list(columns.ignored)
    names = {}
    if choice.entity == "session" and "user_id" in used:
        candidates.append(used["user_id"])  # a session log's user id describes the session
        names[used["user_id"]] = "user"
    users, attributes = user_attributes(table, ids, candidates, names)
    if attributes:
        warnings.append(f"{table.label}: kept as {choice.entity} attributes (one value per {choice.entity}; not used for clustering): {', '.join(attributes)}")
    ignored = [c for c in columns.ignored if c not in attributes]
    if choice.entity == "user" and "session_id" in used:
        ignored.append(used["session_id"])  # sessions were not asked for: say the column went unused
    if ignored:
        warnings.append(f"{table.label}: ignored columns: {', '.join(map(str, ignored))}")
    return Parts(
        events, "behaviour", items_table, users, warnings, dict(skips.counts), choice.entity, currency, spend, choice.reason
    )


def text_only_parts(table: RawTable, columns: Columns, options: LoadOptions = LoadOptions()) -> Parts:
    """Rows described only by their text; every other column (labels!) is ignored, never used."""
    frame, used, warnings = table.frame, columns.used, []
    texts = as_texts(frame[used["text"]], table, used["text"])
    id_column = used.get("user_id")
    if id_column is None:
        id_column = next((c for a in ALIASES["id"] for c in columns.ignored if normalise_name(c) == a), None)
    skips = Skips.start(table, options.strict)
    if id_column is not None:
        ids = as_ids(frame[id_column], table, id_column)
        skips.drop(ids.isna().to_numpy(), "id", id_column, "fill them in, or pass --map user_id=OTHERCOLUMN")
    else:
        ids = pd.Series(np.arange(len(frame)).astype(str), index=frame.index, dtype="str")
    empty = texts.isna().to_numpy()
    if not (skips.keep & ~empty).any():
        raise DataError(f"{table.label}: column {used['text']} has no text", "pass --map text=YOURCOLUMN")
    skips.drop(empty, "text", used["text"], "pass --map text=YOURCOLUMN")
    keep = skips.keep
    warnings += [w for w in (skips.warning(),) if w]
    ignored = [str(c) for c in frame.columns if c not in (used["text"], id_column)]
    if ignored:
        warnings.append(f"{table.label}: ignored columns: {', '.join(ignored)}")
    n, index = int(keep.sum()), ids.index[keep]
    events = pd.DataFrame(
        {
            "user_id": ids[keep],
            "item_id": pd.Series([None] * n, index=index, dtype=object),
            "event_type": pd.Series("text", index=index, dtype="str"),
            "timestamp": np.full(n, np.nan),
            "value": np.full(n, np.nan),
            "text": texts[keep],
            "order_id": pd.Series(np.nan, index=index, dtype="str"),
            "quantity": np.full(n, np.nan),
        }
    )
    return Parts(events, "text", None, None, warnings, dict(skips.counts))


def items_table_of(table: RawTable, columns: Columns, ids: pd.Series | None = None) -> pd.DataFrame:
    index = table.frame.index
    out = pd.DataFrame({"item_id": column(table, columns, "item_id", as_ids) if ids is None else ids}, index=index)
    for role in ("title", "category", "description"):
        text = column(table, columns, role, as_texts, role == "category")  # category lists join as "A|B"
        out[role] = pd.Series(np.nan, index=index, dtype="str") if text is None else text
    price = column(table, columns, "price", as_money, "price")
    out["price"] = np.nan if price is None else price[0]
    return out[list(ITEM_COLUMNS)]
