"""Names that inform and differ: the content-word rule, sibling contrast, the broad middle, units, sessions.

Everything here runs on constructed segments.json summaries: no segmenting, no embedder.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pytest

from assistant.labelling import LabelText, label_check
from tools.explain.contrast import relative_traits
from tools.explain.labels import extractive_label, label_segments
from tools.explain.names import content_words, first_clash, names_clash
from tools.explain.wording import Voice, fmt_value, measure


@dataclass(frozen=True)
class W:
    """A name word as tools.explain.names sees one (its Word protocol)."""

    word: str
    feature: str
    strength: float
    sign: float


def trait(feature, effect, value, pop, unit="share", label=None):
    return {"feature": feature, "label": label or feature.replace("_", " "), "unit": unit, "segment_value": value,
            "population_value": pop, "lift": value / pop if pop else None, "effect": effect}


def seg(sid, size, profile, parent=None, keywords=(), level=None):
    """A segment whose traits are its profile's strongest (|effect| >= 0.2), as summary.py writes them."""
    ranked = sorted(profile, key=lambda t: -abs(t["effect"]))
    out = {"id": sid, "size": size, "share": size / 1000, "keywords": list(keywords), "representative_user_ids": [],
           "representative_texts": [], "traits": [t for t in ranked if abs(t["effect"]) >= 0.2][:5], "profile": ranked}
    if parent is not None or level is not None:
        out |= {"parent": parent, "level": 1 if parent is not None else 0}
    return out


def names_of(summary):
    return [lab.name for lab in label_segments(summary)]


def assert_all_differ(names):
    assert not any(re.search(r"\d", n) for n in names), names
    for a, b in itertools.combinations(names, 2):
        assert not names_clash(a, b), (a, b, names)


# ---------------------------------------------------------------- the content-word rule

@pytest.mark.parametrize(("a", "b"), [
    ("Lapsed Occasional Buyers", "Lapsed Occasional Shoppers"),  # head nouns are one class
    ("Occasional Shoppers", "Lapsed Occasional Buyers"),  # all of one's words are in the other
    ("Book Customers", "Books Buyers"),  # plurals
    ("Frequent Buyers", "Repeat Shoppers"),  # adjective synonyms
    ("Card Arrive Questions", "Arrive Card Messages"),  # order does not matter
    ("Typical Users", "Mainstream People"),
    ("Home & Garden Buyers", "Garden Buyers"),
])
def test_names_sharing_all_content_words_clash(a, b):
    assert names_clash(a, b) and names_clash(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("Lapsed Occasional Buyers", "Lapsed High-spend Buyers"),
    ("Book Buyers", "Book Reviewers"),  # a role is not a synonym of the head noun
    ("Long Sessions", "Short Sessions"),
    ("Card Arrive Questions", "Card Delivery Questions"),
])
def test_names_with_a_word_of_their_own_do_not_clash(a, b):
    assert not names_clash(a, b)


def test_content_words_fold_head_nouns_and_fillers():
    assert content_words("Home & Garden Shoppers") == content_words("home and gardens customers")
    assert first_clash("Occasional Users", ["Book Reviewers", "Lapsed Occasional Buyers"]) == "Lapsed Occasional Buyers"
    assert first_clash("Occasional Users", ["Book Reviewers"]) is None


# ---------------------------------------------------------------- a run's names

def shop_summary():
    """The issue's failure: segments a plain rule calls Lapsed Occasional Buyers/Shoppers and Occasional Shoppers."""
    def profile(recency, frequency, spend, books=0.0):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"),
                trait("frequency", frequency, 10 + 3 * frequency, 10, "count"),
                trait("monetary", spend, 100 + 50 * spend, 100, "money"),
                trait("share_purchase", 0.1 * spend, 0.3, 0.25),
                trait("category_Books", books, 0.2 + 0.1 * books, 0.2)]
    segments = [seg(0, 300, profile(1.6, -1.2, -0.1)), seg(1, 250, profile(1.5, -1.1, 0.9)),
                seg(2, 200, profile(0.1, -1.3, -0.3)), seg(3, 150, profile(-1.0, 1.2, 0.8, books=1.5)),
                seg(4, 100, profile(-0.9, 1.0, 0.7, books=1.4))]
    return {"data": {"kind": "behaviour"}, "segments": segments}


