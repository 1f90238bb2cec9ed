"""Loading data: formats, aliases, layouts, and every broken input a user can hand us."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.core.dataset import EVENT_COLUMNS, ITEM_COLUMNS
from tools.core.errors import DataError
from tools.data.ingest import load_dataset, parse_mapping

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return default if default.is_dir() else Path(os.environ.get("SEGSCOPE_SHARED_DATA", default))


RATINGS = pd.DataFrame(
    {
        "userId": ["1", "1", "2", "007"],
        "movieId": ["10", "20", "10", "30"],
        "rating": [4.0, 3.5, 5.0, 1.0],
        "timestamp": [964982703, 964981247, 964982224, 964983815],
    }
)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def load_error(path: Path, mapping: dict[str, str] | None = None) -> str:
    """The error's one line, after checking it is one line and names the file."""
    with pytest.raises(DataError) as info:
        load_dataset(path, mapping)
    line = info.value.one_line()
    assert "\n" not in info.value.message and "\n" not in (info.value.hint or "")
    assert path.name in line, line
    return line


# --- formats -----------------------------------------------------------------


def _write_format(frame: pd.DataFrame, path: Path) -> None:
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        data = frame.astype({"userId": str, "movieId": str}).to_parquet(index=False)
    elif name.endswith((".jsonl", ".json")):
        data = frame.to_json(orient="records", lines=True).encode()
    else:
        sep = {"csv": ",", "tsv": "\t", "tab": "\t", "txt": "\t"}[name.rsplit(".", 1)[1]]
        data = frame.to_csv(index=False, sep=sep).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


@pytest.mark.parametrize(
    "name",
    [f"events.{ext}{gz}" for ext in ("csv", "tsv", "tab", "txt", "parquet", "jsonl", "json") for gz in ("", ".gz")],
)
def test_every_format_gives_the_same_dataset(tmp_path: Path, name: str) -> None:
    reference = load_dataset(write(tmp_path / "ref.csv", RATINGS.to_csv(index=False)))
    _write_format(RATINGS, tmp_path / name)
    data = load_dataset(tmp_path / name)
    assert list(data.events.columns) == list(EVENT_COLUMNS)
    assert data.kind == "behaviour" and data.events["user_id"].tolist() == ["1", "1", "2", "007"]
    assert data.events["event_type"].unique().tolist() == ["rating"]
    pd.testing.assert_frame_equal(data.events, reference.events)
    assert data.fingerprint == reference.fingerprint
    assert data.warnings == ()


def test_delimiter_is_sniffed_and_bom_dropped(tmp_path: Path) -> None:
    text = "\ufeffuser;item;rating\nu1;i1;4\nu2;i2;5\n"
    data = load_dataset(write(tmp_path / "events.csv", text))
    assert data.events["user_id"].tolist() == ["u1", "u2"] and data.events["value"].tolist() == [4.0, 5.0]


def test_json_lines_with_gappy_numeric_ids_keep_integer_spelling(tmp_path: Path) -> None:
    rows = [{"user": 1, "item": 10, "ts": "2024-03-01T12:00:00Z"}, {"user": 2, "item": None, "ts": None}]
    rows += [{"user": 3, "item": 12, "ts": None}] * 200
    data = load_dataset(write(tmp_path / "events.jsonl", "\n".join(map(json.dumps, rows))))
    assert data.events["user_id"].iloc[0] == "1" and data.events["item_id"].iloc[0] == "10"
    assert data.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T12:00:00Z").timestamp()
    assert len(data.events) == 201 and "skipped 1 of 202 rows: 1 missing item_id (column item, first at line 2)" in data.warnings[0]
    assert data.skipped == {"missing item_id": 1}


# --- aliases and mapping -------------------------------------------------------


