"""Transaction logs: spend, returns, orders, per-user attributes, skipped rows, sessions, sniffing, headerless files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_ingest import load_error, write

from tools.core.errors import DataError
from tools.data.ingest import load_dataset
from tools.segment.features import compute_features

DAY = 86_400.0

RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "1001,A,MUG,2,2011-01-01 10:00,3.00,c1,United Kingdom\n"
    "1001,B,PLATE,1,2011-01-01 10:00,10.00,c1,United Kingdom\n"
    "1002,A,MUG,4,2011-01-11 09:00,3.00,c1,United Kingdom\n"
    "C1003,B,PLATE,-1,2011-01-12 09:00,10.00,c1,United Kingdom\n"
    "1004,A,MUG,1,2011-01-31 10:00,3.00,c1,United Kingdom\n"
    "1005,B,PLATE,3,2011-01-21 10:00,10.00,c2,France\n"
    "1006,A,MUG,5,2011-01-05 10:00,3.00,,United Kingdom\n"
)

CDNOW_LIKE = (
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00001 19970101  1   11.77\r\n"
    " 00002 19970112  1   12.00\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00002 19970301  2   20.00\r\n"
)


def features_of(data) -> dict[str, np.ndarray]:
    users = np.asarray(sorted(data.events["user_id"].unique()), dtype=object)
    f = compute_features(data, users)
    return {name: f.raw[:, j] for j, name in enumerate(f.names)} | {"_units": {s.name: s.unit for s in f.specs}}


# --- spend ---------------------------------------------------------------------------


def test_invoice_log_spend_is_quantity_times_unit_price(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "retail.csv", RETAIL))
    ev = data.events
    assert ev["value"].tolist() == [6.0, 10.0, 12.0, -10.0, 3.0, 30.0]
    assert ev["quantity"].tolist() == [2, 1, 4, -1, 1, 3]
    assert data.spend == "Quantity × UnitPrice" and data.currency is None  # the data names no currency


def test_amount_column_is_the_line_total_and_wins_over_quantity_times_price(tmp_path) -> None:
    text = "user_id,order_id,quantity,unit_price,sales_value\nu1,o1,2,5.00,9.00\nu1,o2,1,5.00,4.50\nu2,o3,3,1.00,3.00\n"
    data = load_dataset(write(tmp_path / "t.csv", text))
    assert data.events["value"].tolist() == [9.0, 4.5, 3.0]  # a discount shows in the total, not in q × p
    assert data.spend == "amount column sales_value"
    # A value column in a transaction log is the line total too, never multiplied by the quantity.
    data = load_dataset(write(tmp_path / "v.csv", "user_id,order_id,quantity,value\nu1,o1,2,9.00\nu2,o2,1,4.00\n"))
    assert data.events["value"].tolist() == [9.0, 4.0] and data.events["event_type"].unique().tolist() == ["purchase"]


def test_currency_from_the_column_name_or_the_cells(tmp_path) -> None:
    assert load_dataset(write(tmp_path / "c.txt", CDNOW_LIKE)).currency == "$"
    text = 'user_id,order_id,amount\nu1,o1,£3.50\nu1,o2,"£1,200.00"\nu2,o3,£2\n'
    data = load_dataset(write(tmp_path / "p.csv", text))
    assert data.currency == "£" and data.events["value"].tolist() == [3.5, 1200.0, 2.0]


# --- returns -------------------------------------------------------------------------


def test_returns_are_netted_out_counted_and_never_purchases(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "retail.csv", RETAIL))
    assert data.events["event_type"].tolist() == ["purchase"] * 3 + ["return"] + ["purchase"] * 2
    assert any("1 lines are returns or cancellations" in w for w in data.warnings)
    col = features_of(data)  # users c1, c2
    np.testing.assert_allclose(col["monetary"], [6 + 10 + 12 - 10 + 3, 30])
    np.testing.assert_array_equal(col["returns"], [1, 0])
    np.testing.assert_array_equal(col["frequency"], [3, 1])  # the cancelled invoice is not an order
    assert col["_units"]["frequency"] == "orders" and col["_units"]["returns"] == "orders"


def test_refund_event_and_negative_quantity_without_a_c_invoice_are_returns(tmp_path) -> None:
    text = (
        "user_id,item_id,event_type,order_id,quantity,price\n"
        "u1,i1,purchase,o1,2,4.0\nu1,i1,Refund,o2,1,4.0\nu1,i2,,o3,-1,5.0\nu2,i1,purchase,o4,1,4.0\n"
    )
    data = load_dataset(write(tmp_path / "t.csv", text))
    assert data.events["event_type"].tolist() == ["purchase", "return", "return", "purchase"]
    assert data.events["value"].tolist() == [8.0, -4.0, -5.0, 4.0]
    assert data.events["quantity"].tolist() == [2.0, -1.0, -1.0, 1.0]


def test_c_prefix_is_a_cancellation_only_where_invoices_are_numbers(tmp_path) -> None:
    text = "user_id,order_id,amount\nu1,C10,5\nu1,C11,6\nu2,C12,7\n"  # every id has the C: it is the id format
    assert load_dataset(write(tmp_path / "t.csv", text)).events["event_type"].tolist() == ["purchase"] * 3
    text = "user_id,order_id,quantity,price\nu1,10,2,3.0\nu1,C10,2,3.0\nu2,11,1,3.0\n"  # written with a positive quantity
    data = load_dataset(write(tmp_path / "c.csv", text))
    assert data.events["event_type"].tolist() == ["purchase", "return", "purchase"]
    assert data.events["value"].tolist() == [6.0, -6.0, 3.0] and data.events["quantity"].tolist() == [2.0, -2.0, 1.0]


def test_two_invoices_at_the_same_minute_are_two_orders(tmp_path) -> None:
    text = "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,2011-01-01 10:00,2,c1\n2,1,2011-01-01 10:00,2,c1\n3,1,2011-01-02 10:00,2,c2\n"
    col = features_of(load_dataset(write(tmp_path / "t.csv", text)))
    np.testing.assert_array_equal(col["frequency"], [2, 1])
    np.testing.assert_allclose(col["median_gap_days"], [0, np.nan])


# --- orders ---------------------------------------------------------------------------


def test_orders_not_rows_make_frequency_and_the_order_features(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "retail.csv", RETAIL))
    col = features_of(data)  # c1: invoices 1001 (2 lines), 1002, 1004; c2: 1005
    np.testing.assert_allclose(col["avg_order_value"], [(16 + 12 + 3) / 3, 30])
    np.testing.assert_allclose(col["basket_size"], [(3 + 4 + 1) / 3, 3])
    np.testing.assert_allclose(col["recency_days"], [0, 10])
    np.testing.assert_allclose(col["tenure_days"], [30, 10])  # first purchase to the end of the data
    gaps = [(pd.Timestamp("2011-01-11 09:00") - pd.Timestamp("2011-01-01 10:00")).total_seconds() / DAY,
            (pd.Timestamp("2011-01-31 10:00") - pd.Timestamp("2011-01-11 09:00")).total_seconds() / DAY]  # fmt: skip
    np.testing.assert_allclose(col["median_gap_days"], [np.median(gaps), np.nan])
    units = col["_units"]
    assert units["avg_order_value"] == "money" and units["tenure_days"] == units["median_gap_days"] == "days"
    assert "span_days" not in col and "purchases" not in col  # tenure and frequency say it in orders


def test_without_an_order_column_a_customer_day_is_one_order(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "c.txt", CDNOW_LIKE))
    col = features_of(data)  # 00001, 00002
    np.testing.assert_array_equal(col["frequency"], [1, 2])
    np.testing.assert_allclose(col["monetary"], [11.77, 109.0])
    np.testing.assert_allclose(col["basket_size"], [1, (6 + 2) / 2])
    np.testing.assert_allclose(col["median_gap_days"], [np.nan, 48])
    assert "distinct_items" not in col and "avg_price" not in col  # no items: behaviour alone


def test_a_mixed_log_keeps_events_as_frequency_and_counts_purchase_orders(tmp_path) -> None:
    text = (
        "user_id,item_id,event_type,timestamp,value,order_id\n"
        "u1,i1,view,1,,\nu1,i1,purchase,2,5,o1\nu1,i2,purchase,2,6,o1\nu1,i3,purchase,9,4,o2\nu2,i1,view,3,,\n"
    )
    col = features_of(load_dataset(write(tmp_path / "events.csv", text)))
    np.testing.assert_array_equal(col["frequency"], [4, 1])
    np.testing.assert_array_equal(col["purchases"], [2, 0])
    assert col["_units"]["frequency"] == "count" and col["_units"]["purchases"] == "orders"
    np.testing.assert_allclose(col["avg_order_value"], [7.5, np.nan])


# --- user attributes ---------------------------------------------------------------------


def test_columns_constant_per_user_become_attributes_not_inputs(tmp_path) -> None:
    text = "user_id,item_id,plan,store,age_band\n" + "".join(
        f"u{u},i{i},{'pro' if u % 2 else 'free'},s{(u + i) % 3},{20 + 10 * (u % 3)}s\n" for u in range(6) for i in range(3)
    )
    data = load_dataset(write(tmp_path / "events.csv", text))
    assert data.user_attributes == ("plan", "age_band")
    assert data.users.set_index("user_id").loc["u1", "plan"] == "pro" and data.users.set_index("user_id").loc["u2", "age_band"] == "40s"
    assert any("kept as user attributes" in w and "plan, age_band" in w for w in data.warnings)
    assert any(w.endswith("ignored columns: store") for w in data.warnings)  # store varies per user
    names = compute_features(data, np.asarray(sorted(data.events["user_id"].unique()), dtype=object)).names
    assert not any("plan" in n or "age" in n for n in names)


def test_one_row_per_user_proves_nothing_about_attributes(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "events.csv", "user_id,item_id,country\nu1,i1,FR\nu2,i2,DE\n"))
    assert data.users is None and any("ignored columns: country" in w for w in data.warnings)


# --- rows without the entity id -----------------------------------------------------------


def test_rows_without_the_user_id_are_skipped_counted_or_refused_under_strict(tmp_path) -> None:
    path = write(tmp_path / "retail.csv", RETAIL)
    data = load_dataset(path)
    assert data.skipped == {"missing user_id": 1} and data.n_users == 2
    skipped = [w for w in data.warnings if "skipped" in w]
    assert skipped == [f"{path}: skipped 1 of 7 rows: 1 missing user_id (column CustomerID, first at line 8); --strict refuses them instead"]
    with pytest.raises(DataError) as info:
        load_dataset(path, strict=True)
    assert "1 of 7 rows have no user id (first at line 8, column CustomerID)" in info.value.one_line()


def test_a_file_where_every_row_lacks_the_user_id_is_refused(tmp_path) -> None:
    line = load_error(write(tmp_path / "t.csv", "CustomerID,StockCode,Quantity,UnitPrice\n,A,1,2\n,B,1,2\n"))
    assert "none of the 2 rows has a user id (column CustomerID)" in line


def test_a_quantity_of_text_names_the_file_line_and_column(tmp_path) -> None:
    line = load_error(write(tmp_path / "t.csv", "user_id,item_id,quantity,price\nu1,i1,2,3.0\nu1,i2,two,3.0\n"))
    assert "t.csv line 3: column quantity (quantity) has 'two', not a number" in line


# --- sessions -------------------------------------------------------------------------------


SESSIONS = (
    "session_id;user_id;item_id;eventdate\n1;NA;10;2016-05-09\n1;NA;11;2016-05-09\n2;7;10;2016-05-10\n2;7;13;2016-05-10\n"
    "3;NA;12;2016-05-10\n3;NA;10;2016-05-10\n"
)


def test_sessions_are_the_entity_when_user_ids_are_mostly_missing(tmp_path) -> None:
    path = write(tmp_path / "views.csv", SESSIONS)
    data = load_dataset(path)
    assert data.entity == "session" and data.n_users == 3 and data.skipped == {}
    assert data.entity_reason == "the user id (user_id) is missing on 67% of rows"
    assert any("segmenting sessions (column session_id)" in w and "--entity user" in w for w in data.warnings)
    accounts = data.users.set_index("user_id")["user"]  # a session's user id is an attribute of the session
    assert accounts.loc["2"] == "7" and accounts.drop("2").isna().all() and data.user_attributes == ("user",)
    assert data.events["timestamp"].iloc[0] == pd.Timestamp("2016-05-09", tz="UTC").timestamp()
    users = load_dataset(path, entity="user")
    assert users.entity == "user" and users.n_users == 1 and users.skipped == {"missing user_id": 4}
    assert users.users is None  # the only user has one session: nothing to call constant
    assert load_dataset(path, entity="session").entity_reason is None  # asked for, not chosen


def test_users_stay_the_entity_when_they_are_mostly_known(tmp_path) -> None:
    text = "session_id,user_id,item_id\n1,7,10\n1,7,11\n2,8,10\n3,,12\n"
    data = load_dataset(write(tmp_path / "views.csv", text))
    assert data.entity == "user" and data.skipped == {"missing user_id": 1}
    with pytest.raises(DataError, match="no session column"):
        load_dataset(write(tmp_path / "plain.csv", "user_id,item_id\n1,2\n"), entity="session")
    with pytest.raises(DataError, match="--entity"):
        load_dataset(tmp_path / "plain.csv", entity="household")


# --- delimiters, dates, header-less files ------------------------------------------------------


def test_whitespace_separated_file_with_yyyymmdd_dates(tmp_path) -> None:
    data = load_dataset(write(tmp_path / "CDNOW_like.txt", CDNOW_LIKE))
    ev = data.events
    assert ev["user_id"].tolist() == ["00001", "00002", "00002", "00002"]  # ids as written
    assert ev["timestamp"].iloc[0] == pd.Timestamp("1997-01-01", tz="UTC").timestamp()
    assert ev["quantity"].tolist() == [1, 1, 5, 2] and ev["value"].tolist() == [11.77, 12.0, 77.0, 20.0]
    assert ev["item_id"].isna().all() and data.items is None and data.warnings == ()


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("date", "19970101", "1997-01-01"),
        ("eventdate", "2016-05-09", "2016-05-09"),
        ("InvoiceDate", "12/1/2010 8:26", "2010-12-01 08:26"),
        ("InvoiceDate", "2010-12-01 08:26:00", "2010-12-01 08:26"),
        ("transaction_timestamp", "2017-01-28 14:06:53", "2017-01-28 14:06:53"),
        ("timestamp", "1291192000", "2010-12-01 08:26:40"),
        ("timestamp", "1291192000000", "2010-12-01 08:26:40"),
    ],
)
def test_dates_in_the_usual_spellings(tmp_path, column: str, cell: str, expected: str) -> None:
    data = load_dataset(write(tmp_path / "t.csv", f"user_id,order_id,amount,{column}\nu1,o1,3,{cell}\nu2,o2,4,{cell}\n"))
    assert data.events["timestamp"].iloc[0] == pd.Timestamp(expected, tz="UTC").timestamp()


def test_a_headerless_cdnow_like_file_is_read_by_content_and_said_so(tmp_path) -> None:
    body = CDNOW_LIKE.split("\r\n", 1)[1]
    data = load_dataset(write(tmp_path / "nohead.txt", body))
    assert data.events["user_id"].tolist() == ["00001", "00002", "00002", "00002"]
    assert data.events["quantity"].tolist() == [1, 1, 5, 2] and data.events["value"].tolist() == [11.77, 12.0, 77.0, 20.0]
    assert data.events["timestamp"].iloc[0] == pd.Timestamp("1997-01-01", tz="UTC").timestamp()
    note = (f"{tmp_path / 'nohead.txt'}: no header line; named its columns by content: column1 user_id (ids), "
            "column2 timestamp (YYYYMMDD dates), column3 quantity (small whole numbers), column4 amount (decimal numbers); "
            "pass --map ROLE=columnN to change")  # fmt: skip
    assert data.warnings == (note,)
    again = load_dataset(tmp_path / "nohead.txt", {"quantity": "column3", "amount": "column4"})
    assert again.events["value"].tolist() == [11.77, 12.0, 77.0, 20.0]


def test_a_headerless_ratings_file_reads_the_small_numbers_as_ratings(tmp_path) -> None:
    rows = "".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t{881250949 + u * 1000 + i}\n" for u in range(1, 40) for i in range(1, 30, 3))
    data = load_dataset(write(tmp_path / "u.tsv", rows))
    assert data.events["event_type"].unique().tolist() == ["rating"]
    assert data.events["value"].between(1, 5).all() and data.events["item_id"].nunique() == 10
