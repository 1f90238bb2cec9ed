"""The in-memory shape every loader produces and every stage consumes.

Identifiers are kept as strings exactly as they appear in the input, so what
segscope prints can be looked up in the user's own files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import pandas as pd

# Canonical column names. Loaders rename aliases to these; nothing downstream
# ever sees an input's own spelling.
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "text", "order_id", "quantity")
ITEM_COLUMNS = ("item_id", "title", "category", "description", "price")

DatasetKind = Literal["behaviour", "text"]
Entity = Literal["user", "session"]


@dataclass(frozen=True)
class Dataset:
    """Behaviour data normalised to canonical columns.

    events: one row per interaction, columns ``EVENT_COLUMNS`` (a missing value is
        NA/NaN in pandas' string columns: test with ``pd.isna``, not ``is None``):
        user_id (str), item_id (str, or missing for text-only data),
        event_type (str: view, cart, purchase, rating, review, tag, text, ...),
        timestamp (float seconds since the epoch, NaN when unknown),
        value (float: rating or amount, NaN when absent),
        text (str, or None: review/tag/message text written by the user),
        order_id (str, or missing: the order, invoice or basket a line belongs to),
        quantity (float: units on a transaction line, negative on returns; NaN when absent).
        On transaction lines (event_type "purchase" or "return") value is the line's
        spend in the data's currency, negative on returns.
    items: one row per item, columns ``ITEM_COLUMNS`` (missing ones are None/NaN),
        or None when the data has no catalogue.
    users: one row per user with ``user_id`` plus optional attributes (text), or None.
        Attributes come from a users file or from events-file columns that are constant
        per user (country, plan); they describe users but are not clustering inputs.
    kind: "text" when every row is one entity described only by its text
        (e.g. customer messages); "behaviour" otherwise.
    source: where it was read from, for messages and reports.
    fingerprint: a content hash of the normalised tables; equal data, equal hash.
    warnings: things the loader fixed or ignored that the user should know about.
    entity: what one "user" row is: "user", or "session" when sessions were segmented
        (``user_id`` then holds the session id); entity_reason says why when it was chosen
        automatically.
    currency: the money symbol the data states ("$" from a dollar_value column, "£"...),
        or None when it does not say (money is then shown without a symbol).
    skipped: rows left out, by reason ({"missing user_id": 135080}); empty when none.
    spend: how a line's spend was read ("amount column dollar_value",
        "Quantity × UnitPrice"), or None when the data has no money.
    columns: the input column each role was read from ({"user_id": "CustomerID",
        "order_id": "InvoiceNo"}), so later data can be checked against it; not hashed.
    """

    events: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    kind: DatasetKind
    source: str
    fingerprint: str
    warnings: tuple[str, ...] = field(default=())
    entity: Entity = "user"
    entity_reason: str | None = None
    currency: str | None = None
    skipped: Mapping[str, int] = field(default_factory=dict)
    spend: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.events["user_id"].nunique())

    @property
    def n_items(self) -> int:
        if self.kind == "text":
            return 0
        return int(self.events["item_id"].nunique())

    def for_users(self, user_ids) -> Dataset:
        """This data with only the events of ``user_ids`` (the catalogue and users table as they are)."""
        kept = self.events["user_id"].isin(pd.Index(user_ids)).to_numpy()
        return replace(self, events=self.events[kept].reset_index(drop=True), fingerprint=f"{self.fingerprint}:subset")

    @property
    def user_attributes(self) -> tuple[str, ...]:
        """The users table's attribute columns (everything but ``user_id``)."""
        if self.users is None:
            return ()
        return tuple(str(c) for c in self.users.columns if c != "user_id")
