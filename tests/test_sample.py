"""The sample generator: files, determinism, data integrity and recoverable segments."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from tools.core.errors import ParameterError
from tools.data.sample import (
    EVENT_TYPES,
    FILES,
    SEGMENT_NAMES,
    SampleSummary,
    generate_sample,
)

HEADERS = {
    "items.csv": "item_id,title,category,description,price",
    "events.csv": "user_id,item_id,event_type,timestamp,value,text",
    "users.csv": "user_id,country,signup_date,age_band",
    "truth.csv": "user_id,segment",
}
PLANNED_SHARES = {"bargain_hunters": 0.30, "fashion_forward": 0.22, "home_and_garden": 0.18,
                  "tech_enthusiasts": 0.14, "book_lovers": 0.10, "lapsed_one_time_buyers": 0.06}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleSummary, dict[str, pd.DataFrame]]:
    summary = generate_sample(tmp_path_factory.mktemp("sample") / "data", n_users=3000, seed=0)
    tables = {name: pd.read_csv(summary.out_dir / name, keep_default_na=False, na_values={"value": [""]})
              for name in FILES}
    return summary, tables


def _bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    a = generate_sample(tmp_path / "a", n_users=300, seed=7)
    b = generate_sample(tmp_path / "b", n_users=300, seed=7)
    c = generate_sample(tmp_path / "c", n_users=300, seed=8)
    assert _bytes(a.out_dir) == _bytes(b.out_dir)
    assert all(_bytes(a.out_dir)[name] != _bytes(c.out_dir)[name] for name in FILES)


def test_files_and_headers(sample) -> None:
    summary, _ = sample
    assert summary.files == FILES
    assert summary.segments == SEGMENT_NAMES and len(set(SEGMENT_NAMES)) == 6
    assert sorted(p.name for p in summary.out_dir.iterdir()) == sorted(FILES)
    for name, header in HEADERS.items():
        assert (summary.out_dir / name).read_text().splitlines()[0] == header


def test_summary_counts_match_the_files(sample) -> None:
    summary, t = sample
    assert (summary.n_users, summary.n_items, summary.n_events) == (3000, 600, len(t["events.csv"]))
    assert len(t["items.csv"]) == 600 and len(t["users.csv"]) == 3000
    assert 9 <= summary.n_events / summary.n_users <= 12


def test_truth_covers_every_user_with_events(sample) -> None:
    _, t = sample
    truth, events, users = t["truth.csv"], t["events.csv"], t["users.csv"]
    assert truth["user_id"].is_unique
    assert set(truth["user_id"]) == set(events["user_id"]) == set(users["user_id"])
    assert set(truth["segment"]) == set(SEGMENT_NAMES)


def test_segment_shares_follow_the_plan(sample) -> None:
    _, t = sample
    shares = t["truth.csv"]["segment"].value_counts(normalize=True)
    for name, planned in PLANNED_SHARES.items():
        assert shares[name] == pytest.approx(planned, abs=0.005)


def test_referential_integrity_and_value_types(sample) -> None:
    _, t = sample
    items, ev = t["items.csv"], t["events.csv"]
    assert items["item_id"].is_unique and set(ev["item_id"]) <= set(items["item_id"])
    assert 8 <= items["category"].nunique() <= 12
    assert (items["price"] > 0).all() and items["title"].str.len().gt(5).all()
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert ev["timestamp"].dtype.kind == "i"
    span = ev["timestamp"].max() - ev["timestamp"].min()
    assert span <= 366 * 86_400

    kind = ev["event_type"]
    assert ev.loc[kind.isin(["view", "cart"]), "value"].isna().all()
    stars = ev.loc[kind.isin(["rating", "review"]), "value"]
    assert stars.between(1, 5).all() and (stars == stars.round()).all()
    paid = ev[kind == "purchase"].merge(items, on="item_id")
    assert np.allclose(paid["value"], paid["price"])
    has_text = ev["text"] != ""
    assert (has_text == (kind == "review")).all()
    assert ev.loc[has_text, "text"].nunique() > 0.5 * has_text.sum()  # fragments, not one canned string


def test_funnel_order_and_ratings_only_for_purchases(sample) -> None:
    _, t = sample
    ev = t["events.csv"]
    first = ev.groupby(["user_id", "item_id", "event_type"])["timestamp"].min().unstack()
    bought = first["purchase"].notna()
    assert (first.loc[bought, "view"] <= first.loc[bought, "cart"]).all()
    assert (first.loc[bought, "cart"] <= first.loc[bought, "purchase"]).all()
    rated = first["rating"].notna() | first["review"].notna()
    assert bought[rated].all()


def test_users_attributes_are_plausible(sample) -> None:
    _, t = sample
    users, ev = t["users.csv"], t["events.csv"]
    signup = pd.to_datetime(users.set_index("user_id")["signup_date"], utc=True)
    first_event = pd.to_datetime(ev.groupby("user_id")["timestamp"].min(), unit="s", utc=True)
    assert (signup <= first_event.reindex(signup.index)).all()
    assert users["country"].nunique() > 3 and users["age_band"].nunique() == 5


def test_segments_differ_in_behaviour(sample) -> None:
    _, t = sample
    ev = t["events.csv"].merge(t["truth.csv"], on="user_id")
    per_user = ev.groupby(["segment", "user_id"])
    last_seen_days = (ev["timestamp"].max() - per_user["timestamp"].max()) / 86_400
    recency = last_seen_days.groupby("segment").median()
    assert recency["lapsed_one_time_buyers"] > 150 > 3 * recency.drop("lapsed_one_time_buyers").max()
    mix = pd.crosstab(ev["segment"], ev["event_type"], normalize="index")
    assert mix["view"].idxmax() == "bargain_hunters"
    assert mix["review"].idxmax() == "book_lovers"
    paid = ev[ev["event_type"] == "purchase"].groupby("segment")["value"].mean()
    assert paid.idxmax() == "tech_enthusiasts" and paid.idxmin() == "bargain_hunters"
    review_len = ev[ev["event_type"] == "review"].groupby("segment")["text"].apply(lambda s: s.str.len().mean())
    assert review_len.idxmax() == "book_lovers"


def _user_features(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Category shares plus behaviour (recency, frequency, spend, event mix, ratings) per user."""
    ev = events.merge(items[["item_id", "category"]], on="item_id")
    per_user = ev.groupby("user_id")
    rated = ev[ev["event_type"].isin(["rating", "review"])].groupby("user_id")["value"]
    behaviour = pd.DataFrame({
        "recency_days": (ev["timestamp"].max() - per_user["timestamp"].max()) / 86_400,
        "log_events": np.log1p(per_user.size()),
        "log_spend": np.log1p(ev[ev["event_type"] == "purchase"].groupby("user_id")["value"].sum()),
        "rating_mean": rated.mean(),
        "rating_std": rated.std(),
    })
    behaviour = behaviour.fillna({"log_spend": 0.0, "rating_mean": behaviour["rating_mean"].mean(), "rating_std": 0.0})
    shares = pd.crosstab(ev["user_id"], ev["category"], normalize="index")
    mix = pd.crosstab(ev["user_id"], ev["event_type"], normalize="index")
    return pd.concat([shares, mix, behaviour], axis=1).fillna(0.0)


