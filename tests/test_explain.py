"""Explanations: evidence from the data, extractive phrasing, and a verifier that catches invented claims."""

from __future__ import annotations

import pytest

from tools.core.run_state import load_run
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.explain.evidence import (
    MIN_POPULARITY_COUNT,
    Evidence,
    ExplanationContext,
    phrase_extractive,
    verify_explanation,
)
from tools.pipeline import RunParams, segment_dataset


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    generate_sample(root / "data", n_users=300, seed=5)
    segment_dataset(load_dataset(root / "data"), root / "ws", RunParams(seed=5), embedder=HashingEmbedder(), write_store=False)
    return ExplanationContext(load_run(root / "ws"))


def _pair(ctx, quotable: bool = True):
    """A user and an item they have not consumed but their segment has: chosen by enough members to
    quote the figure (``quotable``), or by too few."""
    run = ctx.run
    for row, user in enumerate(run.user_ids):
        seg = run.labels[row]
        mine = set(ctx.user_items(user))
        peers = run.user_ids[run.labels == seg]
        for peer in peers:
            for item in ctx.user_items(peer):
                if item not in mine and ctx.build_evidence(str(user), str(item)).popularity_quotable == quotable:
                    return str(user), str(item)
    raise AssertionError("no pair found")


def test_evidence_counts_match_the_data(ctx):
    user, item = _pair(ctx)
    ev = ctx.build_evidence(user, item)
    run = ctx.run
    seg = run.labels[run.row_of(user)]
    events = run.data.events
    members = set(run.user_ids[run.labels == seg])
    consumers = set(events.loc[events["item_id"] == item, "user_id"])
    assert ev.segment_item_count == len(consumers & members) > 0
    assert ev.segment_size == len(members)
    for match in ev.similar_history:
        assert match.item_id in set(ctx.user_items(user))
        both = set(events.loc[events["item_id"] == match.item_id, "user_id"]) & consumers
        assert match.co_count == len(both)


def test_extractive_explanations_pass_the_verifier(ctx):
    run = ctx.run
    checked = 0
    for user in run.user_ids[:40]:
        mine = set(ctx.user_items(user))
        candidates = [i for i in ctx.item_ids[:60] if i not in mine][:3]
        for item in candidates:
            ev = ctx.build_evidence(str(user), str(item))
            text = phrase_extractive(ev)
            result = verify_explanation(text, ev, ctx)
            assert result.ok, (text, result.problems)
            checked += 1
    assert checked >= 100


def test_verifier_rejects_a_planted_wrong_number(ctx):
    user, item = _pair(ctx)
    ev = ctx.build_evidence(user, item)
    text = phrase_extractive(ev)
    wrong = ev.segment_item_count + 17
    while str(wrong) in ev.allowed_numbers():  # the planted number must really be absent from the evidence
        wrong += 1
    planted = text.replace(f"{ev.segment_item_count} of the", f"{wrong} of the", 1)
    assert planted != text
    result = verify_explanation(planted, ev, ctx)
    assert not result.ok and any(str(wrong) in p for p in result.problems)


def test_verifier_rejects_a_planted_wrong_item(ctx):
    user, item = _pair(ctx)
    ev = ctx.build_evidence(user, item)
    allowed = ev.allowed_titles()
    other = next(t for t in ctx.titles.to_numpy() if t not in allowed and len(str(t)) >= 8)
    planted = phrase_extractive(ev).rstrip(".") + f", and people love {other}."
    result = verify_explanation(planted, ev, ctx)
    assert not result.ok and any(other in p for p in result.problems)
    invented = phrase_extractive(ev) + " You also liked “The Golden Spatula Deluxe”."
    assert not verify_explanation(invented, ev, ctx).ok


