"""The bad-input corpus end to end, plus fuzzed CSVs: a clear one-line error or a correct result, never a traceback,
never a half-written workspace."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.core.errors import SegscopeError
from tools.data.ingest import load_dataset

BIN = Path(sys.executable).parent / "segscope"


def _rows(n: int, fmt) -> str:
    return "".join(fmt(i) for i in range(n))


def corpus(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, expected: 'error' or 'ok')."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str | bytes, str]] = {
        "empty.csv": ("", "error"),
        "header_only.csv": ("user_id,item_id,rating\n", "error"),
        "missing_user.csv": ("item_id,rating\n1,5\n", "error"),
        "wrong_types.csv": ("user_id,item_id,rating\n1,1,5\n2,1,five\n", "error"),
        "bad_timestamp.csv": ("user_id,item_id,timestamp\n1,1,2024-01-01\n2,1,yesterday-ish\n", "error"),
        "infinite.csv": ("user_id,item_id,rating\n1,1,inf\n", "error"),
        "duplicate_headers.csv": ("user_id,item_id,item_id\n1,2,3\n", "error"),
        "invalid_utf8.csv": (b"user_id,item_id,text\n1,2,\x81\x8d\x90\n", "error"),
        "one_row.csv": ("user_id,item_id\nu1,i1\n", "error"),
        "one_user.csv": ("user_id,item_id\n" + _rows(30, lambda i: f"u1,i{i}\n"), "error"),
        "identical_users.csv": ("user_id,item_id,rating\n" + _rows(30, lambda i: f"u{i},i1,4\nu{i},i2,5\n"), "error"),
        "nan_values.csv": ("user_id,item_id,rating\n" + _rows(60, lambda i: f"u{i % 20},i{i % 6},{'nan' if i % 7 == 0 else (i % 5) + 1}\n"), "ok"),
        "duplicated_ids.csv": ("user_id,item_id\n" + _rows(80, lambda i: f"u{i % 20},i{(i * 7) % 9}\n") * 2, "ok"),
        "cp1252.csv": ("user_id,item_id,text\n" + _rows(40, lambda i: f"u{i % 20},i{i % 5},caf\xe9 na\xefve {i % 3}\n")).encode("cp1252"),
        "all_missing_user.csv": ("CustomerID,StockCode,Quantity,UnitPrice\n" + _rows(20, lambda i: f",S{i},1,2.5\n"), "error"),
        "text_quantity.csv": ("user_id,item_id,quantity,price\n" + _rows(30, lambda i: f"u{i % 9},i{i % 4},{'two' if i == 7 else 2},1.5\n"), "error"),
        "gappy_customer_ids.csv": ("InvoiceNo,StockCode,Quantity,UnitPrice,CustomerID\n" + _rows(90, lambda i: f"{500 + i // 3},S{i % 7},{1 + i % 4},2.5,{'' if i % 4 == 0 else 100 + i % 25}\n"), "ok"),
        "whitespace_no_header.txt": (_rows(80, lambda i: f" {i % 30:05d} 1997{1 + i % 12:02d}{1 + i % 27:02d}  {1 + i % 5}   {10 + i * 1.37:.2f}\r\n"), "ok"),
        "huge_field.csv": ("user_id,item_id,text\nu0,i0," + "x" * 10_000_000 + "\n" + _rows(40, lambda i: f"u{i % 20 + 1},i{i % 5},word{i % 4}\n"), "ok"),
    }
    out = {}
    for name, spec in files.items():
        content, expected = spec if isinstance(spec, tuple) else (spec, "ok")
        path = root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        out[name] = (path, expected)
    good = "user_id,item_id\n" + _rows(60, lambda i: f"u{i % 20},i{i % 6}\n")
    gz = root / "truncated.csv.gz"
    gz.write_bytes(gzip.compress(good.encode())[:-12])
    out["truncated.csv.gz"] = (gz, "error")
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = root / "nested.parquet"
    pq.write_table(pa.table({"user_id": ["1", "2", "3"], "item_id": [{"a": 1}, {"a": 2}, {"a": 3}]}), nested)
    out["nested.parquet"] = (nested, "error")
    return out


def test_corpus_through_the_cli(tmp_path):
    results = {}
    for name, (path, expected) in corpus(tmp_path / "corpus").items():
        ws = tmp_path / f"ws-{name}"
        proc = subprocess.run([str(BIN), "segment", "--data", str(path), "--workspace", str(ws), "--embedder", "hashing", "--json"],
                              capture_output=True, text=True, timeout=300)
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
        if expected == "error":
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            assert proc.returncode == 2 and len(lines) == 1, (name, proc.returncode, proc.stderr)
            assert not ws.exists(), name
        else:
            assert proc.returncode == 0, (name, proc.stderr)
            summary = json.loads(proc.stdout)
            assert summary["k"] >= 2 and (ws / "assignments.csv").exists()
        results[name] = proc.returncode
    assert len(results) == 21


def test_k_larger_than_the_number_of_users(tmp_path):
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id\n" + _rows(40, lambda i: f"u{i % 8},i{i % 5}\n"))
    proc = subprocess.run([str(BIN), "segment", "--data", str(data), "--workspace", str(tmp_path / "ws"), "--embedder", "hashing", "--k", "20"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "k=20" in proc.stderr and not (tmp_path / "ws").exists()


cells = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "NA", "null", "2024-01-01", "1e309", '"', "a,b", "\t"]),
)


@settings(max_examples=int(os.environ.get("SEGSCOPE_FUZZ", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.sampled_from(["user_id", "item_id", "rating", "timestamp", "text", "event", "price", "x", "user_id"]), min_size=1, max_size=5),
    rows=st.lists(st.lists(cells, min_size=0, max_size=6), max_size=12),
)
def test_fuzzed_csv_loads_or_fails_cleanly(tmp_path, header, rows):
    path = tmp_path / "fuzz.csv"
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        data = load_dataset(path)
    except SegscopeError as exc:
        line = exc.one_line()
        assert "\n" not in line and line
        return
    assert len(data.events) > 0 and data.events["user_id"].notna().all()


def test_a_cli_error_quotes_data_the_resolver_fenced_for_a_model(capsys):
    """Resolver messages fence data for the agent (<data>u99999</data>); on the command line it reads as a quote."""
    from assistant.cli_app import error_line

    error_line("There is no user <data>u99999</data> in this workspace. Did you mean <data>u09999</data>?")
    line = capsys.readouterr().err.strip()
    assert "<data>" not in line and "“u99999”" in line and "“u09999”" in line and line.startswith("segscope: error:")
