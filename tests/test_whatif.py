"""Counterfactual membership (`segscope whatif`, the what_would_move tool): every proposal is re-assigned to its target by
the saved model, only feasible changes are proposed, an unreachable target gets its reason, and the router finds the tool."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.segment.assign import load_fitted_run
from tools.segment.whatif import WhatIfSearch, target_of
from tools.segment.whatif_events import Evaluator
from tools.segment.whatif_text import answer, what_would_move

BIN = Path(sys.executable).parent / "segscope"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The sample (300 users) segmented with the hashing embedder, and its fitted run."""
    root = tmp_path_factory.mktemp("whatif")
    generate_sample(root / "data", n_users=300, seed=3)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(seed=3, embedder="hashing-64"),
                    embedder=HashingEmbedder(), write_store=False)  # fmt: skip
    return root / "ws", load_fitted_run(root / "ws")


def _pairs(fitted, n, seed=0):
    rng = np.random.default_rng(seed)
    ids = [int(s["id"]) for s in fitted.run.summary["segments"]]
    for u in rng.choice(fitted.run.user_ids, n, replace=False):
        here = {int(fitted.run.labels[fitted.run.row_of(u)]), int(fitted.run.top_labels[fitted.run.row_of(u)])}
        yield str(u), int(rng.choice([i for i in ids if i not in here]))


def test_every_proposal_once_applied_is_placed_in_the_target_by_the_saved_model(shop):
    ws, fitted = shop
    evaluator, proposed = Evaluator(fitted), 0
    for user, target in _pairs(fitted, 8):
        search = WhatIfSearch(fitted, user, target_of(fitted, target), 8, evaluator).run()
        if search.best is None:
            assert answer(search, fitted).reason  # no proposal: a reason, never silence
            continue
        proposed += 1
        # Applied from scratch: the user's events plus the proposal's, profiled and placed by the run's model.
        again = Evaluator(fitted).place(search.history.events, [list(search.best.rows)]).placement
        seg = fitted.run.segment(target)
        assert int(again.leaf[0]) == target or (seg.get("parent") is None and int(again.top[0]) == target)
    assert proposed >= 3


def test_proposals_are_feasible_counts_up_shares_sum_to_one_recency_never_up(shop):
    _, fitted = shop
    names = list(fitted.run.feature_names)
    cats = [j for j, n in enumerate(names) if n.startswith("category_")]
    checked = 0
    for user, target in _pairs(fitted, 6, seed=1):
        search = WhatIfSearch(fitted, user, target_of(fitted, target), 8).run()
        if search.best is None:
            continue
        checked += 1
        before, after = search.start.raw, search.best.raw
        for name in ("frequency", "distinct_items", "purchases", "monetary"):
            j = names.index(name)
            assert after[j] >= before[j] >= 0
        j = names.index("recency_days")
        assert after[j] <= before[j] + 1e-9
        assert np.isclose(after[cats].sum(), 1.0) or np.isclose(after[cats].sum(), before[cats].sum())
        assert (after[cats] >= 0).all() and (after[cats] <= 1).all()
        first = search.history.events["timestamp"].min()
        assert all(r["timestamp"] > first for r in search.best.rows)  # nothing before the first activity: tenure stays
    assert checked >= 2


def test_a_target_that_needs_less_history_gets_no_proposal_and_says_why(shop):
    _, fitted = shop
    run = fitted.run
    lapsed = max(run.summary["segments"], key=lambda s: next(t["segment_value"] for t in s["profile"] if t["feature"] == "recency_days"))
    rec = list(run.feature_names).index("recency_days")
    fresh = run.user_ids[int(np.argmin(np.where(run.top_labels != lapsed["id"], run.feature_raw[:, rec], np.inf)))]
    result = what_would_move(fitted, str(fresh), int(lapsed["id"]), max_changes=4)
    assert not result.reached and result.reason_code == "needs_less_history"
    assert "past dates are not rewritten" in result.reason
    assert "no feasible change within 4 changes" in result.lines()[0]


def test_a_user_already_in_the_target_is_told_so_and_how_when_it_is_their_segments_parent(shop):
    _, fitted = shop
    run = fitted.run
    user = str(run.user_ids[0])
    leaf = int(run.labels[0])
    own = what_would_move(fitted, user, leaf)
    assert own.already and own.lines() == [f"User {user} (segment {leaf}) → segment {leaf} “{run.segment(leaf)['name']}”: already there; "
                                           "nothing needs to change."]  # fmt: skip
    # In a two-level run a top-level target holds the user's leaf (the fixture is flat: the answer is re-pointed at a leaf).
    inside = dataclasses.replace(own, segment_id=leaf + 100)
    assert inside.lines()[0].endswith(f"already there (segment {leaf + 100} is one of its sub-segments); nothing needs to change.")