def test_no_two_names_in_a_run_share_all_content_words():
    names = names_of(shop_summary())
    assert_all_differ(names)
    assert all(1 <= len(n.split()) <= 5 for n in names), names


def test_twins_are_told_apart_by_size_never_by_number():
    same = [trait("category_Books", 1.5, 0.6, 0.2), trait("frequency", 0.1, 11, 10, "count")]
    other = [trait("category_Books", -1.5, 0.03, 0.2), trait("frequency", -0.1, 9, 10, "count")]
    summary = {"data": {"kind": "behaviour"}, "segments": [seg(0, 300, same), seg(1, 200, same), seg(2, 500, other)]}
    names = names_of(summary)
    assert_all_differ(names)
    assert names[0].startswith("Larger") and names[1].startswith("Smaller"), names


def test_words_that_tell_two_names_apart_hold_against_each_other():
    def p(recency, span, frequency, spend=0.0):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"), trait("span_days", span, 100 + 50 * span, 100, "days"),
                trait("frequency", frequency, 10 + 3 * frequency, 10, "count"), trait("monetary", spend, 100 + 50 * spend, 100, "money"),
                trait("share_purchase", 0.1, 0.3, 0.28)]
    # Both recent and long-time; A more recent, B more frequent.
    segments = [seg(0, 300, p(-1.2, 1.2, -0.1)), seg(1, 250, p(-0.7, 0.7, 0.45)), seg(2, 450, p(1.0, -1.0, -0.2))]
    names = names_of({"data": {"kind": "behaviour"}, "segments": segments})
    assert_all_differ(names)
    assert "Frequent" not in names[0], names  # A is the less frequent of the two
    assert "Recent" in names[0].split() or "Very-recent" in names[0], names  # and the more recent: it keeps the word
    # Two lapsed ones: the less occasional of them is never the one called "Occasional".
    segments = [seg(0, 300, p(0.9, -0.9, -0.25, spend=-0.6)), seg(1, 250, p(0.9, -0.9, -0.55, spend=-0.6)),
                seg(2, 450, p(-1.0, 1.0, 0.5, spend=0.8))]
    names = names_of({"data": {"kind": "behaviour"}, "segments": segments})
    assert_all_differ(names)
    assert "Occasional" not in names[0].split() and "Occasional" in names[1].split(), names
    # A name held inside another's takes a word of its own only if it holds against that other:
    # seg 0 is occasional, but seg 1 more so, so seg 0 is not the one called "Occasional".
    segments = [seg(0, 300, p(0.9, -0.9, -0.25, spend=-0.1)), seg(1, 250, p(0.9, -0.9, -0.55, spend=-0.6)),
                seg(2, 450, p(-1.0, 1.0, 0.5, spend=0.6))]
    names = names_of({"data": {"kind": "behaviour"}, "segments": segments})
    assert_all_differ(names)
    assert "Occasional" not in names[0].split(), names


# ---------------------------------------------------------------- siblings

def family_summary():
    """Two top-level segments; the lapsed one has two sub-segments that differ in spend, not in lapse."""
    def p(recency, spend):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"),
                trait("monetary", spend, 100 + 50 * spend, 100, "money"),
                trait("frequency", -0.3 * recency, 10 - recency, 10, "count"),
                trait("share_purchase", 0.05, 0.3, 0.28)]
    return {"data": {"kind": "behaviour", "currency": "$"}, "segments": [
        seg(0, 500, p(1.2, 0.0), level=0), seg(1, 500, p(-1.2, 0.0), level=0),
        seg(2, 260, p(1.25, 0.9), parent=0), seg(3, 240, p(1.15, -0.9), parent=0),
    ]}


def test_siblings_are_named_by_what_sets_them_apart_from_each_other():
    summary = family_summary()
    names = dict(zip((s["id"] for s in summary["segments"]), names_of(summary)))
    assert_all_differ(list(names.values()))
    assert "High-spend" in names[2] and "Low-spend" in names[3], names
    assert "Lapsed" in names[0] and "Recent" in names[1], names
    # Against everyone the children's strongest trait is the lapse they share; against each other it is spend.
    child = summary["segments"][2]
    assert child["traits"][0]["feature"] == "recency_days"
    assert relative_traits(child, summary["segments"])[0].feature == "monetary"


