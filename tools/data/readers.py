"""Read one data file into a raw table: formats, gzip, encodings, delimiters.

Nothing here knows what the columns mean (see ``tools.data.columns``); this module
only turns bytes on disk into a DataFrame with the file's own column names,
or into a one-line :class:`DataError` naming the file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.errors import DataError

DELIMITED_EXTS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}
JSON_EXTS = (".jsonl", ".ndjson", ".json")
PARQUET_EXTS = (".parquet", ".pq")
SUPPORTED_EXTS = (*DELIMITED_EXTS, *JSON_EXTS, *PARQUET_EXTS)
SUPPORTED_TEXT = "CSV, TSV, JSON lines or Parquet, optionally .gz"

WHITESPACE = r"\s+"  # runs of spaces/tabs (CDNOW): pandas' C engine splits on it, leading blanks ignored
_SEP_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", WHITESPACE: "whitespace"}
_SNIFF_LINES = 20
# A first line made only of these is data, not column names: numbers and dates.
_VALUE_CELL = re.compile(r"\s*(-?\d+(\.\d+)?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?)\s*")
_RESAVE_UTF8 = "re-save the file as UTF-8 (e.g. 'Save as… CSV UTF-8')"


@dataclass(frozen=True)
class RawTable:
    """One file's rows under the file's own column names.

    The frame's index says where a user finds each row: for delimited files the
    spreadsheet line (header = line 1, first data row = line 2), for JSON lines
    the line, for Parquet and JSON arrays the 1-based row.
    """

    frame: pd.DataFrame
    label: str
    unit: str = "line"
    warnings: tuple[str, ...] = ()
    headerless: bool = False  # no header line: columns are column1..columnN, named by content later

    def at(self, index: object) -> str:
        """'line 7' / 'row 3': where the row with this index is in the file."""
        return f"{self.unit} {index}"


def split_name(path: Path) -> tuple[str, str, bool]:
    """``events.CSV.gz`` -> ("events", ".csv", True)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    ext = Path(name).suffix
    return name[: len(name) - len(ext)], ext, gz


def read_table(
    path: Path,
    label: str,
    *,
    sep: str | None = None,
    names: list[str] | None = None,
    fallback_encoding: str = "cp1252",
    warn_on_fallback: bool = True,
) -> RawTable:
    """Read ``path`` (any supported format, gzip or not) into a :class:`RawTable`.

    ``sep``/``names`` force a delimited, header-less read (GroupLens files).
    """
    data = read_bytes(path, label)
    _, ext, _ = split_name(path)
    if data.startswith(b"PAR1"):
        return _read_parquet(data, label)
    if data.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{label}: this is a zip or Excel file, not a data table",
            f"unzip it or export the sheet as CSV ({SUPPORTED_TEXT})",
        )
    if ext in PARQUET_EXTS:
        raise DataError(f"{label}: not a Parquet file (no PAR1 header)", "check the file or its extension")
    if sep is None and ext not in SUPPORTED_EXTS:
        raise DataError(f"{label}: unsupported file type '{ext or path.name}'", f"save it as {SUPPORTED_TEXT}")
    text, encoding = decode(data, label, fallback_encoding)
    if not text.strip():
        raise DataError(f"{label}: file has no rows (it is empty)", "check that you picked the right file")
    warning = None
    if encoding not in ("utf-8", "utf-16") and warn_on_fallback:
        warning = f"{label}: not UTF-8; read it as {encoding} — {_RESAVE_UTF8} if characters look wrong"
    # pandas and pyarrow want UTF-8 bytes; reuse the input when it already was.
    utf8 = data.removeprefix(codecs.BOM_UTF8) if encoding == "utf-8" else text.encode("utf-8")
    if ext in JSON_EXTS and sep is None:
        table = _read_json(text, label)
    else:
        if sep is None:
            sep = _sniff_sep(text, ext)
        table = _read_delimited(utf8, text, label, sep, names)
    if warning:
        return RawTable(table.frame, table.label, table.unit, (*table.warnings, warning), table.headerless)
    return table


