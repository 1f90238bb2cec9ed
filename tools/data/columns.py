"""Which input column plays which canonical role.

Input files spell their columns many ways (``reviewerID``, ``CustomerID``,
``userId``...). Aliases are matched case-insensitively, ignoring spaces,
underscores and dashes; earlier aliases win over later ones (``reviewText``
before ``summary``). An explicit mapping (canonical -> input column) wins over
every alias.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tools.core.dataset import EVENT_COLUMNS, ITEM_COLUMNS
from tools.core.errors import DataError

ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": (
        "user_id", "userId", "user", "reviewerID", "CustomerID", "customer_id", "customer", "client_id", "visitorid",
        "uid", "household_id", "household_key", "member_id", "shopper_id", "account_id",
    ),
    "item_id": ("item_id", "itemId", "item", "movieId", "asin", "StockCode", "product_id", "productId", "sku"),
    "session_id": ("session_id", "sessionId", "session", "visit_id", "visitId", "session_key"),
    "order_id": (
        "order_id", "orderId", "InvoiceNo", "invoice", "invoice_id", "invoice_number", "basket_id", "basketId",
        "transaction_id", "ordernumber", "order_number", "order_no", "receipt_id", "receipt", "cart_id", "order",
    ),
    "event_type": ("event_type", "event", "action", "interaction", "type"),
    "timestamp": (
        "timestamp", "unixReviewTime", "event_time", "ts", "datetime", "time", "date", "InvoiceDate", "eventdate",
        "transaction_timestamp", "transaction_date", "order_date", "purchase_date", "created_at",
    ),
    # units on a transaction line; spend = quantity x unit price unless an amount column says the total
    "quantity": ("quantity", "qty", "units", "number_of_cds", "num_units", "number_of_items", "item_count", "units_sold"),
    # the line total in money: takes precedence over quantity x unit price
    "amount": (
        "amount", "revenue", "sales_value", "dollar_value", "sales", "sale_amount", "line_total", "total_price",
        "spend", "price_paid", "net_sales", "order_value", "dollars",
    ),
    "value": ("rating", "overall", "score", "stars", "value"),
    "text": ("reviewText", "review_text", "review", "text", "comment", "message", "body", "tag", "summary"),
    "title": ("title", "name", "product_name"),
    "category": ("category", "categories", "genres", "genre", "department"),
    "description": ("description", "desc", "about", "overview"),
    "price": ("price", "unit_price", "UnitPrice", "item_price", "price_each"),
    # the row id of a text-only table (one row = one entity)
    "id": ("id", "row_id", "message_id"),
}  # fmt: skip

ITEM_ATTRIBUTES = ("title", "category", "description", "price")
# Roles looked for in each kind of table, in resolution order: ids first so
# that e.g. a StockCode item id can turn ``Description`` into a title.
EVENT_ROLES = (
    "user_id", "item_id", "session_id", "order_id", "event_type", "timestamp", "quantity", "amount", "value", "text",
    *ITEM_ATTRIBUTES,
)  # fmt: skip
ITEM_ROLES = ITEM_COLUMNS
USER_ROLES = ("user_id",)
MAPPABLE = tuple(dict.fromkeys((*EVENT_COLUMNS, "session_id", "amount", *ITEM_COLUMNS)))


def normalise_name(name: object) -> str:
    """``Customer ID`` / ``customer_id`` / ``customer-id`` -> ``customerid``."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def looked_for(role: str, limit: int = 4) -> str:
    """A short list of the aliases for messages: 'userId, user_id, reviewerID, ...'."""
    names = ALIASES[role]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


@dataclass(frozen=True)
class Columns:
    """The chosen input column for each role found, plus the columns left unused."""

    used: dict[str, str]
    ignored: tuple[str, ...]
    mapped: frozenset[str]  # roles that came from the explicit mapping

    def get(self, role: str) -> str | None:
        return self.used.get(role)

    def __contains__(self, role: str) -> bool:
        return role in self.used


def find_column(columns: Sequence[str], wanted: str) -> str | None:
    """``wanted`` among ``columns``: exact name first, then the one normalised match."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if normalise_name(c) == normalise_name(wanted)]
    return matches[0] if len(matches) == 1 else None


def resolve_columns(
    columns: Sequence[str],
    roles: Sequence[str],
    mapping: dict[str, str] | None,
    label: str,
    *,
    strict: bool = True,
) -> Columns:
    """Pick an input column for each of ``roles``.

    ``mapping`` entries for roles outside ``roles`` are ignored. With ``strict``,
    a mapping naming a column this table lacks is a DataError listing the
    available columns; without it (directories: one mapping for several files)
    such entries are skipped and the caller checks they matched somewhere.
    """
    columns = [str(c) for c in columns]
    used: dict[str, str] = {}
    mapped: set[str] = set()
    for role, wanted in (mapping or {}).items():
        if role not in roles:
            continue
        column = find_column(columns, wanted)
        if column is None:
            if strict:
                raise missing_mapped_column(label, role, wanted, columns)
            continue
        used[role] = column
        mapped.add(role)
    taken = set(used.values())
    by_name: dict[str, list[str]] = {}
    for column in columns:
        by_name.setdefault(normalise_name(column), []).append(column)
    for role in roles:
        if role in used:
            continue
        aliases = ALIASES[role]
        if role == "title" and normalise_name(used.get("item_id", "")) == "stockcode":
            # Online Retail style: the Description of a StockCode is its name.
            aliases = (*aliases, "Description")
        for alias in aliases:
            free = [c for c in by_name.get(normalise_name(alias), []) if c not in taken]
            if free:
                used[role] = free[0]
                taken.add(free[0])
                break
    ignored = tuple(c for c in columns if c not in taken)
    return Columns(used, ignored, frozenset(mapped))


def missing_mapped_column(label: str, role: str, wanted: str, columns: Sequence[str]) -> DataError:
    shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    return DataError(
        f"{label}: --map {role}={wanted} names a column that is not there",
        f"available columns: {shown}",
    )


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["user_id=reviewerID", ...]`` -> ``{"user_id": "reviewerID"}``.

    Keys must be canonical column names (user_id, item_id, session_id, order_id,
    event_type, timestamp, quantity, amount, value, text, title, category,
    description, price).
    """
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise DataError(f"--map {pair!r}: expected CANONICAL=COLUMN", "e.g. --map user_id=reviewerID")
        if key not in MAPPABLE:
            raise DataError(
                f"--map {pair!r}: '{key}' is not a column segscope knows", f"use one of: {', '.join(MAPPABLE)}"
            )
        if key in result and result[key] != value:
            raise DataError(f"--map {key} is given twice ({result[key]}, {value})", "keep one of them")
        result[key] = value
    return result
