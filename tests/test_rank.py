"""rank_users: churn risk, lapsed, spend, tenure, filters, counts and the values it cites."""

from __future__ import annotations

import numpy as np
import pytest

from tools.core.errors import ParameterError
from tools.segment.rank import Filter, rank_users

NAMES = ("frequency", "recency_days", "span_days", "monetary", "purchases")
#            events  days since last  span  spend  purchases
RAW = np.array([
    [20, 60.0, 190.0, 100.0, 4],   # a: came every 10 days, away 60  -> 6x overdue
    [4, 200.0, 300.0, 900.0, 2],   # b: came every 100 days, away 200 -> 2x
    [2, 300.0, 10.0, 5.0, 1],      # c: two events: no rhythm to be overdue on
    [30, 2.0, 290.0, 400.0, 9],    # d: active, every 10 days, away 2 -> 0.2x
    [5, 40.0, 8.0, 50.0, 0],       # e: new (first seen 48 days ago), every 2 days, away 40 -> 20x
])
USERS = np.array(["a", "b", "c", "d", "e"], dtype=object)
LABELS = np.array([0, 0, 1, 1, 1])


def _rank(**kw):
    return rank_users(USERS, LABELS, NAMES, RAW, **kw)


def test_churn_risk_is_days_away_over_the_users_own_rhythm():
    r = _rank(by="churn_risk")
    assert [u.user_id for u in r.users] == ["e", "a", "b", "d"]
    assert r.n_excluded == 1 and r.n_matching == 4  # c has two events: left out, and said so
    a = next(u for u in r.users if u.user_id == "a")
    assert a.values["recency_days"] == 60.0 and a.values["frequency"] == 20 and a.values["typical_gap_days"] == 10.0
    assert a.value == pytest.approx(6.0)
    assert "last active" in r.method and "usual gap" in r.method


def test_lapsed_spend_and_new_customers_in_their_natural_order():
    assert [u.user_id for u in _rank(by="recency_days").users][:2] == ["c", "b"]
    assert [u.user_id for u in _rank(by="spend").users][0] == "b"  # an alias of monetary
    assert [u.user_id for u in _rank(by="monetary", order="asc").users][0] == "c"
    newest = _rank(by="first_seen_days")
    assert newest.order == "asc" and newest.users[0].user_id == "e" and newest.users[0].value == 48.0


def test_filters_count_every_match_and_are_cited():
    r = _rank(filters=[Filter("recency_days", ">", 50)], n=2)
    assert r.n_matching == 3 and len(r.users) == 2  # a count for "how many", the top n listed
    assert r.by == "recency_days" and r.order == "desc"  # no measure: the filter's, in its direction
    assert all("recency_days" in u.values for u in r.users)
    never = _rank(filters=[Filter("purchases", "==", 0)])
    assert [u.user_id for u in never.users] == ["e"]
    both = _rank(by="monetary", filters=[Filter("recency_days", "<=", 60), Filter("purchases", ">=", 4)])
    assert [u.user_id for u in both.users] == ["d", "a"] and set(both.users[0].values) == {"monetary", "recency_days", "purchases"}


def test_a_segment_limits_the_scope():
    r = _rank(by="frequency", segment_id=1)
    assert [u.user_id for u in r.users] == ["d", "e", "c"] and r.n_considered == 3


def test_unknown_measures_and_bad_arguments_are_clear_errors():
    with pytest.raises(ParameterError, match="no such measure"):
        _rank(by="shoe size")
    with pytest.raises(ParameterError, match="comparison"):
        _rank(filters=[Filter("monetary", "~", 3)])
    with pytest.raises(ParameterError, match="purchase events with values"):
        rank_users(USERS, LABELS, ("frequency", "recency_days", "span_days"), RAW[:, :3], by="monetary")
    with pytest.raises(ParameterError, match="timestamps"):
        rank_users(USERS, LABELS, ("frequency",), RAW[:, :1], by="churn_risk")


def test_a_single_burst_is_no_rhythm_and_visits_count_when_the_run_has_them():
    burst = np.vstack([RAW, [[6, 300.0, 0.2, 10.0, 1]]])  # f: six clicks in one afternoon, 300 days ago
    users, labels = np.append(USERS, "f"), np.append(LABELS, 0)
    r = rank_users(users, labels, NAMES, burst, by="churn_risk")
    assert "f" not in [u.user_id for u in r.users] and r.n_excluded == 2
    # With distinct visits (orders) in the run, the rhythm is measured in visits, not events.
    names = NAMES + ("orders",)
    raw = np.column_stack([RAW, [4, 2, 1, 30, 5]])  # a: 4 orders over 190 days -> every 63 days, away 60 -> 0.95x
    r = rank_users(USERS, LABELS, names, raw, by="churn_risk")
    a = next(u for u in r.users if u.user_id == "a")
    assert "orders" in a.values and a.value == pytest.approx(60 / (190 / 3), abs=1e-4)


def test_active_days_counts_distinct_days_per_user():
    from tools.segment.rank import active_days

    day = 86_400.0
    users = np.array(["x", "x", "x", "y", "z", "x"], dtype=object)
    times = np.array([0.0, 3600.0, day + 5, 10 * day, 10 * day + 60, np.nan])  # x: two days (the NaN is not a day), y and z one
    assert active_days(users, times, np.array(["z", "x", "y", "w"], dtype=object)).tolist() == [1.0, 2.0, 1.0, 0.0]