def test_amazon_review_aliases(tmp_path: Path) -> None:
    rows = [
        {"reviewerID": "A1", "asin": "B01", "overall": 5.0, "reviewText": "great", "summary": "ok",
         "unixReviewTime": 1393545600, "reviewerName": "Ann"},
        {"reviewerID": "A2", "asin": "B01", "overall": 2.0, "reviewText": "", "summary": "meh",
         "unixReviewTime": 1393545601, "reviewerName": "Bob"},
    ]  # fmt: skip
    data = load_dataset(write(tmp_path / "reviews.json", "\n".join(map(json.dumps, rows))))
    events = data.events
    assert events["user_id"].tolist() == ["A1", "A2"] and events["item_id"].tolist() == ["B01", "B01"]
    assert events["value"].tolist() == [5.0, 2.0] and events["timestamp"].tolist() == [1393545600.0, 1393545601.0]
    assert events["text"].iloc[0] == "great" and pd.isna(events["text"].iloc[1])  # reviewText beats summary
    assert events["event_type"].tolist() == ["rating", "rating"]
    assert any("ignored columns: summary, reviewerName" in w for w in data.warnings)


def test_online_retail_aliases_build_a_catalogue(tmp_path: Path) -> None:
    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
        "536366,85123A,WHITE HANGING HEART,2,12/2/2010 9:00,2.55,13047,France\n"
    )
    data = load_dataset(write(tmp_path / "retail.csv", text))
    assert data.events["user_id"].tolist() == ["17850", "17850", "13047"]
    assert data.events["item_id"].tolist() == ["85123A", "71053", "85123A"]
    assert data.events["timestamp"].iloc[0] == pd.Timestamp("2010-12-01 08:26", tz="UTC").timestamp()
    assert data.events["event_type"].unique().tolist() == ["purchase"]  # an invoice log: every line is bought
    assert data.events["order_id"].tolist() == ["536365", "536365", "536366"]
    assert data.items is not None and list(data.items.columns) == list(ITEM_COLUMNS)
    assert data.items.set_index("item_id").loc["71053", "title"] == "WHITE METAL LANTERN"
    assert data.items["price"].tolist() == [2.55, 3.39]
    assert not any("ignored columns" in w for w in data.warnings)
    assert data.users is not None and data.users.set_index("user_id")["Country"].to_dict() == {"17850": "United Kingdom", "13047": "France"}


def test_explicit_mapping_overrides_aliases(tmp_path: Path) -> None:
    text = "who,what,rating,stars,when\na,x,1,5,2024-01-01\nb,y,2,4,2024-01-02\n"
    path = write(tmp_path / "events.csv", text)
    data = load_dataset(path, {"user_id": "who", "item_id": "what", "value": "stars", "timestamp": "when"})
    assert data.events["user_id"].tolist() == ["a", "b"] and data.events["value"].tolist() == [5.0, 4.0]
    line = load_error(path, {"user_id": "customer"})
    assert "--map user_id=customer" in line and "available columns: who, what, rating, stars, when" in line


def test_parse_mapping() -> None:
    assert parse_mapping(["user_id=reviewerID", " item_id = asin "]) == {"user_id": "reviewerID", "item_id": "asin"}
    for bad in (["user_id"], ["=x"], ["user_id="], ["colour=red"], ["user_id=a", "user_id=b"]):
        with pytest.raises(DataError) as info:
            parse_mapping(bad)
        assert "\n" not in info.value.one_line()


def test_event_types_are_normalised(tmp_path: Path) -> None:
    text = (
        "visitorid,itemid,event,timestamp\n"
        "1,9,View,1433221332117\n1,9,addtocart,1433221332118\n1,9,Transaction,\n1,9,,1433221332119\n"
    )
    data = load_dataset(write(tmp_path / "events.csv", text))
    assert data.events["event_type"].tolist() == ["view", "cart", "purchase", "interaction"]
    assert data.events["timestamp"].iloc[0] == pytest.approx(1433221332.117)  # milliseconds detected


# --- layouts -------------------------------------------------------------------


