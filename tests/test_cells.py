"""Timestamps: epoch numbers in seconds, ms, µs or ns and YYYYMMDD integers all become UTC seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.data.cells import as_seconds
from tools.data.ingest import load_dataset
from tools.data.readers import RawTable

# 2023-11-14 22:13:20 UTC, and the same instant plus a fraction of a second
SECONDS = 1_700_000_000
MARCH_1_2024 = 1_709_251_200  # 2024-03-01 00:00:00 UTC


def _seconds(values: list) -> np.ndarray:
    series = pd.Series(values)
    return as_seconds(series, RawTable(pd.DataFrame({"ts": series}), "events.csv"), "ts")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([SECONDS, SECONDS + 60], [SECONDS, SECONDS + 60]),
        ([SECONDS * 1000 + 250, (SECONDS + 60) * 1000], [SECONDS + 0.25, SECONDS + 60]),
        ([SECONDS * 1_000_000 + 500_000, (SECONDS + 60) * 1_000_000], [SECONDS + 0.5, SECONDS + 60]),
        ([SECONDS * 1_000_000_000, (SECONDS + 60) * 1_000_000_000], [SECONDS, SECONDS + 60]),
        ([20240301, 20240302], [MARCH_1_2024, MARCH_1_2024 + 86_400]),
    ],
    ids=["seconds", "milliseconds", "microseconds", "nanoseconds", "yyyymmdd"],
)
def test_epoch_units_are_guessed_from_the_magnitude(values, expected):
    assert _seconds(values) == pytest.approx(expected, abs=1e-3)


def test_missing_cells_stay_missing_and_do_not_sway_the_unit():
    got = _seconds([SECONDS * 1000.0, np.nan, (SECONDS + 1) * 1000.0])
    assert got[0] == pytest.approx(SECONDS) and np.isnan(got[1]) and got[2] == pytest.approx(SECONDS + 1)
    assert np.isnan(_seconds([np.nan, np.nan])).all()


def test_small_numbers_are_kept_as_seconds():
    # Relative times (seconds since a session started) are not epochs in another unit.
    assert _seconds([0, 5, 86_400]).tolist() == [0.0, 5.0, 86_400.0]


def test_dates_as_text_and_as_datetimes():
    assert _seconds(["2024-03-01", "2024-03-01 12:00:00"]).tolist() == [MARCH_1_2024, MARCH_1_2024 + 43_200]
    stamps = pd.Series(pd.to_datetime(["2024-03-01 00:00:01"]))
    assert as_seconds(stamps, RawTable(pd.DataFrame({"ts": stamps}), "e.parquet"), "ts").tolist() == [MARCH_1_2024 + 1]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1700000000", "1700000060"], [SECONDS, SECONDS + 60]),
        (["1700000000250", "1700000060000"], [SECONDS + 0.25, SECONDS + 60]),
        (["1700000000500000", "1700000060000000"], [SECONDS + 0.5, SECONDS + 60]),
        (["1700000000000000000", "1700000060000000000"], [SECONDS, SECONDS + 60]),
        (["20240301", "20240302"], [MARCH_1_2024, MARCH_1_2024 + 86_400]),
    ],
    ids=["seconds", "milliseconds", "microseconds", "nanoseconds", "yyyymmdd"],
)
def test_a_csv_timestamp_column_in_any_unit_loads_as_seconds(tmp_path: Path, cells, expected):
    lines = ["user_id,item_id,ts"] + [f"u{i},i{i},{cell}" for i, cell in enumerate(cells)]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    events = load_dataset(tmp_path / "events.csv").events.sort_values("user_id")
    assert events["timestamp"].tolist() == pytest.approx(expected, abs=1e-3)
