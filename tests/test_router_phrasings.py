"""How analysts really type (issue #11): one test per failure mode found on the routing corpus's tuning half.

Courtesy words and chat shorthand, a later clause that leans on the user an earlier one named,
a "why" that names nothing new, bare numbers where a user goes, a why with no item, a user
described, listing segments against making new ones, what analysts call a report, and the
plain-word arguments (churn, counts, inactivity, ratings) that were missed."""

from __future__ import annotations

import pytest

from assistant.arguments import rank_query, result_count
from assistant.followup import Focus, strip_courtesy, why_back
from assistant.spelling import as_typed, correct, typed_words


def _route(harness, text, focus=None):
    route = harness.router.route(text, focus or Focus())
    return [(c.tool, c.args) for c in route.calls] if route.calls else route.question


def _segment(harness, words):
    return harness.toolbox.resolver.segment(words)


# -- plain words, no workspace --------------------------------------------------------------------------
def test_courtesy_typed_after_a_request_is_not_part_of_it():
    assert strip_courtesy("explain pls") == "explain"
    assert strip_courtesy("list the segments, thanks!") == "list the segments!"
    assert strip_courtesy("how many clusters did you find plz") == "how many clusters did you find"
    assert strip_courtesy("thanks") == "thanks" and strip_courtesy("segment 3") == "segment 3"


def test_chat_shorthand_and_typos_never_rewrite_what_a_search_embeds():
    assert correct("tell me y") == "tell me why" and correct("y?") == "why?" and correct("and y is that") == "and why is that"
    assert correct("segment y") == "segment y"  # a "y" that is not a question word stays
    typed = typed_words("find movies about space exploration")
    assert correct("space exploration") != "space exploration"  # the corrector alone would turn it into a command word
    assert as_typed(correct("space exploration"), typed) == "space exploration"


def test_a_why_that_names_nothing_new_points_at_the_last_answer():
    for text in ("tell me why it fits?", "why they'd like it", "and why", "why those picks", "why these?"):
        assert why_back(text), text
    for text in ("why is u00042 in their segment", "why would they like the lamp", "why is segment 3 so big", "what fits them"):
        assert not why_back(text), text


def test_churn_counts_inactivity_and_ratings_in_the_words_analysts_use():
    for text in ("which users might stop buying soon", "who will stop ordering", "who might drop off", "customers ready to leave"):
        assert rank_query(text).args() == {"by": "churn_risk"}, text
    assert rank_query("who hasn't watched anything in a year").args() == {"filters": [{"feature": "recency_days", "op": ">", "value": 365.0}]}
    assert rank_query("which users haven't logged in for 2 weeks").args() == {"filters": [{"feature": "recency_days", "op": ">", "value": 14.0}]}
    assert rank_query("which users gave the lowest average rating").args() == {"by": "rating_mean", "order": "asc"}
    assert result_count("recommend 3 for u00042") == 3 and result_count("suggest 5 to user 42") == 5
    assert result_count("20 users most at risk of churning") == 20 and result_count("show me the 5 customers who spent most") == 5
    assert result_count("recommend something for the last 30 days") is None and result_count("customers with 5 purchases") is None


# -- on the sample workspace --------------------------------------------------------------------------------
def test_courtesy_and_shorthand_in_whole_requests(router_harness):
    assert _route(router_harness, "recommend for user 42 and explain pls") == [("recommend_items", {"user_id": "u00042", "explain": True})]
    assert _route(router_harness, "how many clusters did you find pls") == [("list_segments", {})]
    assert _route(router_harness, "recomend items for u00042 and tell me y") == [("recommend_items", {"user_id": "u00042", "explain": True})]
    calls = _route(router_harness, "find movies about space exploration")
    assert calls[0][0] == "find_items" and "exploration" in calls[0][1]["description"]


def test_a_later_clause_uses_the_user_the_same_message_named(router_harness):
    assert _route(router_harness, "why is u00123 in its segment and what should we recommend") == [
        ("explain_user_segment", {"user_id": "u00123"}), ("recommend_items", {"user_id": "u00123"})]
    # A user of an earlier turn is not "said" in this message: without a pointer, ask.
    earlier = Focus().after("explain_user_segment", {"user_id": "u00123"})
    assert isinstance(_route(router_harness, "what should we recommend", earlier), str)