def read_bytes(path: Path, label: str) -> bytes:
    """The file's bytes, gunzipped when the file is gzip (by content, not by name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc
        raise DataError(f"{label}: cannot read the file ({reason})", "check the path and permissions") from None
    if data.startswith(b"\x1f\x8b"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error):
            raise DataError(
                f"{label}: the gzip file is truncated or corrupt", "download or compress it again"
            ) from None
    return data


def decode(data: bytes, label: str, fallback: str = "cp1252") -> tuple[str, str]:
    """Text of ``data`` and the encoding it was read with.

    Policy: UTF-8 (BOM dropped), UTF-16 when it has a BOM, else the ``fallback``
    code page (Windows-1252 by default: what Excel writes; the caller warns). Bytes
    that are invalid even there, or NUL bytes, mean this is not a text file we
    understand: a DataError asking for UTF-8.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise DataError(f"{label}: broken UTF-16 text", _RESAVE_UTF8) from None
    if b"\x00" in data[:65536]:
        raise DataError(f"{label}: not a text file (it contains NUL bytes)", f"save it as {SUPPORTED_TEXT}")
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
    try:
        return data.decode(fallback), fallback
    except UnicodeDecodeError:
        raise DataError(f"{label} line {line}: bytes that are not valid UTF-8 (0x{bad})", _RESAVE_UTF8) from None


def _split(line: str, sep: str) -> list[str]:
    return line.split() if sep == WHITESPACE else next(csv.reader([line], delimiter=sep), [])


def _sniff_sep(text: str, ext: str) -> str:
    """The delimiter: the extension's default when the header has it, else the most used of , tab ; |,
    else whitespace when the header and the next lines split into the same number (≥ 2) of fields."""
    default = DELIMITED_EXTS.get(ext, ",")
    if ext in (".tsv", ".tab"):
        return default
    lines = [line.rstrip("\r") for line in text.lstrip("\r\n").split("\n", _SNIFF_LINES + 1)[:_SNIFF_LINES]]
    lines = [line for line in lines if line.strip()]
    header = lines[0] if lines else ""
    counts = {sep: header.count(sep) for sep in (",", "\t", ";", "|")}
    if counts[default]:
        return default
    best = max(counts, key=lambda sep: counts[sep])
    if counts[best]:
        return best
    widths = {len(line.split()) for line in lines}
    return WHITESPACE if len(widths) == 1 and widths.pop() >= 2 else default


def first_line_is_data(text: str, sep: str) -> bool:
    """Whether line 1 holds values (numbers, dates) rather than column names: a header-less file."""
    first = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    fields = _split(first, sep)
    return bool(fields) and all(_VALUE_CELL.fullmatch(name) for name in fields)


def _check_header(text: str, label: str, sep: str) -> None:
    first = text.split("\n", 1)[0].rstrip("\r")
    header = _split(first, sep)
    seen: set[str] = set()
    for name in header:
        if name.strip() and name in seen:
            raise DataError(f"{label}: column '{name}' appears twice in the header (line 1)", "rename one of them")
        seen.add(name)


