"""The in-memory shape every loader produces and every stage consumes.

Identifiers are kept as strings exactly as they appear in the input, so what
segscope prints can be looked up in the user's own files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

# Canonical column names. Loaders rename aliases to these; nothing downstream
# ever sees an input's own spelling.
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "text")
ITEM_COLUMNS = ("item_id", "title", "category", "description", "price")

DatasetKind = Literal["behaviour", "text"]


@dataclass(frozen=True)
class Dataset:
    """Behaviour data normalised to canonical columns.

    events: one row per interaction, columns ``EVENT_COLUMNS`` (a missing value is
        NA/NaN in pandas' string columns: test with ``pd.isna``, not ``is None``):
        user_id (str), item_id (str, or missing for text-only data),
        event_type (str: view, cart, purchase, rating, review, tag, text, ...),
        timestamp (float seconds since the epoch, NaN when unknown),
        value (float: rating or amount, NaN when absent),
        text (str, or None: review/tag/message text written by the user).
    items: one row per item, columns ``ITEM_COLUMNS`` (missing ones are None/NaN),
        or None when the data has no catalogue.
    users: one row per user with ``user_id`` plus optional attributes, or None.
    kind: "text" when every row is one entity described only by its text
        (e.g. customer messages); "behaviour" otherwise.
    source: where it was read from, for messages and reports.
    fingerprint: a content hash of the normalised tables; equal data, equal hash.
    warnings: things the loader fixed or ignored that the user should know about.
    """

    events: pd.DataFrame
    items: pd.DataFrame | None
    users: pd.DataFrame | None
    kind: DatasetKind
    source: str
    fingerprint: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_users(self) -> int:
        return int(self.events["user_id"].nunique())

    @property
    def n_items(self) -> int:
        if self.kind == "text":
            return 0
        return int(self.events["item_id"].nunique())