def test_a_sub_segment_description_compares_it_with_the_rest_of_its_parent():
    summary = family_summary()
    labels = label_segments(summary)
    parent_name = labels[0].name
    desc = labels[2].description
    assert f'the rest of "{parent_name}"' in desc, desc
    assert "$145 vs $55 there" in desc, desc  # its spend, and its sibling's, in dollars
    assert len(re.split(r"(?<=[.!?])\s+", desc.strip())) == 2, desc


def test_children_split_on_their_parents_trait_say_how_much_more_or_less_so():
    # Both children lapsed; one lapsed less than its sibling. It is not "Recent": it is recently lapsed.
    def p(recency, spend):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"), trait("monetary", spend, 100 + 50 * spend, 100, "money")]
    summary = {"data": {"kind": "behaviour"}, "segments": [
        seg(0, 500, p(1.5, 0), level=0), seg(1, 500, p(-1.5, 0), level=0),
        seg(2, 250, p(2.2, 0.1), parent=0), seg(3, 250, p(0.8, -0.1), parent=0)]}
    labels = label_segments(summary)
    names = [lab.name for lab in labels]
    assert names[2].startswith("Long-lapsed") and names[3].startswith("Recently-lapsed"), names
    assert not {"Recent", "Lapsed"} & set(names[3].split()), names
    assert_all_differ(names)
    assert "were active more recently than the rest of" in labels[3].description  # against its sibling, truly
    assert "60 days since last activity vs 95 there" in labels[3].description


def test_a_child_is_never_named_against_the_way_everyone_sees_it():
    # B spends less than its sibling but more than most: "Low-spend" would be false against everyone.
    def p(recency, spend):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"), trait("monetary", spend, 100 + 50 * spend, 100, "money")]
    summary = {"data": {"kind": "behaviour"}, "segments": [
        seg(0, 500, p(1.5, 0.45), level=0), seg(1, 500, p(-1.5, -0.45), level=0),
        seg(2, 250, p(1.4, 0.8), parent=0), seg(3, 250, p(1.6, 0.1), parent=0)]}
    names = names_of(summary)
    assert "Low-spend" not in names[3] and "Mid-spend" not in names[3], names
    assert_all_differ(names)


def test_a_child_told_apart_from_its_twin_is_never_given_a_word_false_against_everyone():
    # Two equally long-lapsed children; B spends less than A but more than most: A is "High-spend", B never "Low-spend".
    def p(recency, spend):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"), trait("monetary", spend, 100 + 50 * spend, 100, "money"),
                trait("share_purchase", 0.05, 0.3, 0.28)]
    summary = {"data": {"kind": "behaviour"}, "segments": [
        seg(0, 300, p(1.5, 0.45), level=0), seg(1, 700, p(-0.64, -0.19), level=0),
        seg(2, 100, p(2.1, 0.8), parent=0), seg(3, 99, p(2.1, 0.1), parent=0), seg(4, 101, p(0.3, 0.45), parent=0)]}
    names = names_of(summary)
    assert_all_differ(names)
    assert "Low-spend" not in names[3] and "High-spend" in names[2], names


# ---------------------------------------------------------------- the broad middle

def test_a_segment_without_a_distinctive_trait_is_the_broad_middle_and_says_so():
    def p(recency, frequency, books):
        return [trait("recency_days", recency, 40 + 25 * recency, 40, "days"),
                trait("frequency", frequency, 10 + 3 * frequency, 10, "count"),
                trait("category_Books", books, 0.2 + 0.1 * books, 0.2)]
    segments = [seg(0, 700, p(-0.15, 0.12, 0.05)), seg(1, 150, p(1.5, -0.4, 0.2)), seg(2, 150, p(-0.3, -0.2, 2.5))]
    labels = label_segments({"data": {"kind": "behaviour"}, "segments": segments})
    middle = labels[0]
    assert middle.name.startswith("Mainstream") and "Recent" in middle.name, middle.name  # its strongest relative trait
    assert "broad middle" in middle.description and "close to the average on every measure" in middle.description
    assert "If anything, they were active more recently than most (36 days since last activity" in middle.description
    assert "broad middle" not in labels[1].description
    assert_all_differ([lab.name for lab in labels])


# ---------------------------------------------------------------- units

