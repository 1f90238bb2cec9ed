"""Outliers (tools/data/outliers.py): each rule on its own, what it leaves alone, the planted bots, and the real logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import DAY, REFERENCE, dataset_from_frames

from tools.core.errors import ParameterError
from tools.data.ingest import load_dataset
from tools.data.outliers import MAX_RULE_SHARE, detect_outliers, outliers_line
from tools.data.sample import generate_sample
from tools.data.sample_bots import BOT_KINDS

N_PEOPLE = 200


def people(seed: int = 0, n: int = N_PEOPLE) -> list[dict]:
    """Ordinary users: 5-20 events each on a 300-item catalogue, hours to days apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n):
        t = REFERENCE - int(rng.integers(30, 300)) * DAY
        for _ in range(int(rng.integers(5, 21))):
            t += int(rng.integers(3600, 3 * DAY))
            rows.append({"user_id": f"p{u:03d}", "item_id": f"i{int(rng.integers(0, 300))}", "event_type": "view",
                         "timestamp": float(t)})  # fmt: skip
    return rows


def events(*extra: list[dict], seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame([row for rows in (people(seed), *extra) for row in rows])


def user(uid: str, times, items, event_type: str = "view", **more) -> list[dict]:
    return [{"user_id": uid, "item_id": i, "event_type": event_type, "timestamp": float(t), **more} for t, i in zip(times, items)]


def flags(frame: pd.DataFrame) -> dict[str, str]:
    found = detect_outliers(dataset_from_frames(frame))
    return {str(u): str(r) for u, r in zip(found.user_ids, found.reasons) if r}


def spaced(n: int, gap: float, start: float = REFERENCE - 40 * DAY) -> np.ndarray:
    return start + gap * np.arange(n)


def test_event_volume_flags_the_far_tail_not_a_heavy_user():
    crawler = user("crawler", spaced(600, 45.0), [f"i{j % 300}" for j in range(600)])
    heavy = user("heavy", spaced(60, 4 * 3600.0), [f"i{j}" for j in range(60)])  # 5x the median, spread out
    assert flags(events(crawler, heavy)) == {"crawler": "event_volume"}


def test_event_volume_has_a_floor_when_everyone_has_the_same_count():
    same = [row for u in range(100) for row in user(f"s{u}", spaced(40, DAY / 4), [f"i{j}" for j in range(40)])]
    few_more = user("few_more", spaced(120, DAY / 4), [f"i{j}" for j in range(120)])  # 3x: below the floor's 4.5x
    many_more = user("many_more", spaced(250, DAY / 4), [f"i{j}" for j in range(250)])
    assert flags(pd.DataFrame(same + few_more + many_more)) == {"many_more": "event_volume"}


def test_event_volume_never_flags_fewer_than_a_hundred_events():
    # Most sessions buy one line: statistically 20-60 lines are the far tail, but a person buys that much.
    ones = [row for u in range(300) for row in user(f"o{u}", [REFERENCE - u * 3600.0], [f"i{u % 300}"], event_type="purchase")]
    big = [row for u, n in enumerate((20, 35, 60)) for row in user(f"big{u}", spaced(n, 30.0), [f"i{j}" for j in range(n)], event_type="purchase")]
    huge = user("huge", spaced(150, 30.0), [f"i{j}" for j in range(150)], event_type="purchase")
    assert flags(pd.DataFrame(ones + big + huge)) == {"huge": "event_volume"}


def test_single_item_flags_a_hammered_page_not_a_favourite():
    hammer = user("hammer", spaced(30, 900.0), ["i7"] * 25 + [f"i{j}" for j in range(5)])
    fan = user("fan", spaced(70, 6 * 3600.0), ["i9"] * 20 + [f"i{j}" for j in range(50)])  # 20 on one item, 29% of theirs
    few = user("few", spaced(12, 900.0), ["i3"] * 12)  # all on one item, but 12 events
    assert flags(events(hammer, fan, few)) == {"hammer": "single_item"}


def test_inhuman_timing_flags_sustained_clicking_not_a_form_or_an_order():
    rapid = user("rapid", spaced(70, 0.5), [f"i{j}" for j in range(70)])  # 2 a second for 35 seconds
    form = user("form", [REFERENCE - 9 * DAY] * 50 + [REFERENCE - 9 * DAY + 1] * 30, [f"i{j}" for j in range(80)],
                event_type="rating", value=4.0)  # 80 ratings saved in 2 seconds: a form, not a hand
    basket = user("basket", spaced(100, 0.2), [f"i{j}" for j in range(100)], event_type="purchase", order_id="o1", value=3.0)
    assert flags(events(rapid, form, basket)) == {"rapid": "inhuman_timing"}


def test_timing_rules_are_off_when_timestamps_are_not_to_the_second():
    frame = events(user("rapid", spaced(70, 0.5), [f"i{j}" for j in range(70)]))
    frame["timestamp"] = (frame["timestamp"] // 60) * 60  # stamped to the minute
    found = detect_outliers(dataset_from_frames(frame))
    assert found.count == 0
    rules = {r.code: r for r in found.rules}
    assert rules["event_volume"].applied and rules["single_item"].applied
    for code in ("inhuman_timing", "duplicate_bursts"):
        assert not rules[code].applied and "not to the second" in rules[code].note


def test_duplicate_bursts_flag_repeats_not_an_order_listing_a_product_twice():
    t0 = REFERENCE - 20 * DAY
    times = [t0 + DAY * b + 0.5 * r for b in range(4) for r in range(4)]  # 4 bursts of 4 identical carts
    dup = user("dup", times, [f"i{b}" for b in range(4) for _ in range(4)], event_type="cart")
    dup += user("dup", spaced(10, DAY, t0 + 0.3), [f"i{50 + j}" for j in range(10)])
    order = user("order", [t0 + j for j in range(14)], ["i5"] * 14, event_type="purchase", order_id="o9", value=2.0)
    order += user("order", spaced(10, DAY), [f"i{60 + j}" for j in range(10)])
    tags = [{"user_id": "tagger", "item_id": "i8", "event_type": "tag", "timestamp": float(t0), "text": f"tag {j}"} for j in range(15)]
    tags += user("tagger", spaced(10, DAY), [f"i{70 + j}" for j in range(10)])
    assert flags(events(dup, order, tags)) == {"dup": "duplicate_bursts"}


def test_a_rule_that_would_flag_too_many_is_not_applied():
    # A quarter of the users watch one page all day: that is this data, not outliers.
    watchers = [row for u in range(60) for row in user(f"w{u}", spaced(30, 600.0), ["i1"] * 30)]
    found = detect_outliers(dataset_from_frames(events(watchers)))
    rule = next(r for r in found.rules if r.code == "single_item")
    assert not rule.applied and f"more than {MAX_RULE_SHARE:.0%}" in rule.note
    assert "single_item" not in "".join(found.reasons)


def test_text_only_data_is_never_flagged():
    frame = pd.DataFrame({"user_id": [str(i) for i in range(100)], "event_type": "text", "text": ["same words"] * 100})
    found = detect_outliers(dataset_from_frames(frame, kind="text"))
    assert found.count == 0 and not any(r.applied for r in found.rules)
    assert outliers_line(found.as_dict(kept_in_fit=False)) is None


def test_the_summary_block_counts_reasons_and_names_examples():
    crawler = user("crawler", spaced(600, 45.0), [f"i{j % 300}" for j in range(600)])
    hammer = user("hammer", spaced(30, 900.0), ["i7"] * 25 + [f"i{j}" for j in range(5)])
    block = detect_outliers(dataset_from_frames(events(crawler, hammer))).as_dict(kept_in_fit=False)
    assert block["count"] == 2 and block["by_reason"] == {"event_volume": 1, "single_item": 1}
    assert [e["user_id"] for e in block["examples"]] == ["crawler", "hammer"]
    assert block["examples"][1]["detail"] == "25 of 30 events on item i7"
    assert "2 users" in outliers_line(block) and "left out of the fit" in outliers_line(block)


# -- the planted bots --------------------------------------------------------------------------------


def test_sample_bots_are_planted_among_the_same_people(tmp_path):
    with_bots = generate_sample(tmp_path / "b", n_users=500, seed=4, bots=0.06)
    generate_sample(tmp_path / "p", n_users=470, seed=4, n_items=with_bots.n_items)
    assert with_bots.n_bots == 30
    truth = pd.read_csv(tmp_path / "b" / "truth.csv", keep_default_na=False)
    bots = truth[truth["segment"] == "bot"]
    assert len(bots) == 30 and set(bots["bot_type"]) == set(BOT_KINDS)
    ev = pd.read_csv(tmp_path / "b" / "events.csv")
    people_ev = ev[~ev["user_id"].isin(bots["user_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(people_ev, pd.read_csv(tmp_path / "p" / "events.csv"))
    users = pd.read_csv(tmp_path / "b" / "users.csv")
    assert set(users["user_id"]) == set(truth["user_id"])
    pd.testing.assert_frame_equal(users[~users["user_id"].isin(bots["user_id"])], pd.read_csv(tmp_path / "p" / "users.csv"))

    found = detect_outliers(load_dataset(tmp_path / "b"))
    reasons = pd.Series(found.reasons, index=found.user_ids)
    flagged = set(reasons[reasons != ""].index)
    assert flagged <= set(bots["user_id"]), "no person is flagged"
    assert len(flagged) >= 0.9 * len(bots)
    kinds = bots.set_index("user_id")["bot_type"]
    caught = {kind: {r for u, r in reasons[kinds.index].items() if kinds[u] == kind} for kind in BOT_KINDS}
    # Each kind is caught by the rule meant for it (some also by the volume rule).
    assert any("single_item" in r for r in caught["hammer"]) and any("inhuman_timing" in r for r in caught["rapid"])
    assert any("duplicate_bursts" in r for r in caught["duplicator"]) and any("event_volume" in r for r in caught["crawler"])


def test_sample_bots_and_a_planted_gender_go_together(tmp_path):
    generate_sample(tmp_path / "b", n_users=300, seed=3, bots=0.05, plant_gender=True)
    generate_sample(tmp_path / "p", n_users=285, seed=3, n_items=100, plant_gender=True)
    users = pd.read_csv(tmp_path / "b" / "users.csv")
    assert users["gender"].isin(["F", "M"]).all() and len(users) == 300  # the bots have one too
    # The people (ids before the bots') are exactly those of the sample without bots, genders included.
    pd.testing.assert_frame_equal(users.iloc[:285], pd.read_csv(tmp_path / "p" / "users.csv"))


def test_sample_without_bots_has_no_bot_column(tmp_path):
    generate_sample(tmp_path / "s", n_users=60, seed=1)
    assert list(pd.read_csv(tmp_path / "s" / "truth.csv").columns) == ["user_id", "segment"]


@pytest.mark.parametrize("share", [-0.1, 0.9, "0.1", True])
def test_sample_refuses_a_bot_share_that_is_not_one(tmp_path, share):
    with pytest.raises(ParameterError, match="bots"):
        generate_sample(tmp_path / "s", n_users=100, seed=1, bots=share)
    assert not (tmp_path / "s").exists()


# -- real logs: heavy users are not bots ------------------------------------------------------------


def test_no_one_is_flagged_on_movielens(shared_data):
    found = detect_outliers(load_dataset(shared_data / "ml-latest-small"))
    assert all(r.applied for r in found.rules)  # rated to the second: every rule is judged
    assert found.count == 0, found.as_dict(False)["examples"]


def test_no_one_is_flagged_on_cdnow_where_timing_cannot_be_judged(shared_data):
    found = detect_outliers(load_dataset(shared_data / "cdnow" / "CDNOW_master.txt"))
    applied = {r.code for r in found.rules if r.applied}
    assert applied == {"event_volume"} and found.count == 0  # no items, dates only


def test_event_groups_stay_distinct_when_the_combined_codes_would_overflow():
    from tools.data.outliers import _group

    # Spans of 2**40 and 2**24 after the first key: unchecked, its code would be multiplied by 2**64 and vanish.
    first = np.array([0, 1, 0, 1])
    second = np.array([0, 0, 2**40 - 2, 0])
    third = np.array([0, 0, 2**24 - 2, 0])
    ids = _group(first, second, third)
    assert ids[0] != ids[1] and ids[1] == ids[3] and len(np.unique(ids)) == 3


@pytest.mark.parametrize("group_events", [997, 2000])
def test_past_the_group_size_the_per_user_rules_run_by_groups_of_users_with_the_same_result(tmp_path, monkeypatch, group_events):
    """Large data runs the per-user rules a group of users at a time (memory): the same reasons, figures and rules."""
    import tools.data.outliers as outliers

    generate_sample(tmp_path / "b", n_users=500, seed=4, bots=0.06)
    data = load_dataset(tmp_path / "b")
    whole = detect_outliers(data)
    assert (whole.reasons != "").sum() >= 25 and len(data.events) > 4 * group_events
    monkeypatch.setattr(outliers, "GROUP_EVENTS", group_events)
    grouped = detect_outliers(data)
    assert list(grouped.reasons) == list(whole.reasons)
    pd.testing.assert_frame_equal(grouped.figures, whole.figures)
    assert grouped.rules == whole.rules