def test_ml100k_layout(tmp_path: Path) -> None:
    folder = tmp_path / "ml-100k"
    write(folder / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    flags = ["0"] * 19
    comedy = flags.copy()
    comedy[1] = comedy[5] = "1"  # Action, Comedy
    items = [
        "|".join(["242", "Kolya (1996)", "24-Jan-1997", "", "http://us.imdb.com/M/title-exact?Kolya", *comedy]),
        "|".join(["302", "Misérables, Les (1995)", "01-Jan-1995", "", "http://x", *flags]),
    ]
    write(folder / "u.item", ("\n".join(items) + "\n").encode("latin-1"))
    write(folder / "u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n")
    data = load_dataset(folder)
    assert data.events["user_id"].tolist() == ["196", "186", "22"]
    assert data.events["value"].tolist() == [3.0, 3.0, 1.0] and data.events["event_type"].iloc[0] == "rating"
    items_by_id = data.items.set_index("item_id")
    assert items_by_id.loc["242", "category"] == "Action|Comedy" and pd.isna(items_by_id.loc["302", "category"])
    assert items_by_id.loc["302", "title"] == "Misérables, Les (1995)"
    assert data.users["zip_code"].tolist() == ["55105", "00000"] and data.users["age"].tolist() == [49, 39]
    assert data.warnings == ()


def test_ml_latest_small() -> None:
    folder = shared_data() / "ml-latest-small"
    if not (folder / "ratings.csv").is_file():
        pytest.skip(f"MovieLens ml-latest-small not found at {folder} (set SEGSCOPE_SHARED_DATA)")
    data = load_dataset(folder)
    counts = data.events["event_type"].value_counts()
    assert counts["rating"] == 100836 and counts["tag"] == 3683 and data.n_users == 610
    tags = data.events[data.events["event_type"] == "tag"]
    assert tags["text"].notna().all() and tags["value"].isna().all()
    assert len(data.items) == 9742
    assert data.items.iloc[0]["category"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert data.warnings == ()


def test_banking77_is_text_only_and_ignores_the_label() -> None:
    path = shared_data() / "banking77" / "test.csv"
    if not path.is_file():
        pytest.skip(f"banking77 not found at {path} (set SEGSCOPE_SHARED_DATA)")
    data = load_dataset(path)
    assert data.kind == "text" and len(data.events) == 3080 and data.n_items == 0
    assert "category" not in data.events.columns and data.items is None
    assert data.events["user_id"].iloc[-1] == "3079" and data.events["item_id"].isna().all()
    assert data.warnings == (f"{path}: ignored columns: category",)


def test_text_only_single_column_and_id_column(tmp_path: Path) -> None:
    data = load_dataset(write(tmp_path / "messages.txt", "message\nhello\n\nwhere is my card?\n"))
    assert data.kind == "text" and data.events["user_id"].tolist() == ["0", "1"]
    assert data.events["text"].tolist() == ["hello", "where is my card?"]
    data = load_dataset(write(tmp_path / "m.csv", "Id,text,label\nm7,hi,x\nm8,,y\nm9,bye,z\n"))
    assert data.events["user_id"].tolist() == ["m7", "m9"] and data.events["event_type"].unique().tolist() == ["text"]
    assert any("ignored columns: label" in w for w in data.warnings)
    assert any("skipped 1 of 3 rows: 1 missing text (column text, first at line 3)" in w for w in data.warnings)
    assert data.skipped == {"missing text": 1}


def test_user_and_text_without_items_is_text_grouped_per_user(tmp_path: Path) -> None:
    data = load_dataset(write(tmp_path / "chats.csv", "client_id,message\nc1,hi\nc1,again\nc2,yo\n"))
    assert data.kind == "text" and data.n_users == 2 and data.events["user_id"].tolist() == ["c1", "c1", "c2"]


def test_folder_with_events_items_users(tmp_path: Path) -> None:
    events = "user_id,product_id,action,created_at\nu1,p1,click,2024-01-01\nu2,p9,buy,2024-01-02\n"
    write(tmp_path / "events.csv", events)
    write(tmp_path / "products.csv", "productId,name,department,price\np1,Mug,Kitchen,3.5\np1,Dup,X,1\np2,Pan,K,\n")
    write(tmp_path / "users.csv", "customer_id,segment\nu1,gold\n")
    write(tmp_path / "notes.csv", "a\n1\n")
    data = load_dataset(tmp_path)
    assert data.events["event_type"].tolist() == ["view", "purchase"]
    assert data.items["title"].tolist() == ["Mug", "Pan"] and data.items["price"].iloc[0] == 3.5
    assert data.users.columns.tolist() == ["user_id", "segment"]
    assert any("repeated item ids kept their first row (first repeat at line 3)" in w for w in data.warnings)
    assert any("ignored files: notes.csv" in w for w in data.warnings)
    line = load_error(tmp_path, {"user_id": "zzz"})
    assert "--map user_id=zzz names a column that is in none of the files" in line and "users.csv: customer_id" in line


# --- fingerprint ---------------------------------------------------------------


def test_fingerprint_is_stable_across_processes_and_sensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "events.csv", RATINGS.to_csv(index=False))
    here = load_dataset(path).fingerprint
    code = f"from tools.data.ingest import load_dataset; print(load_dataset({str(path)!r}).fingerprint)"
    there = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here
    changed = RATINGS.copy()
    changed.loc[3, "rating"] = 2.0
    assert load_dataset(write(tmp_path / "b.csv", changed.to_csv(index=False))).fingerprint != here


# --- broken inputs -------------------------------------------------------------


def test_missing_columns(tmp_path: Path) -> None:
    line = load_error(write(tmp_path / "events.csv", "person,movieId,rating\n1,2,3\n"))
    assert "no user column (looked for user_id, userId, user, reviewerID" in line
    assert "--map user_id=YOURCOLUMN" in line and "person" in line
    line = load_error(write(tmp_path / "e2.csv", "userId,thing,rating\n1,2,3\n"))
    assert "no item column" in line and "--map item_id=YOURCOLUMN" in line


@pytest.mark.parametrize("content", ["", "\n\n", "userId,movieId,rating\n", "userId,movieId,rating\n,,\n\n"])
def test_empty_and_header_only(tmp_path: Path, content: str) -> None:
    assert "file has no rows" in load_error(write(tmp_path / "events.csv", content))


def test_non_numeric_rating_names_line_and_column(tmp_path: Path) -> None:
    text = 'userId,movieId,rating,comment\n1,2,4,"two\nlines"\n\n1,3,5,x\n1,4,great,x\n1,5,bad,x\n'
    line = load_error(write(tmp_path / "events.csv", text))
    # spreadsheet numbering: the quoted newline stays in row 2, the blank line is row 3
    assert "events.csv line 5: column rating (value) has 'great', not a number (1 more rows like it)" in line


def test_bad_timestamp_names_line_and_column(tmp_path: Path) -> None:
    text = "userId,movieId,date\n1,2,2024-01-01\n1,3,2024-01-02 10:00\n1,4,yesterday\n"
    line = load_error(write(tmp_path / "events.csv", text))
    assert "events.csv line 4: column date (timestamp) has 'yesterday'" in line
    text = "userId,movieId,ts\n1,2,1700000000\n1,3,soon\n1,4,1700000001\n"
    assert "e.csv line 3: column ts (timestamp) has 'soon'" in load_error(write(tmp_path / "e.csv", text))


def test_infinite_value_and_nan_value(tmp_path: Path) -> None:
    line = load_error(write(tmp_path / "events.csv", "userId,movieId,rating\n1,2,4\n1,3,inf\n"))
    assert "line 3: column rating (value) has 'inf', not a finite number" in line
    data = load_dataset(write(tmp_path / "ok.csv", "userId,movieId,rating\n1,2,NaN\n1,3,\n1,4,NA\n"))
    assert data.events["value"].isna().all()


def test_invalid_utf8_and_cp1252_fallback(tmp_path: Path) -> None:
    line = load_error(write(tmp_path / "events.csv", b"userId,movieId,text\n1,2,ok\n1,3,\x81\x8d\x90\n"))
    assert "line 3" in line and "re-save the file as UTF-8" in line
    data = load_dataset(write(tmp_path / "win.csv", "userId,movieId,text\n1,2,café “quoted”\n".encode("cp1252")))
    assert data.events["text"].iloc[0] == "café “quoted”"
    assert any("not UTF-8" in w and "cp1252" in w for w in data.warnings)


def test_duplicate_header(tmp_path: Path) -> None:
    line = load_error(write(tmp_path / "events.csv", "userId,movieId,rating,rating\n1,2,3,4\n"))
    assert "column 'rating' appears twice" in line


def test_folder_with_nothing_readable(tmp_path: Path) -> None:
    write(tmp_path / "README.txt", "hello")
    write(tmp_path / "picture.png", b"\x89PNG")
    line = load_error(tmp_path)
    assert "no events file" in line and "ratings" in line and "u.data" in line


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(RATINGS.to_csv(index=False).encode() * 50)
    line = load_error(write(tmp_path / "events.csv.gz", data[: len(data) // 2]))
    assert "truncated or corrupt" in line


def test_parquet_nested_columns(tmp_path: Path) -> None:
    frame = RATINGS.assign(tags=[["a"], ["b", "c"], [], ["d"]])
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    data = load_dataset(tmp_path / "events.parquet")  # an unused nested column is ignored, and said so
    assert any("ignored columns: tags" in w for w in data.warnings)
    frame = RATINGS.assign(userId=[{"id": 1}, {"id": 2}, {"id": 1}, {"id": 3}])
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    line = load_error(tmp_path / "bad.parquet")
    assert "bad.parquet row 1: column userId holds lists or structs" in line
    items = pd.DataFrame({"asin": ["B1"], "title": ["T"], "categories": [["Books", "Fiction"]]})
    items.to_parquet(tmp_path / "items.parquet", index=False)
    write(tmp_path / "reviews.csv", "reviewerID,asin,overall\nA,B1,5\n")
    assert load_dataset(tmp_path).items["category"].tolist() == ["Books|Fiction"]


def test_missing_user_ids_are_skipped_counted_and_named_once(tmp_path: Path) -> None:
    rows = "".join(f"u{i},i{i},4\n" for i in range(300))
    data = load_dataset(write(tmp_path / "events.csv", "userId,movieId,rating\n" + rows + ",i9,3\n"))
    assert len(data.events) == 300 and data.skipped == {"missing user_id": 1}
    warning = (f"{tmp_path / 'events.csv'}: skipped 1 of 301 rows: 1 missing user_id (column userId, first at line 302);"
               " --strict refuses them instead")  # fmt: skip
    assert data.warnings == (warning,)
    # Half the rows without an id: still skipped and counted, not refused.
    data = load_dataset(write(tmp_path / "gappy.csv", "userId,movieId,rating\n1,2,3\n,3,4\n"))
    assert data.events["user_id"].tolist() == ["1"] and data.skipped == {"missing user_id": 1}


def test_misc_unreadable_inputs(tmp_path: Path) -> None:
    assert "no such file" in load_error(tmp_path / "nope.csv")
    assert "unsupported file type" in load_error(write(tmp_path / "data.xml", "<a/>"))
    assert "line 3: expected 3 fields, found 4" in load_error(write(tmp_path / "e.csv", "a,b,c\n1,2,3\n1,2,3,4\n"))
    assert "line 2: not valid JSON" in load_error(write(tmp_path / "e.jsonl", '{"userId": 1}\n{oops\n'))
    assert "not a readable Parquet file" in load_error(write(tmp_path / "e.parquet", b"PAR1garbage"))
    line = load_error(write(tmp_path / "u.csv", "1,2,3\n4,5,6\n"))  # no header, and nothing that looks like an id
    assert "no user column" in line and "the file has no header line; its columns were read as:" in line
    assert np.isnan(load_dataset(write(tmp_path / "ok.csv", "user,item\n1,2\n")).events["timestamp"].iloc[0])
