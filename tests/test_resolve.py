"""The workspace resolver: ids in the forms people type, titles, segments by id, rank and name, and the questions it asks."""

from __future__ import annotations

import shutil

import pytest
from helpers import sample_workspace

from tools.core.workspace import Workspace
from tools.explain.resolve import Resolver, SegmentInfo, Unresolved, WorkspaceIndex

SEGMENTS = [
    SegmentInfo(0, "Beauty & Household Browsers", 900, ("sale", "beauty", "household"), ("u00007",)),
    SegmentInfo(1, "Shoe & Clothing Buyers", 650, ("shoes", "fashion", "outfit"), ("u00011",)),
    SegmentInfo(2, "Home & Garden Buyers", 540, ("garden", "kitchen"), ("u00021",)),
    SegmentInfo(3, "High-spend Computer & Electronics Buyers", 420, ("electronics", "usb-c"), ("u00031",)),
    SegmentInfo(4, "Book Reviewers", 300, ("books", "memoir"), ("u00041",)),
    SegmentInfo(5, "Lapsed Toys & Game Buyers", 180, ("games", "toys"), ("u00051",)),
]
TITLES = {
    "i00001": "Aquara Vitamin C Face Serum", "i00002": "Purelle Vitamin C Face Serum", "i00003": "Lumio Portable Smartwatch",
    "i00004": "Lumio Portable Smartwatch", "i00005": "Kestrel Portable Earbuds", "i00006": "Purelle Vitamin C Shampoo",
}


@pytest.fixture(scope="module")
def shop() -> Resolver:
    users = [f"u{i:05d}" for i in range(1, 3001)]
    return Resolver(WorkspaceIndex(users, list(TITLES), list(TITLES.values()), SEGMENTS))


@pytest.fixture(scope="module")
def movies() -> Resolver:
    titles = {"1": "Toy Story (1995)", "3114": "Toy Story 2 (1999)", "2571": "Matrix, The (1999)", "1721": "Titanic (1997)",
              "3404": "Titanic (1953)", "4864": "Titanica (1992)", "42": "Dead Presidents (1995)",
              "260": "Star Wars: Episode IV - A New Hope (1977)", "61160": "Star Wars: The Clone Wars (2008)"}
    segs = [SegmentInfo(0, "Drama Comedy Users", 480), SegmentInfo(1, "Lapsed Thriller Users", 130)]
    return Resolver(WorkspaceIndex([str(i) for i in range(1, 611)], list(titles), list(titles.values()), segs))


@pytest.mark.parametrize("typed", ["u00042", "U00042", "#u00042", "u42", "user 42", "customer 42"])
def test_a_user_id_in_every_form_people_type_it(shop, typed):
    assert shop.user(typed) == "u00042"


def test_ids_in_a_request_need_no_noun_in_front(shop):
    found = shop.ids_in("recommend something for u00042 and tell me why")
    assert [(m.user, m.item) for m in found] == [("u00042", None)]
    assert [m.item for m in shop.ids_in("why recommend i00005 to u00042?")] == ["i00005", None]
    # Counts, ranks and segment numbers are never ids; a number needs a noun in front when ids have a prefix.
    assert shop.ids_in("top 5 picks for segment 3 in the last 30 days") == []
    assert [m.user for m in shop.ids_in("what would user 42 buy next")] == ["u00042"]


def test_numeric_ids_with_and_without_a_noun(movies):
    found = movies.ids_in("why 2571 for 42?")
    assert [(m.token, m.user, m.item) for m in found] == [("2571", None, "2571"), ("42", "42", "42")]
    assert [m.user for m in movies.ids_in("top 5 films for #212")] == ["212"]
    assert movies.ids_in("recommend 3 movies for 5")[0].token == "5"  # "3 movies" is a count
    assert movies.ids_in("why recommend Titanic (1997) to user 3")[0].token == "3"  # "(1997)" is a year


def test_an_unknown_id_is_one_question_naming_the_closest(shop, movies):
    with pytest.raises(Unresolved) as err:
        shop.user("u09999")
    assert "u09999" in err.value.message and err.value.message.endswith("?") and err.value.candidates
    assert all(c in shop.index.users.set for c in err.value.candidates)
    assert [m.unknown for m in shop.ids_in("recommend items for u09999")] == ["user"]
    with pytest.raises(Unresolved) as err:
        movies.user("9999")
    assert "9999" in err.value.message and len(err.value.candidates) == 3


def test_titles_match_fuzzily_and_ambiguity_is_a_question(shop, movies):
    assert shop.item("the Aquara vitamin C serum") == "i00001"
    assert shop.item("Kestral portable earbuds") == "i00005"  # a typo in a long word
    with pytest.raises(Unresolved) as err:
        shop.item("the vitamin c serum")
    assert set(err.value.candidates) == {"i00001", "i00002"}  # not the shampoo
    with pytest.raises(Unresolved) as err:
        shop.item("the Lumio Portable Smartwatch")  # one title, two ids
    assert set(err.value.candidates) == {"i00003", "i00004"}
    assert movies.item("Toy Story") == "1" and movies.item("toy story 2") == "3114" and movies.item("The Matrix") == "2571"
    with pytest.raises(Unresolved) as err:
        movies.item("Titanic")  # both films, never "Titanica"
    assert set(err.value.candidates) == {"1721", "3404"}
    assert movies.title_in("why recommend Titanic (1997) to user 3")[0] == ("1721",)
    with pytest.raises(Unresolved) as err:
        movies.item("Star Wars")  # a little of each of several titles: ask, never pick the shortest
    assert set(err.value.candidates) == {"260", "61160"}
    assert movies.item("star wars a new hope") == "260"
    with pytest.raises(Unresolved) as err:
        shop.item("the flux capacitor")
    assert "flux capacitor" in err.value.message and err.value.candidates


