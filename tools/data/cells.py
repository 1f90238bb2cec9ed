"""Vectorised conversion of one input column to its canonical type.

Each function takes a raw column (as read: strings from text files, native
types from Parquet/JSON) and either returns the converted column or raises a
one-line DataError naming the file, the first bad line and the column.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from tools.core.errors import DataError
from tools.data.columns import normalise_name
from tools.data.readers import RawTable

# Spellings of "no value" in numeric cells (text files are read with only the
# empty cell as missing, so that an id or a review reading "NA" survives).
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
_NA_SPELLINGS = sorted({form for t in NA_TOKENS if t for form in (t, t.upper(), t.title(), t.capitalize())} | {"NaN", "N/a"})

EVENT_SYNONYMS: Mapping[str, str] = {
    **dict.fromkeys(("view", "views", "viewed", "pageview", "click", "clicks", "clicked"), "view"),
    **dict.fromkeys(("cart", "addtocart", "addedtocart", "addtobasket", "basket"), "cart"),
    **dict.fromkeys(("purchase", "purchased", "transaction", "buy", "bought", "order", "ordered", "sale"), "purchase"),
    **dict.fromkeys(
        ("return", "returned", "refund", "refunded", "cancel", "cancelled", "canceled", "cancellation", "chargeback"),
        "return",
    ),
}
CURRENCY_SYMBOLS = "$£€¥₹"
_MONEY_NOISE = re.compile(rf"[{CURRENCY_SYMBOLS}\s]|,(?=\d{{3}}(\D|$))")

_EPOCH = pd.Timestamp(0, tz="UTC")


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_bad(table: RawTable, series: pd.Series, bad: np.ndarray) -> tuple[str, object, int]:
    positions = np.flatnonzero(bad)
    first = positions[0]
    return table.at(series.index[first]), series.iloc[first], len(positions)


def _more(count: int) -> str:
    return f" ({count - 1} more rows like it)" if count > 1 else ""


def _is_nested(value: object) -> bool:
    return isinstance(value, (list, tuple, dict, set, np.ndarray))


def reject_nested(series: pd.Series, table: RawTable, column: str) -> None:
    """Lists/structs cannot be ids, numbers or text: say so instead of guessing."""
    if series.dtype != object:
        return
    nested = series.map(_is_nested).to_numpy(dtype=bool)
    if nested.any():
        where, value, count = _first_bad(table, series, nested)
        raise DataError(
            f"{table.label} {where}: column {column} holds lists or structs ({_show(value)}){_more(count)}",
            f"segscope needs one value per cell: flatten {column} or pass --map to use another column",
        )


def _blank_to_na(out: pd.Series) -> pd.Series:
    blank = (out.eq("") | out.str.isspace()).fillna(False).to_numpy(dtype=bool)
    return out.mask(blank) if blank.any() else out


def _id_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_ids(series: pd.Series, table: RawTable, column: str) -> pd.Series:
    """Ids as strings exactly as written; a number 7 (or 7.0 from a gappy JSON/Parquet column) is "7".

    "NA", "null", "None", "n/a" and "nan" are no id (session logs write a missing user so)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if ptypes.is_string_dtype(series.dtype) and series.dtype != object:
        out = series
    elif ptypes.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        # 7.0 is how a gappy JSON/Parquet column stores the id 7
        integral = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
        whole = pd.Series(np.where(integral, values, np.nan), index=series.index).astype("Int64").astype("str")
        out = whole.where(integral, series.astype("str")).mask(series.isna())
    elif ptypes.is_integer_dtype(series.dtype) or ptypes.is_bool_dtype(series.dtype):
        out = series.astype("str")
    else:
        reject_nested(series, table, column)
        out = series.map(_id_text, na_action="ignore").astype("str")
    out = _blank_to_na(out)
    if ptypes.is_numeric_dtype(series.dtype):
        return out
    missing = out.isin(_NA_SPELLINGS).to_numpy(dtype=bool)  # a hash lookup: ids are many, spellings few
    return out.mask(missing) if missing.any() else out


