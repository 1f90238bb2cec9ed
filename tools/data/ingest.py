"""Load behaviour or text data from a file or a folder into a :class:`Dataset`.

Reading (formats, encodings) lives in ``tools.data.readers``, column aliases in
``tools.data.columns``, cell conversion in ``tools.data.cells``; this module decides what
each table is and assembles the normalised dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.core.dataset import EVENT_COLUMNS, ITEM_COLUMNS, Dataset, DatasetKind
from tools.core.errors import DataError
from tools.data.cells import as_event_types, as_ids, as_numbers, as_seconds, as_texts
from tools.data.columns import (
    ALIASES,
    EVENT_ROLES,
    ITEM_ATTRIBUTES,
    ITEM_ROLES,
    USER_ROLES,
    Columns,
    looked_for,
    normalise_name,
    parse_mapping,
    resolve_columns,
)
from tools.data.readers import (
    SUPPORTED_EXTS,
    SUPPORTED_TEXT,
    RawTable,
    read_table,
    split_name,
)

__all__ = ["load_dataset", "parse_mapping"]

EVENT_FILES = ("events", "ratings", "reviews", "interactions", "transactions", "tags")
ITEM_FILES = ("items", "movies", "products", "catalog", "catalogue")
USER_FILES = ("users", "customers")
KNOWN_EXTRA_FILES = ("links",)  # MovieLens ids of IMDb/TMDb: not needed
MISSING_ID_LIMIT = 0.01  # below this share, rows without an id are dropped with a warning

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass
class _Parts:
    events: pd.DataFrame
    kind: DatasetKind
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


def load_dataset(path: str | Path, mapping: dict[str, str] | None = None) -> Dataset:
    """Read behaviour data (or text-only data) from a file or a folder.

    A file is CSV/TSV/TXT, JSON lines or Parquet, optionally gzipped. A folder
    holds events (events/ratings/reviews/interactions/transactions/tags files),
    optionally items (items/movies/products/catalog) and users, or is a
    MovieLens ml-100k folder (u.data, u.item, u.user). Columns are recognised by
    their usual names; ``mapping`` (canonical name -> input column, e.g.
    ``{"user_id": "reviewerID"}``) overrides that. Every problem is a one-line
    DataError naming the file, the line or column, and what to do.
    """
    given = str(path)
    source = Path(path)
    if mapping:
        parse_mapping([f"{key}={value}" for key, value in mapping.items()])  # same checks as --map
    if not source.exists():
        raise DataError(f"{given}: no such file or folder", "check the path")
    parts = _load_folder(source, given, mapping) if source.is_dir() else _load_file(source, given, mapping)
    return _finish(parts, given)


def _load_file(path: Path, label: str, mapping: dict[str, str] | None) -> _Parts:
    table = read_table(path, label)
    columns = resolve_columns(table.frame.columns, EVENT_ROLES, mapping, label)
    parts = _events_parts(table, columns, default_type=_default_type(path, columns))
    parts.warnings[:0] = table.warnings
    return parts


def _default_type(path: Path, columns: Columns) -> str:
    if "value" in columns:
        return "rating"
    if "text" in columns:
        text_column = normalise_name(columns.used["text"])
        return "tag" if text_column == "tag" or split_name(path)[0] == "tags" else "review"
    return "interaction"


def _events_parts(table: RawTable, columns: Columns, default_type: str) -> _Parts:
    """Decide what an events-like table is (behaviour or text-only) and normalise it."""
    has_user, has_item, has_text = "user_id" in columns, "item_id" in columns, "text" in columns
    if has_user and has_item:
        return _behaviour(table, columns, default_type)
    if not has_item and has_text:
        return _text_only(table, columns)
    available = ", ".join(map(str, table.frame.columns[:20]))
    if not has_user:
        raise DataError(
            f"{table.label}: no user column (looked for {looked_for('user_id', 5)}); its columns: {available}",
            "pass --map user_id=YOURCOLUMN (or give a text column for text-only data)",
        )
    raise DataError(
        f"{table.label}: no item column (looked for {looked_for('item_id', 5)}); its columns: {available}",
        "pass --map item_id=YOURCOLUMN (or give a text column for text-only data)",
    )


def _keep_rows_with_ids(
    table: RawTable, ids: pd.Series, column: str, what: str, role: str
) -> tuple[np.ndarray, str | None]:
    """Rows to keep, and a warning when a few rows without an id were dropped."""
    missing = ids.isna().to_numpy()
    count = int(missing.sum())
    if count == 0:
        return ~missing, None
    where = table.at(ids.index[np.flatnonzero(missing)[0]])
    if count < MISSING_ID_LIMIT * len(ids):
        return ~missing, f"{table.label}: dropped {count} rows with no {what} (first at {where}, column {column})"
    raise DataError(
        f"{table.label}: {count} of {len(ids)} rows have no {what} (first at {where}, column {column})",
        f"fill them in, remove those rows, or pass --map {role}=OTHERCOLUMN",
    )


def _behaviour(table: RawTable, columns: Columns, default_type: str) -> _Parts:
    frame, used, warnings = table.frame, columns.used, []
    users = as_ids(frame[used["user_id"]], table, used["user_id"])
    items = as_ids(frame[used["item_id"]], table, used["item_id"])
    keep = np.ones(len(frame), dtype=bool)
    for ids, role, what in ((users, "user_id", "user id"), (items, "item_id", "item id")):
        kept, warning = _keep_rows_with_ids(table, ids, used[role], what, role)
        keep &= kept
        warnings += [warning] if warning else []
    if not keep.all():
        frame, users, items = frame[keep], users[keep], items[keep]
    table = RawTable(frame, table.label, table.unit)
    event_type = _column(table, columns, "event_type", as_event_types, default_type)
    timestamp = _column(table, columns, "timestamp", as_seconds)
    value = _column(table, columns, "value", as_numbers, "value")
    text = _column(table, columns, "text", as_texts)
    nan = np.full(len(frame), np.nan)
    events = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "event_type": pd.Series(default_type, index=frame.index, dtype="str") if event_type is None else event_type,
            "timestamp": nan if timestamp is None else timestamp,
            "value": nan if value is None else value,
            "text": pd.Series(np.nan, index=frame.index, dtype="str") if text is None else text,
        },
        index=frame.index,
    )
    items_table = None
    if any(role in used for role in ITEM_ATTRIBUTES):
        # Item attributes on each event row (Online Retail): the catalogue is their first occurrence.
        first = ~items.duplicated().to_numpy()
        items_table = _items_table(RawTable(frame[first], table.label, table.unit), columns, items[first])
    if columns.ignored:
        warnings.append(f"{table.label}: ignored columns: {', '.join(map(str, columns.ignored))}")
    return _Parts(events, "behaviour", items_table, None, warnings)


def _column(table: RawTable, columns: Columns, role: str, convert: Callable[..., Any], *args: Any) -> Any:
    """The input column playing ``role`` through ``convert``, or None when the table has none."""
    name = columns.get(role)
    return None if name is None else convert(table.frame[name], table, name, *args)


def _text_only(table: RawTable, columns: Columns) -> _Parts:
    """Rows described only by their text; every other column (labels!) is ignored, never used."""
    frame, used, warnings = table.frame, columns.used, []
    texts = as_texts(frame[used["text"]], table, used["text"])
    id_column = used.get("user_id")
    if id_column is None:
        id_column = next((c for a in ALIASES["id"] for c in columns.ignored if normalise_name(c) == a), None)
    if id_column is not None:
        ids = as_ids(frame[id_column], table, id_column)
        keep, warning = _keep_rows_with_ids(table, ids, id_column, "id", "user_id")
        warnings += [warning] if warning else []
    else:
        ids = pd.Series(np.arange(len(frame)).astype(str), index=frame.index, dtype="str")
        keep = np.ones(len(frame), dtype=bool)
    empty = texts.isna().to_numpy() & keep
    if not (keep & ~empty).any():
        raise DataError(f"{table.label}: column {used['text']} has no text", "pass --map text=YOURCOLUMN")
    if empty.any():
        where = table.at(texts.index[np.flatnonzero(empty)[0]])
        warnings.append(f"{table.label}: dropped {int(empty.sum())} rows with empty text (first at {where})")
    keep &= ~empty
    ignored = [str(c) for c in frame.columns if c not in (used["text"], id_column)]
    if ignored:
        warnings.append(f"{table.label}: ignored columns: {', '.join(ignored)}")
    n = int(keep.sum())
    events = pd.DataFrame(
        {
            "user_id": ids[keep],
            "item_id": pd.Series([None] * n, index=ids.index[keep], dtype=object),
            "event_type": pd.Series("text", index=ids.index[keep], dtype="str"),
            "timestamp": np.full(n, np.nan),
            "value": np.full(n, np.nan),
            "text": texts[keep],
        }
    )
    return _Parts(events, "text", None, None, warnings)


def _items_table(table: RawTable, columns: Columns, ids: pd.Series | None = None) -> pd.DataFrame:
    index = table.frame.index
    out = pd.DataFrame({"item_id": _column(table, columns, "item_id", as_ids) if ids is None else ids}, index=index)
    for role in ("title", "category", "description"):
        text = _column(table, columns, role, as_texts, role == "category")  # category lists join as "A|B"
        out[role] = pd.Series(np.nan, index=index, dtype="str") if text is None else text
    price = _column(table, columns, "price", as_numbers, "price")
    out["price"] = np.nan if price is None else price
    return out[list(ITEM_COLUMNS)]


def _catalogue(table: RawTable, columns: Columns, warnings: list[str]) -> pd.DataFrame:
    if "item_id" not in columns:
        raise DataError(
            f"{table.label}: no item id column (looked for {looked_for('item_id', 5)})", "pass --map item_id=YOURCOLUMN"
        )
    items = _items_table(table, columns)
    return _dedupe(items, "item_id", table, warnings, "item")


def _people(table: RawTable, columns: Columns, warnings: list[str]) -> pd.DataFrame:
    if "user_id" not in columns:
        raise DataError(
            f"{table.label}: no user id column (looked for {looked_for('user_id', 5)})", "pass --map user_id=YOURCOLUMN"
        )
    id_column = columns.used["user_id"]
    users = pd.DataFrame({"user_id": as_ids(table.frame[id_column], table, id_column)}, index=table.frame.index)
    for column in table.frame.columns:
        if column != id_column and str(column) not in users.columns:
            users[str(column)] = as_texts(table.frame[column], table, str(column))
    return _dedupe(users, "user_id", table, warnings, "user")


def _dedupe(frame: pd.DataFrame, key: str, table: RawTable, warnings: list[str], what: str) -> pd.DataFrame:
    missing = frame[key].isna().to_numpy()
    if missing.any():
        where = table.at(frame.index[np.flatnonzero(missing)[0]])
        warnings.append(f"{table.label}: dropped {int(missing.sum())} rows with no {what} id (first at {where})")
        frame = frame[~missing]
    repeated = frame[key].duplicated().to_numpy()
    if repeated.any():
        where = table.at(frame.index[np.flatnonzero(repeated)[0]])
        warnings.append(
            f"{table.label}: {int(repeated.sum())} repeated {what} ids kept their first row (first repeat at {where})"
        )
        frame = frame[~repeated]
    return frame


def _load_folder(folder: Path, given: str, mapping: dict[str, str] | None) -> _Parts:
    if (folder / "u.data").is_file():
        return _load_ml100k(folder, given)
    roles: dict[str, list[Path]] = {"events": [], "items": [], "users": []}
    unknown: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        stem, ext, _ = split_name(path)
        if ext not in SUPPORTED_EXTS:
            continue
        role = next((r for r, names in (("events", EVENT_FILES), ("items", ITEM_FILES), ("users", USER_FILES))
                     if stem in names), None)  # fmt: skip
        if role:
            roles[role].append(path)
        elif ext != ".txt" and stem not in KNOWN_EXTRA_FILES:
            unknown.append(path.name)
    if not roles["events"]:
        found = f" (found: {', '.join(unknown)})" if unknown else ""
        raise DataError(
            f"{given}: no events file in this folder{found}",
            f"expected one named {'/'.join(EVENT_FILES)} ({SUPPORTED_TEXT}), or a MovieLens ml-100k folder (u.data)",
        )
    warnings = [f"{given}: ignored files: {', '.join(unknown)}"] if unknown else []
    for role in ("items", "users"):
        if len(roles[role]) > 1:
            warnings.append(f"{given}: used {roles[role][0].name} for {role}; ignored "
                            + ", ".join(p.name for p in roles[role][1:]))  # fmt: skip
            roles[role] = roles[role][:1]
    # Read and resolve every file first, so a --map typo is reported as such.
    role_sets = {"events": EVENT_ROLES, "items": ITEM_ROLES, "users": USER_ROLES}
    loaded: dict[str, list[tuple[Path, RawTable, Columns]]] = {role: [] for role in roles}
    for role, paths in roles.items():
        for path in paths:
            table = read_table(path, _label(given, path))
            columns = resolve_columns(table.frame.columns, role_sets[role], mapping, table.label, strict=False)
            loaded[role].append((path, table, columns))
            warnings += table.warnings
    mapped = set().union(*(columns.mapped for tables in loaded.values() for _, _, columns in tables))
    for role, wanted in (mapping or {}).items():
        if role not in mapped:
            seen = [f"{path.name}: {', '.join(map(str, table.frame.columns))}"
                    for tables in loaded.values() for path, table, _ in tables]  # fmt: skip
            raise DataError(
                f"{given}: --map {role}={wanted} names a column that is in none of the files",
                "available columns: " + "; ".join(seen),
            )
    parts = [_events_parts(table, columns, _default_type(path, columns)) for path, table, columns in loaded["events"]]
    if len({p.kind for p in parts}) > 1 or (len(parts) > 1 and parts[0].kind == "text"):
        raise DataError(f"{given}: mixes text-only files with events files", "load the text-only file on its own")
    for part in parts:
        warnings += part.warnings
    items = next((p.items for p in parts if p.items is not None), None)
    for _, table, columns in loaded["items"]:
        items = _catalogue(table, columns, warnings)
    users = next((_people(table, columns, warnings) for _, table, columns in loaded["users"]), None)
    events = pd.concat([p.events for p in parts], ignore_index=True) if len(parts) > 1 else parts[0].events
    return _Parts(events, parts[0].kind, items, users, warnings)


def _label(given: str, path: Path) -> str:
    return str(Path(given) / path.name)


def _load_ml100k(folder: Path, given: str) -> _Parts:
    """MovieLens 100k as GroupLens ships it: headerless tab/pipe files, u.item in Latin-1."""
    ratings = read_table(folder / "u.data", _label(given, folder / "u.data"), sep="\t",
                         names=["user_id", "item_id", "rating", "timestamp"])  # fmt: skip
    columns = resolve_columns(ratings.frame.columns, EVENT_ROLES, None, ratings.label)
    parts = _behaviour(ratings, columns, "rating")
    parts.warnings[:0] = ratings.warnings
    if (folder / "u.item").is_file():
        names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
        table = read_table(folder / "u.item", _label(given, folder / "u.item"), sep="|", names=names,
                           fallback_encoding="latin-1", warn_on_fallback=False)  # fmt: skip
        flags = table.frame[list(ML100K_GENRES)].eq("1").to_numpy()
        genres = np.array(ML100K_GENRES, dtype=object)
        joined = ["|".join(genres[row]) or None for row in flags]  # 1,682 rows: a loop is fine
        category = pd.Series(joined, index=table.frame.index, dtype="str")
        frame = table.frame[["item_id", "title"]].assign(category=category)
        table = RawTable(frame, table.label, table.unit)
        parts.items = _catalogue(table, resolve_columns(frame.columns, ITEM_ROLES, None, table.label), parts.warnings)
    if (folder / "u.user").is_file():
        table = read_table(folder / "u.user", _label(given, folder / "u.user"), sep="|",
                           names=["user_id", "age", "gender", "occupation", "zip_code"])  # fmt: skip
        users = _people(table, resolve_columns(table.frame.columns, USER_ROLES, None, table.label), parts.warnings)
        users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int64")
        parts.users = users
    return parts


def _finish(parts: _Parts, source: str) -> Dataset:
    events = parts.events.reset_index(drop=True)[list(EVENT_COLUMNS)]
    items = None if parts.items is None else parts.items.reset_index(drop=True)
    users = None if parts.users is None else parts.users.reset_index(drop=True)
    return Dataset(
        events=events,
        items=items,
        users=users,
        kind=parts.kind,
        source=source,
        fingerprint=fingerprint(events, items, users, parts.kind),
        warnings=tuple(dict.fromkeys(parts.warnings)),
    )


def fingerprint(events: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None, kind: str) -> str:
    """sha256 of the normalised tables: equal data gives an equal hash in any process.

    Arrow IPC bytes of each table (single chunk, no pandas metadata) rather than
    ``hash_pandas_object``: same guarantee, about 3x faster on a million rows.
    """
    import pyarrow as pa

    digest = hashlib.sha256(f"segscope-dataset-v1|{kind}".encode())
    for name, frame in (("events", events), ("items", items), ("users", users)):
        digest.update(f"|{name}|".encode())
        if frame is None:
            digest.update(b"none")
            continue
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue())
    return digest.hexdigest()
