"""Behaviour in order (tools/segment/sequence.py): the same events in another order are another behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import DAY, REFERENCE, dataset_from_frames

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.data.sample_order import ORDER_SEGMENT, ORDER_VARIANTS
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import HashingEmbedder
from tools.segment.features import compute_features, feature_label, layout_of
from tools.segment.profiles import build_profiles
from tools.segment.sequence import ORDER_WEIGHT, SESSION_GAP_SECONDS, is_order_feature, order_mask

T0 = REFERENCE + 3600.5  # off midnight: times of day


def _events(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])


def _funnel(user: str, order: list[tuple[str, str]], start: float = T0, gap: float = 60.0) -> list[tuple[str, str, str, float]]:
    return [(user, item, kind, start + j * gap) for j, (item, kind) in enumerate(order)]


ITEM_BY_ITEM = [("i1", "view"), ("i1", "cart"), ("i1", "purchase"), ("i2", "view"), ("i2", "cart"), ("i2", "purchase")]
BROWSE_FIRST = [("i1", "view"), ("i2", "view"), ("i1", "cart"), ("i2", "cart"), ("i1", "purchase"), ("i2", "purchase")]


@pytest.fixture
def reordered():
    """A buys item by item, B browses first: the same items, types, counts and timestamps."""
    return dataset_from_frames(_events(_funnel("A", ITEM_BY_ITEM) + _funnel("B", BROWSE_FIRST)))


def _columns(f) -> dict[str, np.ndarray]:
    return {name: f.raw[:, j] for j, name in enumerate(f.names)}


def test_the_same_events_in_another_order_get_other_order_features_and_the_same_others(reordered):
    f = compute_features(reordered, np.array(["A", "B"], dtype=object))
    col = _columns(f)
    ordered = order_mask(f.names)
    assert ordered.any()
    # Everything order-blind is equal; the order block is not.
    np.testing.assert_array_equal(f.raw[0, ~ordered], f.raw[1, ~ordered])
    np.testing.assert_allclose(col["step_purchase->view"], [1 / 5, 0])
    np.testing.assert_allclose(col["step_view->view"], [0, 1 / 5])
    np.testing.assert_allclose(col["step_cart->purchase"], [2 / 5, 1 / 5])
    np.testing.assert_allclose(col["position_purchase"], [(2 / 5 + 1) / 2, (4 / 5 + 1) / 2])
    np.testing.assert_allclose(col["hours_to_convert"], [120 / 3600, 240 / 3600])
    assert not np.allclose(f.scaled[0], f.scaled[1])
    # Order-blind: the two users are one and the same.
    blind = compute_features(reordered, np.array(["A", "B"], dtype=object), order=False)
    assert not order_mask(blind.names).any()
    np.testing.assert_array_equal(blind.raw[0], blind.raw[1])


def test_sessions_split_on_the_inactivity_gap():
    rows = _funnel("A", [("i1", "view"), ("i2", "view")]) + _funnel("A", [("i1", "cart"), ("i1", "purchase")], start=T0 + 60 + SESSION_GAP_SECONDS + 1)
    rows += _funnel("B", ITEM_BY_ITEM, gap=SESSION_GAP_SECONDS - 1)  # every step within the gap: one long session
    f = compute_features(dataset_from_frames(_events(rows)), np.array(["A", "B"], dtype=object))
    col = _columns(f)
    np.testing.assert_array_equal(col["sessions"], [2, 1])
    np.testing.assert_allclose(col["session_events"], [2, 6])
    np.testing.assert_allclose(col["session_minutes"], [1, 5 * (SESSION_GAP_SECONDS - 1) / 60])
    assert feature_label("session_minutes") == ("minutes per session", "minutes")
    assert feature_label("step_view->cart") == ("share of steps from view to cart", "share")


def test_logs_without_an_order_to_read_gain_no_order_features():
    ratings = _events([(u, f"i{j}", "rating" if j % 2 else "tag", T0 + j * 100.0) for u in "AB" for j in range(4)])
    assert not order_mask(compute_features(dataset_from_frames(ratings), np.array(["A", "B"], dtype=object)).names).any()
    invoices = _events([(u, f"i{j}", "purchase", T0 + j * DAY) for u in "AB" for j in range(4)])
    assert not order_mask(compute_features(dataset_from_frames(invoices), np.array(["A", "B"], dtype=object)).names).any()
    # Dates, not times: a time to convert in days, and no sessions to split.
    dated = _events([(u, it, kind, REFERENCE + j * DAY) for u, order in (("A", ITEM_BY_ITEM), ("B", BROWSE_FIRST))
                     for j, (it, kind) in enumerate(order)])
    names = compute_features(dataset_from_frames(dated), np.array(["A", "B"], dtype=object)).names
    assert "days_to_convert" in names and "hours_to_convert" not in names and "sessions" not in names


def test_a_fitted_layout_computes_the_order_features_of_later_users_exactly_as_the_fit(reordered):
    ids = np.array(["A", "B"], dtype=object)
    fitted = compute_features(reordered, ids)
    layout = layout_of(fitted, reordered.events)
    only_b = dataset_from_frames(reordered.events[reordered.events["user_id"] == "B"])
    later = compute_features(only_b, np.array(["B"], dtype=object), layout=layout)
    assert later.names == fitted.names
    np.testing.assert_array_equal(later.raw[0], fitted.raw[1])
    np.testing.assert_array_equal(later.scaled[0], fitted.scaled[1])
    # An order-blind fit stays order-blind for later users.
    blind = compute_features(reordered, ids, order=False)
    again = compute_features(only_b, np.array(["B"], dtype=object), layout=layout_of(blind, reordered.events))
    assert again.names == blind.names


@pytest.fixture(scope="module")
def order_only(tmp_path_factory):
    folder = tmp_path_factory.mktemp("order") / "data"
    generate_sample(folder, n_users=1200, seed=3, order_only=True)
    return folder


def test_the_order_only_sample_differs_only_in_order(order_only, tmp_path):
    plain = tmp_path / "plain"
    generate_sample(plain, n_users=1200, seed=3)
    a, b = pd.read_csv(order_only / "events.csv"), pd.read_csv(plain / "events.csv")
    truth = pd.read_csv(order_only / "truth.csv")
    assert set(truth["segment"]) >= {f"{ORDER_SEGMENT}_{v}" for v in ORDER_VARIANTS}
    by = ["user_id", "item_id", "event_type", "value", "text"]
    np.testing.assert_array_equal(a.sort_values(by).drop(columns="timestamp").to_numpy(dtype=str),
                                  b.sort_values(by).drop(columns="timestamp").to_numpy(dtype=str))
    assert (np.sort(a["timestamp"].to_numpy()) == np.sort(b["timestamp"].to_numpy())).all()
    moved = a.sort_values(["user_id", "timestamp", "event_type"])["event_type"].to_numpy() != \
        b.sort_values(["user_id", "timestamp", "event_type"])["event_type"].to_numpy()
    assert moved.any()


def _pair_ari(folder, order: bool) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    data = load_dataset(folder)
    truth = pd.read_csv(folder / "truth.csv", dtype=str).set_index("user_id")
    cache = EmbeddingCache(folder / "cache", "hashing")
    profiles = build_profiles(data, HashingEmbedder(), cache, order=order)
    planted = truth.loc[profiles.user_ids.astype(str), "segment"].to_numpy()
    pair = np.char.startswith(planted.astype(str), ORDER_SEGMENT)
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(profiles.fused[pair])
    return adjusted_rand_score(planted[pair], labels)


def test_the_order_only_sample_is_separated_with_the_order_and_not_without(order_only):
    assert _pair_ari(order_only, order=True) >= 0.9
    assert _pair_ari(order_only, order=False) < 0.1


def test_the_order_block_is_weighed_on_its_own_and_leaves_the_other_blocks_as_they_were(order_only):
    data = load_dataset(order_only)
    cache = EmbeddingCache(order_only / "cache", "hashing")
    with_order = build_profiles(data, HashingEmbedder(), cache)
    blind = build_profiles(data, HashingEmbedder(), cache, order=False)
    n_order = int(order_mask(with_order.features.names).sum())
    assert n_order and with_order.fused.shape[1] == blind.fused.shape[1] + n_order
    # Text and behaviour are what they are order-blind: the order adds a block, it dilutes none.
    np.testing.assert_array_equal(with_order.fused[:, :-n_order], blind.fused)
    block = with_order.fused[:, -n_order:].astype(np.float64)
    assert ((block - block.mean(axis=0)) ** 2).sum(axis=1).mean() == pytest.approx(ORDER_WEIGHT, rel=1e-3)
    assert all(is_order_feature(n) for n in with_order.features.names[-n_order:])


def test_order_traits_read_in_their_own_words():
    from tools.explain.wording import fmt_value, measure

    assert fmt_value(2.345, "hours") == "2.3" and fmt_value(36.2, "minutes") == "36"

    def trait(name: str, value: float) -> dict:
        label, unit = feature_label(name)
        return {"feature": name, "label": label, "unit": unit, "segment_value": value}

    assert measure(trait("step_view->cart", 0.4)) == "40% of steps from view to cart"
    assert measure(trait("hours_to_convert", 12.0)) == "12 hours from first visit to first purchase"
    assert measure(trait("sessions", 3.0)) == "3.0 sessions each"
    # An event type named like a transaction feature ("return") is still a step, not the returns family.
    assert measure(trait("step_view->return", 0.1)) == "10% of steps from view to return"


def test_cli_writes_the_order_only_sample_and_segments_it_with_and_without_the_order(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    bin_ = Path(sys.executable).parent / "segscope"

    def segscope(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_), *map(str, args)], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "COLUMNS": "200"})  # fmt: skip

    made = segscope("sample", "--out", tmp_path / "d", "--users", 300, "--order-only")
    assert made.returncode == 0, made.stderr
    assert "7 planted segments" in made.stdout
    assert {f"{ORDER_SEGMENT}_{v}" for v in ORDER_VARIANTS} <= set(pd.read_csv(tmp_path / "d" / "truth.csv")["segment"])
    features = {}
    for flag in ("--order", "--no-order"):
        run = segscope("segment", "--data", tmp_path / "d", "--workspace", tmp_path / f"w{flag}", "--embedder", "hashing", "--k", 3, "--json", flag)
        assert run.returncode == 0, run.stderr
        params = json.loads(run.stdout)["parameters"]
        assert params["order"] is (flag == "--order")
        features[flag] = params["behaviour_features"]
    assert any(is_order_feature(f) for f in features["--order"]) and not any(is_order_feature(f) for f in features["--no-order"])
    assert [f for f in features["--order"] if not is_order_feature(f)] == features["--no-order"]