@pytest.mark.parametrize("ref,expected", [
    (3, 3), ("3", 3), ("biggest", 0), ("the largest segment", 0), ("smallest", 5), ("second largest", 1), ("the second smallest", 4),
    ("the book reviewers", 4), ("book reviewrs", 4), ("gamers", 5), ("the garden segment", 2), ("the fashion crowd", 1),
    ("lapsed toy buyers", 5), ("the high-spend computer people", 3),
])
def test_a_segment_by_id_rank_or_name(shop, ref, expected):
    assert shop.segment(ref) == expected


def test_segments_in_a_request_in_the_order_written(shop):
    def ids(text):
        return [sid for m in shop.segments_in(text) for sid in m.segment_ids]

    assert ids("compare the two largest segments") == [0, 1]
    assert ids("the two smallest groups") == [5, 4]
    assert ids("compare the biggest and smallest") == [0, 5]
    assert ids("the third and fourth largest segments") == [2, 3]
    assert ids("how do the book reviewers differ from the electronics buyers") == [4, 3]
    assert ids("compare segment 2 and segment 9") == [2, 9]  # checked where it is used: 9 does not exist
    assert ids("seg 0 vs seg 4") == [0, 4]
    # Words that only brush a segment's name are not a mention of it.
    assert ids("who buys running shoes") == [] and ids("the biggest spenders") == [] and ids("find users who love gardening") == []
    with pytest.raises(Unresolved) as err:
        shop.segment("the vampire hunters")
    assert "vampire hunters" in err.value.message and err.value.candidates
    with pytest.raises(Unresolved) as err:
        shop.segments.check(9)
    assert "9" in err.value.message and "Book Reviewers" in err.value.message


def test_the_index_is_read_from_the_run_without_its_events(tmp_path):
    ws = sample_workspace(tmp_path, n_users=120, seed=3)
    run_dir = Workspace(ws).require_run()
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "events.parquet").unlink()  # resolution must not need the events
    index = WorkspaceIndex.load(copy)
    resolver = Resolver(index)
    assert len(index.users) == 120 and resolver.user("u00001") == "u00001"
    assert resolver.segment("biggest") == max(index.segments.by_id.values(), key=lambda s: (s.size, -s.id)).id
    titles = list(index.title_of.values())
    item, title = next((i, t) for i, t in index.title_of.items() if titles.count(t) == 1)
    assert resolver.item(title) == item and resolver.item(title.lower()) == item


def test_a_bare_number_where_a_user_goes(shop, movies):
    """Where ids look like u00042, "for 42" / "does 42" is user 42 (or an unknown user), never a count or an amount."""
    assert [(m.user, m.unknown) for m in shop.ids_in("recommend something for 42")] == [("u00042", None)]
    assert [(m.user, m.unknown) for m in shop.ids_in("what segment does 42 belong to")] == [("u00042", None)]
    assert [(m.token, m.unknown) for m in shop.ids_in("recommend something for 17850")] == [("17850", "user")]
    assert shop.ids_in("customers who spent more than 500") == [] and shop.ids_in("customers who spent 500") == []
    assert shop.ids_in("top 5 picks for segment 3 in the last 30 days") == []
    # "customer id 42", "user no 42": the noun before the id word says which; a number said as a user's is never an item
    assert [m.user for m in shop.ids_in("recs for customer id 42")] == ["u00042"]
    assert [(m.user, m.item, m.unknown) for m in movies.ids_in("what should user 3114 watch")] == [(None, None, "user")]
    assert [(m.token, m.unknown) for m in movies.ids_in("what should user 0 watch")] == [("0", "user")]


def test_a_long_title_word_may_be_two_letters_off():
    resolver = Resolver(WorkspaceIndex(["u00001"], ["i00474", "i00475"], ["Quantix Ultralight Laptop", "Quantix Ultralight SSD"], SEGMENTS))
    assert resolver.item("the quantix ultralite laptop") == "i00474"
    with pytest.raises(Unresolved):
        resolver.item("the quantix ultra laptop")  # a missing word part is not a typo
    films = Resolver(WorkspaceIndex(["1"], ["858", "4127"], ["Godfather, The (1972)", "Like Father, Like Son (1987)"], SEGMENTS))
    assert films.title_in("why would 18 like the godfather")[0] == ("858",)  # "godfather" is not "father" three letters short