def test_money_is_written_in_the_data_currency_and_bare_without_one():
    spend = trait("monetary", 1.2, 1204.4, 310.0, "money", label="total spend")
    aov = trait("avg_order_value", 0.9, 45.2, 30.0, "money", label="average order value")
    assert measure(spend, Voice(currency="$")) == "total spend $1,204"
    assert measure(aov, Voice(currency="£")) == "average order £45"
    assert fmt_value(4.5, "money", "£") == "£4.50"
    assert measure(spend) == "total spend 1204"
    assert fmt_value(-4.25, "money", "$") == "-$4.25"
    orders = trait("n_orders", 1.1, 7.5, 3.0, "orders", label="orders")
    gap = trait("median_days_between_purchases", -0.8, 21, 60, "days", label="median days between purchases")
    assert measure(orders) == "7.5 orders each" and measure(gap) == "21 days between purchases"


def test_traits_and_names_use_the_users_units():
    def p(spend, aov, orders):
        return [trait("monetary", spend, 300 + 200 * spend, 300, "money", label="total spend"),
                trait("avg_order_value", aov, 30 + 10 * aov, 30, "money", label="average order value"),
                trait("orders", orders, 3 + 2 * orders, 3, "orders", label="orders")]
    summary = {"data": {"kind": "behaviour", "currency": "$"},
               "segments": [seg(0, 600, p(-0.6, -0.5, -0.7)), seg(1, 400, p(1.4, 0.9, 1.6))]}
    labels = label_segments(summary)
    assert "Frequent" in labels[1].name and "High-spend" in labels[1].name, labels[1].name
    assert "$580" in labels[1].description and "orders each" in labels[1].description, labels[1].description
    assert "money" not in labels[1].description
    assert any("$" in f for f in labels[1].facts)


# ---------------------------------------------------------------- sessions

def test_session_segments_are_sessions_with_behaviour_traits():
    def p(events, distinct, recency):
        return [trait("frequency", events, 4 + 3 * events, 4, "count", label="events"),
                trait("distinct_items", distinct, 3 + 2 * distinct, 3, "count", label="distinct items"),
                trait("recency_days", recency, 60 + 30 * recency, 60, "days", label="days since last activity")]
    summary = {"data": {"kind": "behaviour", "entity": "session"},
               "segments": [seg(0, 700, p(-0.5, -0.5, 0.1)), seg(1, 300, p(1.3, 1.2, -0.2))]}
    labels = label_segments(summary)
    names = [lab.name for lab in labels]
    assert all(n.endswith("Sessions") for n in names), names
    assert "Long" in names[1] and "Short" in names[0], names
    assert_all_differ(names)
    assert labels[1].description.startswith("300 sessions (30.0%) that are longer than most (7.9 events per session")
    assert "Typical" not in " ".join(names) and "users" not in labels[0].description


def test_text_names_come_from_keywords_and_differ():
    texts = ["where is my card?"] * 3
    segments = [seg(i, 100, [], keywords=kws) | {"representative_texts": texts} for i, kws in enumerate(
        [("card", "arrive", "delivery"), ("card", "arrive", "tracking"), ("card", "arrival", "new"), ("pin", "reset", "blocked")])]
    names = names_of({"data": {"kind": "text"}, "segments": segments})
    assert_all_differ(names)
    assert names[3] == "Pin Reset Questions" or names[3] == "PIN Reset Questions", names


# ---------------------------------------------------------------- the LLM path uses the same rule

def test_llm_names_are_checked_with_the_content_word_rule():
    taken = ["Lapsed Occasional Buyers", "Book Reviewers"]
    ok = LabelText(name="Weekend Gift Hunters", description="They buy gifts. They come back on weekends.")
    assert label_check(ok, "{}", taken) is None
    for name in ("Lapsed Occasional Shoppers", "Occasional Customers", "Book Reviewer"):
        problem = label_check(LabelText(name=name, description="They lapse. They rarely buy."), "{}", taken)
        assert problem and "too close" in problem, (name, problem)
    numbered = label_check(LabelText(name="Gift Hunters 2", description="They buy gifts. Often."), "{}", taken)
    assert numbered and "number" in numbered


def test_extractive_label_keeps_its_single_segment_api():
    summary = shop_summary()
    lab = extractive_label(summary["segments"][3], summary["segments"], "behaviour")
    assert lab.name and lab.description.startswith("150 users (15.0%)")