def test_planted_segments_are_recoverable_without_embeddings(sample) -> None:
    _, t = sample
    features = _user_features(t["events.csv"], t["items.csv"])
    truth = t["truth.csv"].set_index("user_id")["segment"].reindex(features.index)
    scaled = StandardScaler().fit_transform(features)
    labels = KMeans(n_clusters=len(SEGMENT_NAMES), n_init=10, random_state=0).fit_predict(scaled)
    assert adjusted_rand_score(truth, labels) >= 0.9


def test_plant_gender_adds_a_skewed_gender_and_leaves_every_other_byte_as_it_was(tmp_path: Path) -> None:
    from tools.data.sample import GENDER_ELSEWHERE, GENDER_SKEW

    generate_sample(tmp_path / "plain", n_users=2000, seed=5)
    generate_sample(tmp_path / "gender", n_users=2000, seed=5, plant_gender=True)
    for name in ("items.csv", "events.csv", "truth.csv"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "gender" / name).read_bytes(), name
    users = pd.read_csv(tmp_path / "gender" / "users.csv")
    assert list(users.columns) == HEADERS["users.csv"].split(",") + ["gender"] and set(users["gender"]) == {"F", "M"}
    pd.testing.assert_frame_equal(users.drop(columns="gender"), pd.read_csv(tmp_path / "plain" / "users.csv"))
    truth = pd.read_csv(tmp_path / "gender" / "truth.csv").set_index("user_id")["segment"]
    female = (users.set_index("user_id")["gender"] == "F").groupby(truth).mean()
    assert female[GENDER_SKEW[0]] == pytest.approx(GENDER_SKEW[1], abs=0.05)
    assert all(abs(female[s] - GENDER_ELSEWHERE) < 0.07 for s in SEGMENT_NAMES if s != GENDER_SKEW[0])


def test_rejects_too_few_users_and_items(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        generate_sample(tmp_path / "x", n_users=9)
    assert err.value.hint and "n_users" in err.value.message
    with pytest.raises(ParameterError):
        generate_sample(tmp_path / "x", n_users=100, n_items=10)
    with pytest.raises(ParameterError):
        generate_sample(tmp_path / "x", n_users=100, seed=-1)
    assert not (tmp_path / "x").exists()


def test_writes_into_existing_directory_without_touching_other_files(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "truth.csv").write_text("stale")
    calls: list[tuple[int, int]] = []
    generate_sample(out, n_users=50, progress=lambda done, total: calls.append((done, total)))
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "truth.csv").read_text().startswith("user_id,segment\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary directory left behind
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == calls[-1][1]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_sample(empty, n_users=10, n_items=50).out_dir == empty.resolve()
    assert sorted(p.name for p in empty.iterdir()) == sorted(FILES)


def test_scales_to_tens_of_thousands_of_users(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate_sample(tmp_path / "big", n_users=20_000, n_items=4_000, seed=3)
    elapsed = time.perf_counter() - started
    assert 9 <= summary.n_events / summary.n_users <= 12
    assert elapsed < 10