def test_verifier_rejects_an_unmatched_category(ctx):
    user, item = _pair(ctx)
    ev = ctx.build_evidence(user, item)
    foreign = next(c for c in sorted(ctx.all_categories) if c not in ev.item_categories and len(c) >= 4 and not any(c.lower() in t.lower() for t in ev.matched_traits))
    result = verify_explanation(f"We recommend it because you love {foreign}.", ev, ctx)
    assert not result.ok


def test_unknown_user_or_item_is_a_clear_error(ctx):
    from tools.core.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="user"):
        ctx.build_evidence("no-such-user", str(ctx.item_ids[0]))
    with pytest.raises(WorkspaceError, match="item"):
        ctx.build_evidence(str(ctx.run.user_ids[0]), "no-such-item")


def _evidence(count: int, size: int, segment_id: int = 1, co_count: int = 0) -> Evidence:
    from tools.explain.evidence import HistoryMatch

    history = (HistoryMatch("h1", "Terrafirm Raised Garden Hose", 0.1, co_count),) if co_count else ()
    return Evidence("u1", "i1", "Corelink Ultralight Laptop", (), segment_id, "Budget Browsers", size, count, history, ())


def test_a_popularity_figure_below_the_minimum_is_never_quoted(ctx):
    # "1 of the 544 people in your segment (0%) chose it" says nothing: below 5 people or 1% it is not said.
    for count, size in ((1, 544), (4, 40), (20, 5000)):
        ev = _evidence(count, size)
        assert not ev.popularity_quotable
        text = phrase_extractive(ev)
        assert f"{count} of the" not in text and "%" not in text, text
        assert verify_explanation(text, ev, ctx).ok
        assert "segment_share_who_consumed_item" not in ev.as_dict()
        assert ev.as_dict()["segment_members_who_consumed_item"] == "too few to quote"
        # Whoever writes it, the figure is rejected, even when the count is another allowed number (the segment id).
        quoted = f"We recommend it: {count} of the {size} people in your segment chose it ({ev.segment_item_pct})."
        result = verify_explanation(quoted, _evidence(count, size, segment_id=count), ctx)
        assert not result.ok and any("popularity figure" in p for p in result.problems), result.problems
    # Below the minimum, the co-occurrence reason is what is said.
    co = phrase_extractive(_evidence(2, 544, co_count=3))
    assert "3 people who chose “Terrafirm Raised Garden Hose” also chose it" in co and "of the 544" not in co
    # At the minimum (5 people, a share that prints as at least 1%), the figure is quoted and verified.
    ev = _evidence(MIN_POPULARITY_COUNT, 300)
    assert ev.popularity_quotable and ev.segment_item_pct == "2%"
    text = phrase_extractive(ev)
    assert "5 of the 300 people in your segment “Budget Browsers” (2%) chose it" in text
    assert verify_explanation(text, ev, ctx).ok
    assert _evidence(6, 1000).popularity_quotable and not _evidence(5, 1000).popularity_quotable  # "1%" vs "0%"


def test_a_title_inside_an_evidence_title_is_not_a_claim():
    # MovieLens has "9 (2009)" and "District 9 (2009)", "O (2001)" and "Donnie Darko (2001)".
    from types import SimpleNamespace

    import pandas as pd

    from tools.explain.evidence import HistoryMatch

    titles = pd.Series(["District 9 (2009)", "9 (2009)", "Donnie Darko (2001)", "O (2001)", "Moon (2009)"],
                       index=["m1", "m2", "m3", "m4", "m5"])
    ctx = SimpleNamespace(titles=titles, item_pos={i: n for n, i in enumerate(titles.index)}, all_categories=set())
    ev = Evidence("u1", "m3", "Donnie Darko (2001)", (), 2, "Sci-Fi Fans", 66, 24,
                  (HistoryMatch("m1", "District 9 (2009)", 0.5, 7),), ())
    text = phrase_extractive(ev)
    assert "District 9 (2009)" in text and verify_explanation(text, ev, ctx).ok
    assert not verify_explanation(text + " You liked “Moon (2009)” too.", ev, ctx).ok