def as_texts(series: pd.Series, table: RawTable, column: str, join_lists: bool = False) -> pd.Series:
    """Free text as str (NaN when empty). ``join_lists`` turns ["A", "B"] into "A|B" (categories)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if ptypes.is_string_dtype(series.dtype) and series.dtype != object:
        out = series
    else:
        if join_lists and series.dtype == object:
            series = series.map(_join_list, na_action="ignore")
        reject_nested(series, table, column)
        out = series.map(str, na_action="ignore").astype("str")
    return _blank_to_na(out)


def _join_list(value: object) -> object:
    if isinstance(value, (list, tuple, np.ndarray)):
        flat: list[str] = []
        for part in value:
            flat.extend(str(p) for p in (part if isinstance(part, (list, tuple, np.ndarray)) else [part]))
        return "|".join(p for p in flat if p) or None
    return value


def _present(series: pd.Series) -> np.ndarray:
    """Cells that hold something other than a 'no value' spelling."""
    present = np.array(series.notna(), dtype=bool)  # a writable copy
    if ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype):
        return present
    text = series.astype("str")
    # only short cells can spell "n/a": look at those alone (cheap on big columns)
    short = present & text.str.len().le(8).fillna(False).to_numpy(dtype=bool)
    if short.any():
        tokens = text[short].str.strip().str.lower().isin(NA_TOKENS).to_numpy(dtype=bool)
        present[np.flatnonzero(short)[tokens]] = False
    return present


def is_present(series: pd.Series) -> np.ndarray:
    """Cells that hold a value: not empty and not a spelling of "no value" (NA, null, n/a...)."""
    return _present(series)


def _floats(series: pd.Series) -> np.ndarray:
    """float64 values; NaN where missing or not a number (no errors raised)."""
    if ptypes.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy()
    if ptypes.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if ptypes.is_string_dtype(series.dtype) and series.dtype != object:
        try:  # fast path: pyarrow's cast is ~10x pandas' to_numeric and fails on anything odd
            import pyarrow as pa
            import pyarrow.compute as pc

            return pc.cast(pa.array(series), pa.float64()).to_numpy(zero_copy_only=False)
        except Exception:  # noqa: BLE001 - the slow path below finds out what was wrong
            pass
    values = pd.to_numeric(series.astype(object).where(_present(series)), errors="coerce")
    return np.asarray(values, dtype="float64")


def as_numbers(series: pd.Series, table: RawTable, column: str, role: str) -> np.ndarray:
    """Finite floats or NaN (absent); a non-number or an infinity is a DataError."""
    if ptypes.is_datetime64_any_dtype(series.dtype) or ptypes.is_timedelta64_dtype(series.dtype):
        raise DataError(f"{table.label}: column {column} holds dates, not numbers", f"pass --map {role}=OTHERCOLUMN")
    reject_nested(series, table, column)
    values = _floats(series)
    bad = np.isnan(values) & _present(series) if np.isnan(values).any() else np.zeros(len(values), bool)
    if bad.any():
        where, value, count = _first_bad(table, series, bad)
        raise DataError(
            f"{table.label} {where}: column {column} ({role}) has {_show(value)}, not a number{_more(count)}",
            f"fix those cells (use a plain number like 4.5) or pass --map {role}=OTHERCOLUMN",
        )
    infinite = np.isinf(values)
    if infinite.any():
        where, value, count = _first_bad(table, series, infinite)
        raise DataError(
            f"{table.label} {where}: column {column} ({role}) has {_show(value)}, not a finite number{_more(count)}",
            "replace it with a real number or leave the cell empty",
        )
    return values


def as_money(series: pd.Series, table: RawTable, column: str, role: str) -> tuple[np.ndarray, str | None]:
    """Money as finite floats, and the currency symbol its cells carry ("£3.50" -> 3.5, "£"), if any."""
    symbol = None
    if not ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_datetime64_any_dtype(series.dtype):
        text = series.astype("str")
        sample = text.dropna().iloc[:5000]
        found = sample.str.extract(f"([{CURRENCY_SYMBOLS}])", expand=False).dropna()
        if not found.empty:
            symbol = str(found.mode().iloc[0])
            series = text.str.replace(_MONEY_NOISE, "", regex=True)
    return as_numbers(series, table, column, role), symbol


def _datetimes_to_seconds(values: pd.Series) -> np.ndarray:
    if getattr(values.dt, "tz", None) is None:
        values = values.dt.tz_localize("UTC")
    seconds = ((values - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    return np.array(seconds, dtype="float64")  # writable copy


def _scale_epoch(values: np.ndarray) -> np.ndarray:
    """Seconds from seconds, milliseconds, microseconds or nanoseconds; YYYYMMDD integers as dates."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values
    if np.all((finite >= 19000101) & (finite <= 21001231) & (finite == np.round(finite))):
        digits = pd.Series(values).astype("Int64").astype("str")
        dates = pd.to_datetime(digits, format="%Y%m%d", errors="coerce", utc=True)
        if dates.notna().sum() == finite.size:
            return _datetimes_to_seconds(dates)
    magnitude = float(np.median(np.abs(finite)))
    for threshold, divisor in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if magnitude > threshold:
            return values / divisor
    return values