def test_the_cli_table_shows_money_in_the_currency_and_counts_sessions():
    from assistant.render import format_trait, segments_table

    spend = trait("monetary", 1.2, 1204.4, 310.0, "money", label="total spend")
    assert format_trait(spend, "$") == "total spend $1,204 (3.9× overall)"
    assert format_trait(spend) == "total spend 1,204.4 (3.9× overall)"
    summary = {"k": 1, "data": {"n_users": 12, "source": "clicks.csv", "entity": "session", "currency": None},
               "segments": [seg(0, 12, [trait("frequency", 1.0, 7, 4, "count", label="events")]) | {"name": "Long Sessions"}]}
    table = segments_table(summary)
    assert "12 sessions" in str(table.title) and table.columns[2].header == "sessions"


def test_size_words_never_stack():
    from tools.explain.names import _by_size

    chosen = {0: "Recent Shoppers", 1: "Recent Small-ticket Shoppers", 2: "Smaller Recent Shoppers"}
    out = _by_size(dict(chosen), {0: 300, 1: 100, 2: 50})
    assert all(sum(w in ("Larger", "Smaller") for w in name.split()) <= 1 for name in out.values()), out
    assert not any(names_clash(a, b) for a, b in itertools.combinations(out.values(), 2)), out


def test_a_clash_is_never_traded_for_a_name_with_exactly_another_names_words():
    """Diginetica's sessions: a sub-segment of "Recent Sessions" as long as the top-level "Long Sessions" could drop
    "Long" and become a second "Recent Sessions", which only a size word then told apart from its own parent."""
    from tools.explain.names import NameParts, resolve_names

    long_, recent = W("Long", "frequency", 1.0, 1.0), W("Recent", "recency_days", 1.6, -1.0)

    def build(words):
        return " ".join([w.word for w in words] + ["Sessions"])

    parts = {
        1: NameParts((long_,), (), build, effects={"frequency": 1.04}),
        2: NameParts((recent,), (), build, effects={"recency_days": -1.6}),
        6: NameParts((long_,), (recent,), build, effects={"recency_days": -1.6, "frequency": 0.38}),
    }
    names = {sid: name for sid, (name, _) in resolve_names(parts, {1: 892, 2: 340, 6: 164}).items()}
    assert names[2] == "Recent Sessions", names  # the parent keeps its plain name
    assert len({content_words(n) for n in names.values()}) == 3, names


def test_a_sub_segment_tells_itself_from_a_namesake_elsewhere_by_its_family_word():
    """Diginetica's sessions again, with the tree known: the long sessions of the recent family are "Recent Long
    Sessions", beside the top-level "Long Sessions", not "Smaller Long Sessions" beside "Larger Long Sessions"."""
    from tools.explain.names import Family, NameParts, resolve_names

    long_, recent = W("Long", "frequency", 1.0, 1.0), W("Recent", "recency_days", 1.6, -1.0)
    short = W("Short", "frequency", 1.0, -1.0)

    def build(words):
        return " ".join([w.word for w in words] + ["Sessions"])

    parts = {
        1: NameParts((long_,), (), build, effects={"frequency": 1.04}),
        2: NameParts((recent,), (), build, effects={"recency_days": -1.6}),
        5: NameParts((short,), (), build, effects={"recency_days": -1.6, "frequency": -0.5}),
        6: NameParts((long_,), (recent,), build, effects={"recency_days": -1.6, "frequency": 0.38}),
    }
    tree = {1: None, 2: None, 5: 2, 6: 2}
    names = {sid: name for sid, (name, _) in resolve_names(parts, {1: 892, 2: 340, 5: 176, 6: 164}, tree).items()}
    assert {sid: set(n.split()) for sid, n in names.items()} == {1: {"Long", "Sessions"}, 2: {"Recent", "Sessions"}, 5: {"Short", "Sessions"},
                                                             6: {"Recent", "Long", "Sessions"}}, names  # (this build keeps the words' order)
    assert Family(tree).pairs(names) == []
    # The words a sub-segment adds must be its family's: "Weekend" is not what its parent is called.
    assert Family(tree).clash(1, 6, {1: "Long Sessions", 2: "Recent Sessions", 6: "Weekend Long Sessions"})
    # Siblings keep the plain rule: two sub-segments of one parent never nest.
    assert Family(tree).clash(5, 6, {2: "Recent Sessions", 5: "Long Sessions", 6: "Recent Long Sessions"})
    # Without the tree, the nesting is a clash as before, and sizes tell the two long ones apart.
    flat = {sid: name for sid, (name, _) in resolve_names(parts, {1: 892, 2: 340, 5: 176, 6: 164}).items()}
    assert Family().pairs(flat) == [] and "Recent" not in flat[6].split(), flat