def _segscope(*args):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def test_cli_answers_in_the_users_units_and_refuses_bad_ids_in_one_line(shop):
    ws, fitted = shop
    user, target = next(iter(_pairs(fitted, 1, seed=4)))
    ok = _segscope("whatif", "--workspace", ws, "--user", user, "--to", target, "--json")
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert body["user_id"] == user and body["target_id"] == target and (body["reached"] or body["reason"])
    text = _segscope("whatif", "--workspace", ws, "--user", user, "--to", target)
    assert text.returncode == 0 and f"User {user}" in text.stdout
    if body["reached"]:
        assert any(w in text.stdout for w in ("more purchase", "more view", "more rating", "more cart", "new visit"))
        assert "→" in text.stdout  # before → after, in the feature's unit
    for bad in (("--user", "nobody", "--to", target), ("--user", user, "--to", "99")):
        res = _segscope("whatif", "--workspace", ws, *bad)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_toolbox_what_would_move_resolves_names_and_returns_the_answer(shop):
    from assistant.service import WorkspaceService
    from assistant.toolbox import Toolbox, run_tool

    ws, fitted = shop
    user, target = next(iter(_pairs(fitted, 1, seed=5)))
    toolbox = Toolbox(WorkspaceService(ws))
    result = run_tool(toolbox, "what_would_move", {"user_id": user, "segment_id": str(target), "max_changes": 6})
    assert result.artifact["target_id"] == target and result.artifact["user_id"] == user
    assert result.summary.startswith(f"User {user}")
    # As the user reads it: the name quoted once, and every change whole (they were cut at 80 characters).
    from assistant.session import user_text

    shown = user_text(result.summary)
    name = fitted.run.segment(target)["name"]
    assert f"segment {target} “{name}”" in shown and "““" not in shown and "””" not in shown
    for change in result.artifact["changes"]:
        assert f"- {change}" in shown or f"- “{change}”" in shown


@pytest.mark.parametrize("text,user,words", [
    ("what would move u00042 into segment 3?", "u00042", None),
    ("what would it take for u00042 to become a book reviewer", "u00042", "book reviewers"),
    ("how could 17 get into the lapsed segment", "u00017", "lapsed"),
])
def test_router_sends_counterfactual_requests_to_what_would_move(router_harness, text, user, words):
    from assistant.followup import Focus

    route = router_harness.router.route(text, Focus())
    assert route.calls, route.question
    call = route.calls[0]
    expected = 3 if words is None else router_harness.toolbox.resolver.segment(words)
    assert call.tool == "what_would_move" and call.args["user_id"] == user and call.args["segment_id"] == expected


def test_slash_whatif():
    from assistant.router import parse_slash

    route = parse_slash("/whatif u00042 3")
    assert route.tool == "what_would_move" and route.args == {"user_id": "u00042", "segment_id": 3}


def test_report_cards_say_what_would_move_their_typical_member(shop):
    from tools.report.whatif_section import whatif_lines

    ws, fitted = shop
    ids = [int(s["id"]) for s in fitted.run.summary["segments"] if s.get("parent") is None][:3]
    lines = whatif_lines(ws, ids, budget_s=float("inf"))  # every card searched, however busy the machine
    assert set(lines) == set(ids)
    for line in lines.values():
        assert "into the nearest other segment" in line or "no feasible change within" in line
        assert "verified with the saved model" in line or "no feasible change" in line
    res = _segscope("report", "--workspace", ws, "--out", ws / "r.md", "--segment", ids[0])
    assert res.returncode == 0, res.stderr
    assert f"**What would move them:** {lines[ids[0]]}".split(" (")[0] in (ws / "r.md").read_text()


def test_report_cards_past_the_search_budget_name_the_command_that_answers_them(shop):
    from tools.report.whatif_section import whatif_lines

    ws, fitted = shop
    ids = [int(s["id"]) for s in fitted.run.summary["segments"] if s.get("parent") is None][:3]
    lines = whatif_lines(ws, ids, budget_s=0.0)
    first, *rest = ids
    assert "verified with the saved model" in lines[first] or "no feasible change" in lines[first]  # one search always runs
    for sid in rest:
        if "into the nearest other segment" not in lines[sid]:  # not one the first search already answered
            assert "budget" in lines[sid] and "segscope whatif --user " in lines[sid], lines[sid]


def test_a_history_without_dates_has_no_end_and_no_warning(shop):
    """A log whose fitted users have no dates: the history's end is NaN, without numpy's All-NaN warning."""
    import warnings

    from tools.segment.whatif_events import user_history

    _, fitted = shop
    events = fitted.run.data.events
    saved = events["timestamp"].copy()
    events["timestamp"] = np.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            history = user_history(fitted, str(fitted.run.user_ids[0]))
    finally:
        events["timestamp"] = saved
    assert np.isnan(history.end) and len(history.events)