def _looks_numeric(series: pd.Series) -> bool:
    """Epoch numbers rather than date strings, judged on the first filled cells."""
    if ptypes.is_numeric_dtype(series.dtype):
        return True
    sample = series.iloc[:5000].dropna().iloc[:1000]
    if sample.empty:
        sample = series.dropna().iloc[:1000]
    numbers = pd.to_numeric(sample.astype(object), errors="coerce")
    return bool(numbers.notna().sum() * 2 > len(sample))


def as_seconds(series: pd.Series, table: RawTable, column: str) -> np.ndarray:
    """Float seconds since the epoch (UTC) from epoch numbers or date strings; NaN when empty."""
    if ptypes.is_datetime64_any_dtype(series.dtype):
        return _datetimes_to_seconds(series)
    reject_nested(series, table, column)
    if _looks_numeric(series):
        numbers = _floats(series)
        numeric = ~np.isnan(numbers)
        present = numeric if numeric.all() else _present(series)
        seconds = _scale_epoch(numbers)
        bad = (present & ~numeric) | np.isinf(numbers)
    else:
        present = _present(series)
        text = series.astype("str").where(present)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format": handled by the retry below
            seconds = _datetimes_to_seconds(pd.to_datetime(text, utc=True, errors="coerce"))
            bad = present & np.isnan(seconds)
            if bad.any():  # a file mixing date formats: parse the stragglers one by one
                retry = pd.to_datetime(text[bad], utc=True, errors="coerce", format="mixed")
                seconds[bad] = _datetimes_to_seconds(retry)
                bad = present & np.isnan(seconds)
    if bad.any():
        where, value, count = _first_bad(table, series, bad)
        raise DataError(
            f"{table.label} {where}: column {column} (timestamp) has {_show(value)}, "
            f"not a date or epoch number{_more(count)}",
            "fix those cells (e.g. 2024-03-01 12:00:00 or 1709294400) or pass --map timestamp=OTHERCOLUMN",
        )
    return seconds


def canonical_event_type(value: str) -> str:
    """'Add-To-Cart' -> 'cart', 'PageView' -> 'view', 'Purchase' -> 'purchase', else lower case."""
    return EVENT_SYNONYMS.get(normalise_name(value), " ".join(value.lower().split()))


def as_event_types(series: pd.Series, table: RawTable, column: str, default: str) -> pd.Series:
    """Lower-case event types with common synonyms merged; empty cells get ``default``."""
    texts = as_texts(series, table, column)
    codes, uniques = pd.factorize(texts)  # few distinct values: map those, not every row
    names = np.array([canonical_event_type(str(u)) for u in uniques] + [default], dtype=object)
    return pd.Series(names[codes], index=series.index, dtype="str")
