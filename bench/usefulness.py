"""Usefulness of segments on real transactions (BENCHMARKS.md §5): do they explain what customers do next?

Split by time: segments are fitted on the calibration period only; each
calibration customer's targets are "bought in the holdout" (0/1) and
log(1 + holdout net spend). A segmentation is scored by segment means learned on
a random half of the customers and predicting the other half
(tools/segment/usefulness.py): AUC for the purchase target, R² for log spend,
median over 10 halvings, both halves each way.

Baselines in the same run: RFM quintiles mapped to the usual named groups, and
KMeans (n_init=10) on standardised log recency, log frequency (orders) and log
net spend with the same k as the segscope level it is set against. Stability is
the median ARI between runs with different seeds.

    python -m bench.usefulness                                   # CDNOW (../shared/data) + the sample
    python -m bench.usefulness --online-retail PATH --completejourney PATH --embedder minilm
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ext_data, median, save, shared_data

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class TransactionLog:
    """Purchase lines of one dataset, and where calibration ends and the holdout ends.

    lines: user_id, order_id, timestamp (datetime64), item_id, title, event_type, net
    (the line's value net of returns: negative for a return). Views and other
    non-purchase events may be present (event_type other than "purchase"/"return");
    they count for the segmentation but not for the targets.
    """

    name: str
    lines: pd.DataFrame
    cut: pd.Timestamp
    end: pd.Timestamp
    protocol: str
    source: Source | None = None  # the file as published, which segscope reads itself


@dataclass(frozen=True)
class Source:
    """The published file's rows and each row's time, so the calibration rows can be written as they came.

    segscope's own ingest then reads them (quantity × price, returns netted, orders, skipped rows):
    the benchmark measures what a user gets, not a pre-cleaned table. ``files`` are copied beside
    (a catalogue), and the folder is what ``load_dataset`` is given; ``name`` is the events file's.
    """

    name: str
    rows: pd.DataFrame
    time: pd.Series  # aligned with rows; NaT rows are written too (ingest counts them)
    sep: str = ","
    files: tuple[Path, ...] = ()


# ---------------------------------------------------------------- readers
def read_cdnow(path: Path) -> TransactionLog:
    """CDNOW master: first 39 weeks from 1997-01-01 to fit, the next 39 to score."""
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    ts = pd.to_datetime(raw["date"], format="%Y%m%d")
    lines = pd.DataFrame(
        {
            "user_id": raw["customer_id"],
            "order_id": raw["customer_id"] + "-" + raw["date"],  # one purchase occasion per customer and day
            "timestamp": ts,
            "item_id": "cd",
            "title": None,
            "event_type": "purchase",
            "quantity": raw["number_of_cds"],
            "net": raw["dollar_value"].astype(float),
        }
    )
    cut = pd.Timestamp("1997-01-01") + 39 * 7 * DAY
    source = Source("CDNOW_master.txt", raw, ts, sep=" ")  # whitespace-separated, as shipped
    return TransactionLog("CDNOW", lines, cut, cut + 39 * 7 * DAY, "39 weeks from 1997-01-01 / next 39 weeks", source)


def read_online_retail(path: Path) -> TransactionLog:
    """UCI Online Retail: rows with a customer id; line net = quantity × unit price (returns negative)."""
    published = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str}, encoding="latin-1")
    source = Source("transactions.csv", published, pd.to_datetime(published["InvoiceDate"]))
    raw = published[published["CustomerID"].notna()].copy()
    raw["CustomerID"] = raw["CustomerID"].str.replace(r"\.0$", "", regex=True)
    net = raw["Quantity"].astype(float) * raw["UnitPrice"].astype(float)
    lines = pd.DataFrame(
        {
            "user_id": raw["CustomerID"],
            "order_id": raw["InvoiceNo"],
            "timestamp": pd.to_datetime(raw["InvoiceDate"]),
            "item_id": raw["StockCode"],
            "title": raw["Description"],
            "event_type": np.where(net < 0, "return", "purchase"),
            "quantity": raw["Quantity"],
            "net": net,
        }
    )
    return _last_90_days("Online Retail", lines, source)


def read_completejourney(path: Path) -> TransactionLog:
    """dunnhumby Complete Journey sample: sales_value is the line total; products.csv beside it gives titles."""
    raw = pd.read_csv(path, dtype={"household_id": str, "basket_id": str, "product_id": str})
    titles = None
    products = path.parent / "products.csv"
    if products.exists():
        p = pd.read_csv(products, dtype={"product_id": str})
        text = (p["product_category"].fillna("") + " " + p["product_type"].fillna("")).str.strip().str.lower()
        titles = dict(zip(p["product_id"], text))
    lines = pd.DataFrame(
        {
            "user_id": raw["household_id"],
            "order_id": raw["basket_id"],
            "timestamp": pd.to_datetime(raw["transaction_timestamp"]),
            "item_id": raw["product_id"],
            "title": raw["product_id"].map(titles) if titles else None,
            "event_type": np.where(raw["sales_value"] < 0, "return", "purchase"),
            "quantity": raw["quantity"],
            "net": raw["sales_value"].astype(float),
        }
    )
    source = Source("transactions.csv", raw, pd.to_datetime(raw["transaction_timestamp"]),
                    files=(products,) if products.exists() else ())
    return _last_90_days("Complete Journey (sample)", lines, source)


def read_sample(folder: Path) -> TransactionLog:
    """The bundled sample: every event type is kept for the segmentation; purchases are the targets."""
    ev = pd.read_csv(folder / "events.csv", dtype={"user_id": str, "item_id": str})
    ts = pd.to_datetime(ev["timestamp"], unit="s")
    lines = pd.DataFrame(
        {
            "user_id": ev["user_id"],
            "order_id": ev["user_id"] + "-" + ev["timestamp"].astype(str),
            "timestamp": ts,
            "item_id": ev["item_id"],
            "title": None,
            "event_type": ev["event_type"],
            "quantity": 1,
            "net": np.where(ev["event_type"] == "purchase", ev["value"], 0.0),
            "value": ev["value"],
            "text": ev["text"],
        }
    )
    files = tuple(folder / f for f in ("items.csv", "users.csv") if (folder / f).exists())  # copied as they are
    return _last_90_days("sample (segscope sample --seed 7)", lines, Source("events.csv", ev, ts, files=files))


def _last_90_days(name: str, lines: pd.DataFrame, source: Source | None = None) -> TransactionLog:
    end = lines["timestamp"].max()
    return TransactionLog(name, lines, end - 90 * DAY, end, "all but the last 90 days / the last 90 days", source)


# ---------------------------------------------------------------- targets and RFM
@dataclass(frozen=True)
class Customers:
    """Calibration customers (sorted ids) with their calibration RFM and holdout targets."""

    user_ids: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray  # orders
    spend: np.ndarray  # net, calibration
    bought: np.ndarray  # 0/1, holdout
    log_spend: np.ndarray  # log(1 + max(0, holdout net spend))


def customers(log: TransactionLog) -> Customers:
    lines = log.lines
    cal = lines[lines["timestamp"] < log.cut]
    hold = lines[(lines["timestamp"] >= log.cut) & (lines["timestamp"] < log.end + DAY)]
    ids = np.sort(cal["user_id"].unique())
    buys = cal[cal["event_type"] == "purchase"]
    last = buys.groupby("user_id")["timestamp"].max().reindex(ids)
    last = last.fillna(cal.groupby("user_id")["timestamp"].max().reindex(ids))  # users who never bought: last activity
    recency = ((log.cut - last) / DAY).to_numpy(dtype=float)
    freq = buys.groupby("user_id")["order_id"].nunique().reindex(ids).fillna(0).to_numpy(dtype=float)
    money = cal[cal["event_type"].isin(["purchase", "return"])].groupby("user_id")["net"].sum().reindex(ids).fillna(0.0)
    hold_buy = hold[hold["event_type"] == "purchase"]
    bought = pd.Index(ids).isin(hold_buy["user_id"].unique()).astype(float)
    hold_net = hold[hold["event_type"].isin(["purchase", "return"])].groupby("user_id")["net"].sum().reindex(ids).fillna(0.0)
    return Customers(ids, recency, freq, money.to_numpy(dtype=float), bought, np.log1p(np.clip(hold_net.to_numpy(dtype=float), 0, None)))


def _quintile(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Scores 1-5 by quintile of rank, ties broken by row order (the customers are sorted by id)."""
    ranks = pd.Series(values if higher_is_better else -values).rank(method="first").to_numpy()
    return np.ceil(5 * ranks / len(ranks)).astype(int).clip(1, 5)


def rfm_groups(recency: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """The usual RFM segment names from recency and frequency quintile scores (5 = most recent / most frequent)."""
    r, f = _quintile(recency, higher_is_better=False), _quintile(frequency, higher_is_better=True)
    out = np.empty(len(r), dtype=object)
    for i, (ri, fi) in enumerate(zip(r, f)):
        if ri <= 2:
            out[i] = ("Lost" if ri == 1 and fi == 1 else "Hibernating") if fi <= 2 else ("At risk" if fi <= 4 else "Can't lose")
        elif ri == 3:
            out[i] = "About to sleep" if fi <= 2 else ("Need attention" if fi == 3 else "Loyal")
        elif fi >= 4:
            out[i] = "Champions" if ri == 5 else "Loyal"
        elif fi >= 2:
            out[i] = "Potential loyal"
        else:
            out[i] = "New" if ri == 5 else "Promising"
    return out


def log_rfm_kmeans(c: Customers, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    x = np.column_stack([np.log1p(c.recency_days), np.log1p(c.frequency), np.log1p(np.clip(c.spend, 0, None))])
    x = StandardScaler().fit_transform(x)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


# ---------------------------------------------------------------- segscope on the calibration period
def calibration_folder(log: TransactionLog, folder: Path) -> Path:
    """The published file's calibration rows (and its catalogue), in its own layout: the path to give ``load_dataset``."""
    if log.source is None:
        raise ValueError(f"{log.name}: no source file to write")
    folder.mkdir(parents=True, exist_ok=True)
    src = log.source
    keep = ~(src.time >= log.cut).to_numpy()  # rows after the cut are the holdout; unparsable times stay for ingest
    src.rows[keep].to_csv(folder / src.name, index=False, sep=src.sep)
    for extra in src.files:
        shutil.copyfile(extra, folder / extra.name)
    return folder if src.files else folder / src.name  # a lone file is read as one, whatever its name


def segscope_levels(data, ws: Path, seed: int, embedder, k) -> dict[str, pd.Series]:
    """Run segscope; its levels as Series indexed by user id: 'top' and 'leaf' (equal when flat)."""
    from tools.pipeline import RunParams, segment_dataset

    run = segment_dataset(data, ws, RunParams(k=k, seed=seed, embedder=embedder.name), embedder=embedder, write_store=False)
    table = pd.read_csv(ws / "assignments.csv", dtype=str).set_index("user_id")
    leaf = table["segment_id"]
    top = table.get("top_segment_id", leaf)
    return {"top": top, "leaf": leaf, "summary": run.summary}


def _stability(label_sets: list[np.ndarray]) -> float:
    from sklearn.metrics import adjusted_rand_score

    pairs = [adjusted_rand_score(a, b) for a, b in itertools.combinations(label_sets, 2)]
    return round(median(pairs), 4) if pairs else float("nan")


def _row(name: str, k: int, scores: list, stability: float | None) -> dict:
    return {
        "method": name,
        "k": k,
        "auc": round(median([s.auc for s in scores]), 4),
        "r2": round(median([s.r2 for s in scores]), 4),
        "stability_ari": stability,
    }


def evaluate(log: TransactionLog, embedder, seeds=(0, 1, 2), k="auto") -> dict:
    from tools.data.ingest import load_dataset
    from tools.segment.usefulness import usefulness

    c = customers(log)
    with tempfile.TemporaryDirectory(prefix="segscope-useful-") as scratch:
        tmp = Path(scratch)
        data = load_dataset(calibration_folder(log, tmp / "data"))
        runs = [segscope_levels(data, tmp / f"ws{s}", s, embedder, k) for s in seeds]
    out: dict = {
        "dataset": log.name,
        "protocol": log.protocol,
        "cut": str(log.cut.date()),
        "customers": len(c.user_ids),
        "holdout_buyers_share": round(float(c.bought.mean()), 4),
        "k_selection": runs[0]["summary"].get("k_selection", {}).get("reason") if runs[0]["summary"].get("k_selection") else None,
        "rows": [],
    }
    rows = out["rows"]
    rfm = rfm_groups(c.recency_days, c.frequency)
    rows.append(_row("RFM named groups", len(set(rfm)), [usefulness(rfm, c.bought, c.log_spend)], None))
    # A one-level run (no sub-segments, or segments cut from everyone when no top level is reproducible):
    # its only level is the default segmentation.
    flat = all((r["top"] == r["leaf"]).all() for r in runs)
    for level in ("one",) if flat else ("top", "leaf"):
        column = "top" if level == "top" else "leaf"
        sets = [r[column].reindex(c.user_ids).to_numpy() for r in runs]
        k_level = len(set(sets[0]))
        rows.append(_row(f"segscope ({level} level)", k_level, [usefulness(s, c.bought, c.log_spend) for s in sets], _stability(sets))
                    | {"k_per_seed": [len(set(s)) for s in sets]})
        km = [log_rfm_kmeans(c, k_level, s) for s in seeds]
        rows.append(_row(f"KMeans log-RFM (k={k_level})", k_level, [usefulness(m, c.bought, c.log_spend) for m in km], _stability(km)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = shared_data()
    parser.add_argument("--cdnow", type=Path, default=None if root is None else root / "cdnow" / "CDNOW_master.txt")
    parser.add_argument("--online-retail", type=Path, default=ext_data("online_retail"))
    parser.add_argument("--completejourney", type=Path, default=ext_data("completejourney"))
    parser.add_argument("--no-sample", action="store_true")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--k", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="usefulness", help="result file name under bench/results/")
    args = parser.parse_args()
    from tools.data.sample import generate_sample
    from tools.embed.embedding import make_embedder

    embedder = make_embedder(args.embedder)
    result: dict = {"embedder": embedder.name, "datasets": [], "skipped": []}
    sources = [("CDNOW", args.cdnow, read_cdnow), ("Online Retail", args.online_retail, read_online_retail),
               ("Complete Journey", args.completejourney, read_completejourney)]
    logs = []
    if args.cdnow is None:
        result["skipped"].append("CDNOW: ../shared/data is absent (set SEGSCOPE_SHARED_DATA or pass --cdnow)")
    for label, path, reader in sources:
        if path is None:
            continue
        if not Path(path).exists():
            result["skipped"].append(f"{label}: {path} is absent")
            print(f"skipping {label}: {path} is absent")
            continue
        logs.append(reader(Path(path)))
    k = args.k if args.k == "auto" else int(args.k)
    with tempfile.TemporaryDirectory(prefix="segscope-useful-sample-") as scratch:
        if not args.no_sample:
            generate_sample(Path(scratch) / "shop", seed=7)
            logs.append(read_sample(Path(scratch) / "shop"))
        for log in logs:
            print(f"== {log.name}", flush=True)
            result["datasets"].append(evaluate(log, embedder, tuple(args.seeds), k))
    save(args.name, result)


if __name__ == "__main__":
    main()