def test_the_biggest_two_is_two_segments_and_the_biggest_five_spenders_none(shop):
    def ids(text):
        return [sid for m in shop.segments_in(text) for sid in m.segment_ids]

    assert ids("compare the biggest two and write a report") == [0, 1] and ids("the largest 2") == [0, 1]
    assert ids("the biggest 5 spenders") == [] and ids("the biggest 3 spenders in segment 2") == [2]


def test_a_whole_name_resolves_even_when_each_of_its_words_is_shared():
    from tools.explain.segment_refs import SegmentInfo, SegmentNames

    names = SegmentNames([SegmentInfo(0, "Non-Beauty Buyers", 300), SegmentInfo(1, "Repeat Beauty Buyers", 100),
                          SegmentInfo(2, "Repeat Budget Buyers", 80)])
    assert names.by_whole_name("repeat beauty buyers") == 1 and names.by_whole_name("the Repeat Beauty Buyers") == 1
    assert names.by_whole_name("beauty buyers") is None


def test_a_request_naming_a_segment_by_its_whole_name_of_shared_words_routes_to_it():
    from tools.explain.segment_refs import SegmentInfo, SegmentNames, find_segment_mentions

    names = SegmentNames([SegmentInfo(0, "Lapsed Drama Viewers", 300), SegmentInfo(1, "Lapsed Thriller Fans", 100),
                          SegmentInfo(2, "Thriller & Crime Fans", 80)])
    found = find_segment_mentions("describe the lapsed thriller fans", names)
    assert [m.segment_ids for m in found] == [(1,)]


def test_a_word_a_parent_shares_only_with_its_own_sub_segments_names_the_parent():
    """Two-level runs: "Home & Garden Buyers" over "Occasional Garden Buyers" is one family, not two garden segments."""
    from tools.explain.segment_refs import SegmentInfo, SegmentNames, find_segment_mentions

    names = SegmentNames([SegmentInfo(2, "Home & Garden Buyers", 548), SegmentInfo(3, "High-spend Electronics Buyers", 420),
                          SegmentInfo(10, "Repeat High-spend Buyers", 290, parent=2, level=1),
                          SegmentInfo(11, "Occasional Garden Buyers", 258, parent=2, level=1),
                          SegmentInfo(12, "Repeat Top-spend Buyers", 239, parent=3, level=1),
                          SegmentInfo(13, "Occasional Mid-spend Buyers", 181, parent=3, level=1)])

    def ids(text, lenient=False):
        return [sid for m in find_segment_mentions(text, names, lenient) for sid in m.segment_ids]

    assert ids("explain the garden segment") == [2] and ids("garden", lenient=True) == [2]
    assert ids("describe the occasional garden buyers") == [11]  # the sub-segment, named more closely
    # "spenders" are people who spend: not the "-spend" segments, whose shared word "spend" it only resembles.
    assert ids("top spenders") == [] and ids("who are the top spenders in segment 3") == [3]
    # A word held by two families stays ambiguous.
    assert ids("the occasional segment") == []


def test_a_keyword_a_parent_shares_only_with_its_sub_segments_names_the_parent():
    """"the fashion crowd": "fashion" is a keyword of the clothing buyers and of their two sub-segments, one family."""
    from tools.explain.segment_refs import SegmentInfo, SegmentNames, find_segment_mentions

    names = SegmentNames([SegmentInfo(1, "Shoe & Clothing Buyers", 650, ("shoes", "fashion", "outfit")),
                          SegmentInfo(2, "Home & Garden Buyers", 540, ("garden", "kitchen", "outdoor")),
                          SegmentInfo(8, "Heavy-repeat Buyers", 300, ("shoes", "fashion", "sandals"), parent=1, level=1),
                          SegmentInfo(9, "Occasional Clothing Buyers", 350, ("clothing", "fashion", "hoodie"), parent=1, level=1),
                          SegmentInfo(10, "Repeat High-spend Buyers", 290, ("garden", "outdoor", "patio"), parent=2, level=1),
                          SegmentInfo(11, "Occasional Garden Buyers", 250, ("garden", "outdoor", "lawn"), parent=2, level=1)])

    def ids(text):
        return [sid for m in find_segment_mentions(text, names) for sid in m.segment_ids]

    assert ids("info on the fashion crowd") == [1] and ids("what do we know about the outdoor people") == [2]
    assert ids("describe the hoodie folks") == [9]  # a keyword of one sub-segment only names it
    assert ids("who buys fashion") == []  # a taste, with no group noun: a search, not a segment


def test_the_top_one_is_a_position_not_the_top_spend_segment():
    from tools.explain.segment_refs import SegmentInfo, SegmentNames, find_segment_mentions

    names = SegmentNames([SegmentInfo(3, "High-spend Electronics Buyers", 420),
                          SegmentInfo(12, "Repeat Top-spend Buyers", 239, parent=3, level=1),
                          SegmentInfo(13, "Occasional Mid-spend Buyers", 181, parent=3, level=1)])

    def ids(text):
        return [sid for m in find_segment_mentions(text, names) for sid in m.segment_ids]

    assert ids("why is the top one in its segment?") == [] and ids("and the first result?") == []
    assert ids("describe the top-spend segment") == [12] and ids("the top spend buyers") == [12]