def test_a_why_clause_after_recommendations_explains_them(router_harness):
    for text in ("recommend something for u00042 and tell me why it fits", "recommend something for u00042 and tell me why they'd like it"):
        assert _route(router_harness, text) == [("recommend_items", {"user_id": "u00042", "explain": True})], text


def test_a_bare_number_where_a_user_goes_is_that_user_or_a_question_naming_it(router_harness):
    assert _route(router_harness, "what should we recommend to 42") == [("recommend_items", {"user_id": "u00042"})]
    assert _route(router_harness, "what segment does 42 belong to") == [("explain_user_segment", {"user_id": "u00042"})]
    assert _route(router_harness, "recs for customer id 42") == [("recommend_items", {"user_id": "u00042"})]
    question = _route(router_harness, "recommend something for 17850")
    assert isinstance(question, str) and "17850" in question and question.rstrip().endswith("?")


def test_one_recommendation_explained_needs_an_item(router_harness):
    for text in ("u00042 recs + why?", "reasoning behind the recs for u00042", "why were these recommended to u00042",
                 "what is the evidence behind u00042's recommendations"):
        assert _route(router_harness, text) == [("recommend_items", {"user_id": "u00042", "explain": True})], text
    question = _route(router_harness, "why recommend the flux capacitor to u00042")  # words that may name an item: ask which
    assert isinstance(question, str) and "flux capacitor" in question
    assert _route(router_harness, "why recommend the Quantix Ultralite Laptop to u00042") == [
        ("explain_recommendation", {"user_id": "u00042", "item_id": "i00474"})]  # a two-letter typo in a long title word


def test_a_user_described_or_profiled_is_their_segment(router_harness):
    for text in ("describe user u00042", "profile of u00042", "what kind of shopper is u01234?"):
        assert _route(router_harness, text)[0][0] == "explain_user_segment", text
    reviewers = _segment(router_harness, "the book reviewers")
    assert _route(router_harness, "what's typical of the book reviewers") == [("describe_segment", {"segment_id": reviewers})]


def test_the_segments_there_are_against_a_new_segmentation(router_harness):
    for text in ("show me every cluster", "what groups did the clustering produce"):
        assert _route(router_harness, text) == [("list_segments", {})], text
    for text in ("discover groups in my customers", "let's find some user segments", "segment again"):
        assert _route(router_harness, text) == [("segment_users", {})], text
    assert _route(router_harness, "find users who are into running")[0][0] == "find_users"  # "into" is a run's only before a count or groups


def test_what_analysts_call_a_report(router_harness):
    for text in ("I need a deck for leadership", "put the segments in a doc I can share"):
        assert _route(router_harness, text) == [("write_report", {})], text


def test_behaviour_words_are_never_a_taste(router_harness):
    assert _route(router_harness, "users who rated more than 500 movies") == [
        ("rank_users", {"filters": [{"feature": "frequency", "op": ">", "value": 500.0}]})]


def test_the_biggest_two_without_a_noun(router_harness):
    calls = _route(router_harness, "list the segments, compare the biggest two and write a report")
    biggest = list(router_harness.toolbox.resolver.segments.ranked[:2])
    assert [t for t, _ in calls] == ["list_segments", "compare_segments", "write_report"]
    assert sorted([calls[1][1]["segment_a"], calls[1][1]["segment_b"]]) == sorted(biggest)


@pytest.mark.parametrize("turns", [
    ["who's about to churn in segment 0?", ("and in segment 1?", "rank_users", {"by": "churn_risk", "segment_id": 1})],
    ["describe the largest segment", "and the second largest?", ("and the third?", "describe_segment", "rank:2")],
])
def test_elliptical_follow_ups_name_a_segment(router_harness, turns):
    focus = Focus()
    for turn in turns[:-1]:
        route = router_harness.router.route(turn, focus)
        for call in route.calls:
            focus = focus.after(call.tool, call.args)
    text, tool, args = turns[-1]
    if args == "rank:2":
        args = {"segment_id": router_harness.toolbox.resolver.segments.ranked[2]}
    assert _route(router_harness, text, focus) == [(tool, args)]
