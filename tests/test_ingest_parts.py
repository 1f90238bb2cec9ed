"""Partitioned inputs: an events table written in parts (a folder of CSV or Parquet parts, or a glob) reads as
the one file it was split from, for either engine; a bad part is named by its own path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tools.core.errors import DataError
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts") / "one"
    generate_sample(root, n_users=120, seed=2)
    return root


def _split_csv(source: Path, folder: Path, n: int = 3) -> list[Path]:
    """``source``'s data lines in ``n`` CSV parts, each with the header line."""
    head, *body = source.read_text().splitlines(keepends=True)
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(body) // n)
    paths = []
    for i in range(n):
        path = folder / f"part-{i:05d}.csv"
        path.write_text(head + "".join(body[i * size : (i + 1) * size]))
        paths.append(path)
    return paths


def _beside(sample: Path, folder: Path) -> None:
    for f in sample.iterdir():
        if f.is_file() and f.name != "events.csv":
            shutil.copy(f, folder / f.name)


def test_an_events_folder_of_csv_parts_reads_as_the_one_file(sample, tmp_path):
    _split_csv(sample / "events.csv", tmp_path / "data" / "events")
    _beside(sample, tmp_path / "data")
    one, parts = load_dataset(sample), load_dataset(tmp_path / "data")
    assert parts.fingerprint == one.fingerprint
    pd.testing.assert_frame_equal(parts.events, one.events)
    assert parts.items is not None and len(parts.items) == len(one.items)


def test_a_glob_and_a_folder_of_nothing_but_parts_read_the_events(sample, tmp_path):
    _split_csv(sample / "events.csv", tmp_path / "events")
    by_glob = load_dataset(str(tmp_path / "events" / "part-*.csv"))
    by_folder = load_dataset(tmp_path / "events")
    assert by_glob.fingerprint == by_folder.fingerprint
    assert len(by_glob.events) == len(load_dataset(sample).events)
    assert by_glob.items is None


def test_parquet_parts_read_as_the_parquet_file(sample, tmp_path):
    events = pd.read_csv(sample / "events.csv", dtype=str, keep_default_na=False, na_values=[""])
    (tmp_path / "whole").mkdir()
    events.to_parquet(tmp_path / "whole" / "events.parquet", index=False)
    (tmp_path / "parted" / "events").mkdir(parents=True)
    for i, start in enumerate(range(0, len(events), 700)):
        events.iloc[start : start + 700].to_parquet(tmp_path / "parted" / "events" / f"part-{i}.parquet", index=False)
    (tmp_path / "parted" / "events" / "_SUCCESS").write_text("")  # what Spark leaves beside its parts
    assert load_dataset(tmp_path / "parted").fingerprint == load_dataset(tmp_path / "whole").fingerprint


def test_a_glob_matching_nothing_and_a_bad_part_are_one_line_naming_them(sample, tmp_path):
    with pytest.raises(DataError, match="matches no data file"):
        load_dataset(str(tmp_path / "nothing-*.csv"))
    parts = _split_csv(sample / "events.csv", tmp_path / "data" / "events")
    parts[1].write_text(parts[1].read_text().replace(",", "", 3).replace("\n", "\n\"", 1))
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "data")
    assert "events/part-00001.csv" in info.value.one_line()