def _read_delimited(utf8: bytes, text: str, label: str, sep: str, names: list[str] | None) -> RawTable:
    headerless = names is None and first_line_is_data(text, sep)
    if headerless:
        width = max(len(_split(line.rstrip("\r"), sep)) for line in text.split("\n", 50)[:50])
        names = [f"column{i}" for i in range(1, width + 1)]
    elif names is None:
        _check_header(text, label, sep)
    options = dict(
        sep=sep,
        dtype=str,  # ids stay exactly as written; numbers are converted later, column by column
        keep_default_na=False,
        na_values=[""],
        header=None if names else 0,
        names=names,
        quoting=csv.QUOTE_NONE if sep == "|" and names else csv.QUOTE_MINIMAL,
    )
    frame = None
    # pyarrow is ~2x faster; it skips blank lines (which would shift line numbers)
    # and reports errors without line numbers, so the C engine handles those cases.
    plain = sep != WHITESPACE and options["quoting"] == csv.QUOTE_MINIMAL  # pyarrow takes no regex separator
    if plain and b"\n\n" not in utf8 and b"\n\r\n" not in utf8:
        try:
            frame = pd.read_csv(io.BytesIO(utf8), engine="pyarrow", **options)
        except Exception:  # noqa: BLE001 - any pyarrow failure is re-diagnosed by the C engine
            frame = None
    if frame is None:
        try:
            frame = pd.read_csv(io.BytesIO(utf8), engine="c", skip_blank_lines=False, **options)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
            raise _parse_error(label, sep, exc) from None
    frame.index = np.arange(len(frame)) + (1 if names else 2)
    if len(frame.columns):
        frame = frame[frame.notna().any(axis=1)]  # blank lines
    if frame.empty:
        raise DataError(f"{label}: file has no rows (only a header line)", "check that you picked the right file")
    return RawTable(frame, label, "line", headerless=headerless)


def _parse_error(label: str, sep: str, exc: Exception) -> DataError:
    message = " ".join(str(exc).split())
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        want, line, got = fields.groups()
        return DataError(
            f"{label} line {line}: expected {want} fields, found {got}",
            f"check the quoting on that line (read as {_SEP_NAMES.get(sep, repr(sep))}-separated)",
        )
    return DataError(
        f"{label}: cannot be read as {_SEP_NAMES.get(sep, repr(sep))}-separated text ({message[:160]})",
        f"save it as {SUPPORTED_TEXT}",
    )


def _read_json(text: str, label: str) -> RawTable:
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{label} line {exc.lineno}: not valid JSON ({exc.msg})", "fix the file") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError(f"{label}: a JSON array must hold one object per row", "write one JSON object per row")
        if not records:
            raise DataError(f"{label}: file has no rows", "check that you picked the right file")
        frame = pd.DataFrame.from_records(records)
        frame.index = np.arange(1, len(frame) + 1)
        return RawTable(frame, label, "row")
    # pandas < 3 turns *_time/date columns into datetimes unless told not to
    legacy = {"convert_dates": False, "keep_default_dates": False} if int(pd.__version__.split(".")[0]) < 3 else {}
    try:
        frame = pd.read_json(io.StringIO(text), lines=True, dtype=False, precise_float=True, **legacy)
    except ValueError:
        raise _json_lines_error(text, label) from None
    lines = text.split("\n")
    numbers = [i + 1 for i, line in enumerate(lines) if line.strip()]
    if len(numbers) != len(frame):
        raise _json_lines_error(text, label)
    frame.index = np.asarray(numbers)
    return RawTable(frame, label, "line")


def _json_lines_error(text: str, label: str) -> DataError:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return DataError(f"{label} line {number}: not valid JSON ({exc.msg})", "write one JSON object per line")
        if not isinstance(value, dict):
            return DataError(f"{label} line {number}: expected a JSON object", "write one JSON object per line")
    return DataError(f"{label}: cannot be read as JSON lines", "write one JSON object per line")


def _read_parquet(data: bytes, label: str) -> RawTable:
    import pyarrow as pa  # lazy: only Parquet needs it directly
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        message = " ".join(str(exc).split())[:160]
        raise DataError(f"{label}: not a readable Parquet file ({message})", "export it again") from None
    seen: set[str] = set()
    for name in table.column_names:
        if name in seen:
            raise DataError(f"{label}: column '{name}' appears twice", "rename one of them")
        seen.add(name)
    if table.num_rows == 0:
        raise DataError(f"{label}: file has no rows", "check that you picked the right file")
    try:
        # Nullable integers keep big ids exact (no float64 round trip).
        frame = table.to_pandas(types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        message = " ".join(str(exc).split())[:160]
        raise DataError(
            f"{label}: cannot convert this Parquet file ({message})", "export it again with plain column types"
        ) from None
    frame.index = np.arange(1, len(frame) + 1)
    return RawTable(frame, label, "row")
