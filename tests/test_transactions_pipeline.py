"""Transaction logs through the whole pipeline and the CLI: item-less segments, the run's data block, --strict, CDNOW."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from tools.core.run_state import load_run
from tools.data.ingest import load_dataset
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset

BIN = Path(sys.executable).parent / "segscope"
PARAMS = RunParams(seed=0, embedder="hashing-64")


def cdnow_like(path: Path, n: int = 160, seed: int = 0) -> dict[str, int]:
    """Whitespace-separated customer/date/units/dollars lines (no items) for two planted groups; customer -> group."""
    rng = np.random.default_rng(seed)
    lines, truth = [" customer_id  date number_of_cds  dollar_value"], {}
    start = pd.Timestamp("1997-01-01")
    for c in range(n):
        heavy = c % 2 == 0
        cid = f"{c + 1:05d}"
        truth[cid] = int(heavy)
        days = sorted(rng.choice(540, size=int(rng.integers(8, 15)) if heavy else 1, replace=False))
        if not heavy:
            days = [int(rng.integers(0, 60))]  # one early order, then gone
        for d in days:
            units = int(rng.integers(3, 7)) if heavy else 1
            price = rng.uniform(14, 16)
            lines.append(f" {cid} {(start + pd.Timedelta(days=int(d))).strftime('%Y%m%d')}  {units}   {units * price:.2f}")
    path.write_text("\r\n".join(lines) + "\r\n")
    return truth


def retail_like(path: Path, n: int = 120, seed: int = 1) -> None:
    """An invoice log: C-invoices for returns, a country per customer, and lines without a customer id."""
    rng = np.random.default_rng(seed)
    rows, invoice = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"], 500000
    for c in range(n):
        wholesale = c % 3 == 0
        country = "France" if wholesale else "United Kingdom"
        for _ in range(int(rng.integers(6, 10)) if wholesale else int(rng.integers(1, 3))):
            invoice += 1
            when = pd.Timestamp("2011-01-01") + pd.Timedelta(hours=int(rng.integers(0, 24 * 300)))
            for line in range(int(rng.integers(2, 5))):
                qty = int(rng.integers(24, 48)) if wholesale else int(rng.integers(1, 4))
                rows.append(f"{invoice},S{line},ITEM {line},{qty},{when:%m/%d/%Y %H:%M},2.50,{12000 + c},{country}")
            if wholesale and rng.random() < 0.3:
                rows.append(f"C{invoice},S0,ITEM 0,-5,{when + pd.Timedelta(days=2):%m/%d/%Y %H:%M},2.50,{12000 + c},{country}")
        rows.append(f"{invoice},S9,ITEM 9,1,{when:%m/%d/%Y %H:%M},1.00,,{country}")  # no customer id
    path.write_text("\n".join(rows) + "\n")


def test_transactions_without_items_segment_on_behaviour_alone(tmp_path: Path) -> None:
    truth = cdnow_like(tmp_path / "cdnow.txt")
    data = load_dataset(tmp_path / "cdnow.txt")
    run = segment_dataset(data, tmp_path / "ws", RunParams(seed=0, embedder="hashing-64", k=2), embedder=HashingEmbedder())
    s = run.summary
    assert s["parameters"]["text_source"] == "none" and s["parameters"]["alpha"] == 0.0
    assert {"frequency", "recency_days", "monetary", "avg_order_value", "basket_size", "tenure_days", "median_gap_days"} <= set(
        s["parameters"]["behaviour_features"]
    )
    state = load_run(tmp_path / "ws")
    assert state.fused.shape[1] == len(s["parameters"]["behaviour_features"]) + 1  # one empty text column, not 64
    labels = dict(zip(state.user_ids.tolist(), state.labels.tolist()))
    assert adjusted_rand_score([truth[u] for u in labels], list(labels.values())) > 0.9
    money = [t for seg in s["segments"] for t in seg["traits"] if t["unit"] == "money"]
    assert money and all(t["currency"] == "$" for t in money)
    d = s["data"]
    assert (d["entity"], d["currency"], d["spend"], d["skipped"], d["returns"]) == ("user", "$", "amount column dollar_value", {}, 0)
    assert all(seg["name"] for seg in s["segments"])


def test_the_run_records_skipped_rows_returns_attributes_and_keeps_the_users_table(tmp_path: Path) -> None:
    retail_like(tmp_path / "retail.csv")
    data = load_dataset(tmp_path / "retail.csv")
    run = segment_dataset(data, tmp_path / "ws", PARAMS, embedder=HashingEmbedder())
    d = run.summary["data"]
    assert d["skipped"] == {"missing user_id": 120} and d["returns"] == int((data.events["event_type"] == "return").sum()) > 0
    assert d["spend"] == "Quantity × UnitPrice" and d["user_attributes"] == ["Country"] and d["entity_reason"] is None
    assert "Country" not in " ".join(run.summary["parameters"]["behaviour_features"])  # never a clustering input
    restored = load_run(tmp_path / "ws").data
    assert restored.users is not None and set(restored.users["Country"]) == {"France", "United Kingdom"}
    assert restored.skipped == {"missing user_id": 120} and restored.spend == "Quantity × UnitPrice"
    # The wholesale (French) customers form their own segment, and its attributes say so.
    cited = [a for seg in run.summary["segments"] for a in seg["attributes"] if a["value"] == "France"]
    assert cited and max(a["segment_share"] for a in cited) > 0.8


def test_sessions_chosen_automatically_are_recorded_in_the_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = ["session_id;user_id;item_id;timeframe;eventdate"]
    for s in range(1, 121):
        user = str(s % 7) if s % 4 == 0 else "NA"
        for _ in range(int(rng.integers(2, 6)) if s % 2 else int(rng.integers(8, 14))):
            rows.append(f"{s};{user};{int(rng.integers(1, 40))};{int(rng.integers(0, 10**6))};2016-05-{1 + s % 28:02d}")
    (tmp_path / "views.csv").write_text("\n".join(rows) + "\n")
    run = segment_dataset(load_dataset(tmp_path / "views.csv"), tmp_path / "ws", PARAMS, embedder=HashingEmbedder())
    d = run.summary["data"]
    assert d["entity"] == "session" and d["n_users"] == 120 and d["skipped"] == {}
    missing = sum(";NA;" in row for row in rows) / (len(rows) - 1)
    assert missing > 0.5 and d["entity_reason"] == f"the user id (user_id) is missing on {missing:.0%} of rows"
    assert any("segmenting sessions" in w for w in d["warnings"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "segment", *args, "--embedder", "hashing", "--json"], capture_output=True, text=True, timeout=300, check=False)


def test_strict_refuses_rows_without_the_user_id_and_the_default_counts_them(tmp_path: Path) -> None:
    retail_like(tmp_path / "retail.csv", n=60)
    proc = _cli("--data", str(tmp_path / "retail.csv"), "--workspace", str(tmp_path / "strict"), "--strict")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and not (tmp_path / "strict").exists(), proc.stderr
    assert "60 of" in lines[0] and "have no user id" in lines[0] and "CustomerID" in lines[0]
    proc = _cli("--data", str(tmp_path / "retail.csv"), "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["skipped"] == {"missing user_id": 60}
    assert " ".join(proc.stderr.split()).count("skipped 60 of") == 1  # once, however the console wrapped the line (its path)


def test_entity_flag_reaches_the_loader(tmp_path: Path) -> None:
    (tmp_path / "views.csv").write_text("session_id,user_id,item_id\n" + "".join(f"{s},u{s % 9},{s % 11}\n" for s in range(300)))
    proc = _cli("--data", str(tmp_path / "views.csv"), "--workspace", str(tmp_path / "ws"), "--entity", "session")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["entity"] == "session"
    proc = _cli("--data", str(tmp_path / "views.csv"), "--workspace", str(tmp_path / "bad"), "--entity", "household")
    assert proc.returncode == 2 and "--entity 'household'" in proc.stderr and not (tmp_path / "bad").exists()


def test_real_cdnow_file_needs_no_mapping(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "cdnow" / "CDNOW_master.txt"
    data = load_dataset(path)
    assert (data.n_users, len(data.events), data.currency, data.spend) == (23570, 69659, "$", "amount column dollar_value")
    assert data.events["timestamp"].min() == pd.Timestamp("1997-01-01", tz="UTC").timestamp() and data.warnings == ()
    run = segment_dataset(data, tmp_path / "ws", PARAMS, embedder=HashingEmbedder())
    traits = [t for seg in run.summary["segments"] for t in seg["traits"]]
    assert {t["unit"] for t in traits} >= {"days", "money"} and run.summary["k"] >= 2
    assert all(t.get("currency") == "$" for t in traits if t["unit"] == "money")
    state = load_run(tmp_path / "ws")
    orders = state.feature_raw[:, list(state.feature_names).index("frequency")]
    days = data.events.groupby(["user_id", "timestamp"]).ngroups
    assert orders.sum() == days < len(data.events)  # orders: a customer's lines of one day are one order
