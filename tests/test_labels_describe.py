"""Extractive labels, label distinctiveness, describe and compare, on small generated data (hashing embedder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
import re
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import dataset_from_frames

from tools.core.errors import ParameterError, WorkspaceError
from tools.core.run_state import load_run
from tools.core.workspace import Workspace
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.explain.describe import compare_segments, describe_segment, typical_items
from tools.explain.labels import SegmentLabel, extractive_label, label_segments
from tools.explain.contrast import relative_traits
from tools.explain.names import names_clash
from tools.explain.quality import (
    apply_labels,
    contrastive_members,
    distinctiveness_by_segment,
    label_distinctiveness,
)
from tools.pipeline import RunParams, segment_dataset

PARAMS = RunParams(embedder="hashing-64", seed=3)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A finished run on the 400-user sample (module-scoped: segmenting is the slow part)."""
    root = tmp_path_factory.mktemp("shop")
    generate_sample(root / "data", n_users=400, seed=3)
    segment_dataset(load_dataset(root / "data"), root / "ws", PARAMS, embedder=HashingEmbedder(), write_store=False)
    return load_run(root / "ws")


@pytest.fixture(scope="module")
def messages(tmp_path_factory):
    """A text-only run: three obvious kinds of customer message."""
    themes = {
        "card": ["when will my new card arrive", "my card has not arrived yet", "card delivery is taking long"],
        "refund": ["how do i get a refund for this charge", "refund request for a wrong payment", "still waiting for my refund"],
        "pin": ["i forgot my pin code", "how can i reset my pin", "my pin is blocked after three tries"],
    }
    rows = [{"user_id": f"m{t}{i}", "event_type": "text", "text": f"{text} please", "item_id": None}
            for t, texts in enumerate(themes.values()) for i, text in enumerate(texts * 8)]
    data = dataset_from_frames(pd.DataFrame(rows), kind="text")
    root = tmp_path_factory.mktemp("messages")
    segment_dataset(data, root / "ws", RunParams(embedder="hashing-64", k=3), embedder=HashingEmbedder(), write_store=False)
    return load_run(root / "ws")


def allowed_numbers(seg: dict, extra: tuple[float, ...] = (), segments: Sequence[dict] = ()) -> set[str]:
    """Every way the segment's own numbers may be printed (0-2 decimals, shares also as percentages).

    Its own: size, share, id, every trait and profile value; with ``segments``, also its siblings'
    pooled values (a sub-segment is described against the rest of its parent).
    """
    values = [seg["size"], seg["share"], seg["id"], len(seg.get("children") or ()), *extra]  # "in 6 sub-segments"
    for t in [*seg["traits"], *seg.get("profile", []), *seg.get("traits_vs_parent", [])]:
        values += [t["segment_value"], t["population_value"]] + ([t["lift"]] if t["lift"] is not None else [])
    values += [r.sibling_value for r in relative_traits(seg, segments) if r.sibling_value is not None] if segments else []
    out = set()
    for v in values:
        for x in (v, 100 * v):
            out |= {f"{x:.{d}f}" for d in (0, 1, 2)}
    return out


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("run_name", ["shop", "messages"])
def test_names_are_unique_and_short_and_descriptions_two_sentences(run_name, request):
    run = request.getfixturevalue(run_name)
    labels = label_segments(run.summary)
    names = [lab.name for lab in labels]
    assert [lab.segment_id for lab in labels] == [s["id"] for s in run.summary["segments"]]
    assert not any(names_clash(a, b) for i, a in enumerate(names) for b in names[i + 1:]), names
    assert all(1 <= len(n.split()) <= 5 for n in names), names
    assert not any(re.search(r"\d", n) for n in names), names  # disambiguated by words, not numbers
    for lab in labels:
        assert lab.source == "extractive" and lab.template is None and lab.facts
        assert len(sentences(lab.description)) == 2, lab.description


@pytest.mark.parametrize("run_name", ["shop", "messages"])
def test_every_number_in_a_description_is_one_of_the_segments_numbers(run_name, request):
    run = request.getfixturevalue(run_name)
    for lab, seg in zip(label_segments(run.summary), run.summary["segments"]):
        allowed = allowed_numbers(seg, segments=run.summary["segments"])
        found = NUMBER.findall(lab.description)
        assert found, lab.description
        assert str(seg["size"]) == found[0]
        assert [n for n in found if n not in allowed] == [], lab.description


def test_names_follow_the_planted_themes(shop):
    names = " ".join(lab.name for lab in label_segments(shop.summary))
    assert "Book" in names and ("Garden" in names or "Home" in names)


def trait(feature, effect, label="x", unit="share", value=0.5, pop=0.2):
    return {"feature": feature, "label": label, "unit": unit, "segment_value": value, "population_value": pop,
            "lift": value / pop, "effect": effect}


def seg(sid, traits, keywords=("alpha", "beta", "gamma")):
    return {"id": sid, "size": 100 - sid, "share": 0.2, "keywords": list(keywords), "traits": traits,
            "representative_user_ids": [], "representative_texts": []}


def test_rules_give_marketer_names():
    shop = [trait("share_purchase", 0.1), trait("monetary", 0.1, unit="money")]
    cases = {
        "High-spend Electronics Buyers": [trait("category_Electronics", 2.0), trait("avg_price", 1.5, unit="money", value=190, pop=50)],
        "Book Reviewers": [trait("category_Books", 2.9), trait("share_review", 1.9)],
        "Lapsed Occasional Shoppers": [trait("recency_days", 2.5, unit="days", value=270, pop=70),
                                       trait("frequency", -1.4, unit="count", value=2, pop=10)],
    }
    context = [seg(9, shop)] + [seg(i, t) for i, t in enumerate(cases.values())]
    for (expected, traits), s in zip(cases.items(), context[1:]):
        assert extractive_label(s, context, "behaviour").name == expected
    movies = [seg(0, [trait("category_Horror", 1.5), trait("category_Thriller", 1.2), trait("rating_mean", 0.3, unit="rating")]),
              seg(1, [trait("share_rating", 0.1)])]
    assert extractive_label(movies[0], movies, "behaviour").name == "Horror & Thriller Fans"
    texts = [seg(0, [], keywords=("card", "arrive", "cards", "new")) | {"representative_texts": ["Where is my card?"] * 3}]
    assert extractive_label(texts[0], texts, "text").name == "Card Arrive Questions"


def test_clashing_names_get_a_distinguishing_word_never_a_number():
    books = trait("category_Books", 2.0)
    segments = [seg(0, [books, trait("recency_days", 0.9, unit="days")]), seg(1, [books, trait("frequency", 0.8, unit="count")]),
                seg(2, [books], keywords=("delta", "alpha")), seg(3, [trait("category_Books", -1.5, value=0.02)], keywords=())]
    names = [lab.name for lab in label_segments({"data": {"kind": "behaviour"}, "segments": segments})]
    # "alpha" is a keyword of most segments, so it tells none apart; "delta" is segment 2's own.
    assert names == ["Lapsed Book Users", "Frequent Book Users", "Delta Book Users", "Non-Book Users"]
    twins = [seg(0, [books], keywords=()), seg(1, [books], keywords=())]
    names = [lab.name for lab in label_segments({"data": {"kind": "behaviour"}, "segments": twins})]
    assert names == ["Larger Book Users", "Smaller Book Users"]


# ---------------------------------------------------------------- distinctiveness and apply

def test_distinctiveness_is_a_share_overall_and_per_segment(shop):
    labels = label_segments(shop.summary)
    emb = HashingEmbedder()
    overall = label_distinctiveness(labels, shop, emb)
    per = distinctiveness_by_segment(labels, shop, emb)
    assert 0.0 <= overall <= 1.0
    assert set(per) == set(np.unique(shop.labels).tolist()) and all(0 <= v <= 1 for v in per.values())  # the leaves
    sizes = np.bincount(shop.labels)
    assert overall == pytest.approx(sum(per[s] * sizes[s] for s in per) / sizes.sum())
    with pytest.raises(WorkspaceError):
        label_distinctiveness(labels, shop, HashingEmbedder(dim=32))


def _without_labels(summary: dict) -> dict:
    named = ("name", "description", "label_source", "label_template")
    return {**summary, "labels": None, "segments": [{k: v for k, v in s.items() if k not in named} for s in summary["segments"]]}


def test_apply_labels_writes_both_segments_files(shop, tmp_path):
    # Labels unlike the pipeline's own (an LLM's, say), applied to a copy so the shared run keeps its names.
    workspace = tmp_path / "ws"
    shutil.copytree(shop.workspace, workspace)
    before = json.loads((workspace / "segments.json").read_text())
    labels = [SegmentLabel(s["id"], f"Renamed Segment {chr(65 + i)}", f"Relabelled description number {i}.", "openai:test",
                           "label_segment.v1") for i, s in enumerate(before["segments"])]
    assert not {lab.name for lab in labels} & {s["name"] for s in before["segments"]}
    labels[-1] = SegmentLabel(labels[-1].segment_id, "Kept Extractive Name", "An extractive fallback.")  # one fell back
    summary = apply_labels(workspace, labels[::-1], 0.4321)  # matched by id, not by position
    run_dir = Workspace(workspace).run_dir(shop.run_dir.name)
    for path in (workspace / "segments.json", run_dir / "segments.json"):
        written = json.loads(path.read_text())
        assert written == summary
        assert [(s["name"], s["description"], s["label_source"], s["label_template"]) for s in written["segments"]] == [
            (lab.name, lab.description, lab.source, lab.template) for lab in labels]
        assert written["labels"] == {"distinctiveness": 0.4321, "source": "mixed", "templates": ["label_segment.v1"]}
        assert _without_labels(written) == _without_labels(before)  # nothing else in the summary changes
    reloaded = load_run(workspace)
    assert describe_segment(reloaded, labels[0].segment_id).name == "Renamed Segment A"
    assert '"Renamed Segment A"' in describe_segment(reloaded, labels[0].segment_id).narrative
    # The shared run is untouched.
    assert [s["name"] for s in json.loads((shop.workspace / "segments.json").read_text())["segments"]] == [
        s["name"] for s in shop.summary["segments"]]
    with pytest.raises(WorkspaceError):
        apply_labels(workspace, labels[1:], 0.5)
    with pytest.raises(WorkspaceError):
        apply_labels(workspace, labels, 0.5, run_key="another-run")
    assert json.loads((workspace / "segments.json").read_text()) == summary  # a refused write changes nothing


# ---------------------------------------------------------------- describe and compare

def test_describe_lists_truly_over_represented_items(shop):
    d = describe_segment(shop, 1, n_items=5)
    assert d.typical_items and all(i.lift > 1 and i.count >= 5 for i in d.typical_items)
    shrunk = [(i.count + 5) / (i.count / i.lift + 5) for i in d.typical_items]  # ranked by lift shrunk towards 1
    assert shrunk == sorted(shrunk, reverse=True)
    ev = shop.data.events
    in_seg = ev["user_id"].isin(set(shop.user_ids[shop.members(1)].tolist()))
    top = d.typical_items[0]
    count = int((ev.loc[in_seg, "item_id"] == top.item_id).sum())
    lift = (count / in_seg.sum()) / ((ev["item_id"] == top.item_id).sum() / len(ev))
    assert (top.count, top.lift) == (count, pytest.approx(lift))
    assert top.title == shop.data.items.set_index("item_id").loc[top.item_id, "title"]


def test_describe_narrative_uses_only_its_own_numbers(shop):
    for s in shop.summary["segments"]:
        d = describe_segment(shop, s["id"])
        assert d.size == s["size"] and d.keywords == tuple(s["keywords"]) and d.name
        assert 2 <= len(sentences(d.narrative)) <= 3
        items = tuple(x for i in d.typical_items for x in (i.count, i.lift))
        unquoted = re.sub(r'"[^"]*"', "", d.narrative)  # the name and item titles are quoted data
        assert [n for n in NUMBER.findall(unquoted) if n not in allowed_numbers(s, items, shop.summary["segments"])] == [], d.narrative
        assert len(d.contrastive_user_ids) == 3
        assert not any(shop.members(s["id"])[shop.row_of(u)] for u in d.contrastive_user_ids)
        assert d.representative_user_ids == tuple(s["representative_user_ids"]) and d.note is None
        json.dumps(d.as_dict())


def test_contrastive_members_are_the_nearest_outsiders(shop):
    got = contrastive_members(shop, 0, n=3)
    members = shop.members(0)  # a top-level segment: all of its sub-segments' members
    dist = ((shop.fused - shop.fused[members].mean(axis=0)) ** 2).sum(axis=1)
    dist[members] = np.inf
    assert got == [str(shop.user_ids[i]) for i in np.argsort(dist, kind="stable")[:3]]


def test_small_segments_never_list_their_members(shop):
    sizes = np.bincount(shop.labels, minlength=max(shop.leaf_ids) + 1).astype(float)
    sizes[[s["id"] for s in shop.summary["segments"] if s["children"]]] = np.inf  # leaves only
    small = int(np.argmin(sizes))
    d = describe_segment(shop, small, min_segment_size=int(sizes[small]) + 1)
    assert d.representative_user_ids == () and d.representative_texts == () and d.contrastive_user_ids == ()
    assert d.note == f"segment smaller than {int(sizes[small]) + 1}: members not listed"
    other = int(np.argmax(np.where(np.isfinite(sizes), sizes, -1)))
    outsiders = describe_segment(shop, other, min_segment_size=int(sizes[small]) + 1).contrastive_user_ids
    assert outsiders and all(shop.labels[shop.row_of(u)] != small for u in outsiders)


def test_compare_ranks_traits_by_standardised_gap(shop):
    c = compare_segments(shop, 0, 1, n=6)
    raw = shop.feature_raw
    with np.errstate(invalid="ignore"):
        gap = (np.nanmean(raw[shop.members(0)], axis=0) - np.nanmean(raw[shop.members(1)], axis=0)) / np.nanstd(raw, axis=0)
    best = int(np.nanargmax(np.abs(gap)))
    top = c.differences[0]
    assert top.feature == shop.feature_names[best]
    assert top.std_difference == pytest.approx(gap[best])
    assert top.value_a == pytest.approx(np.nanmean(raw[shop.members(0), best]))
    assert top.ratio == pytest.approx(top.value_a / top.value_b)
    assert len(c.differences) == 6
    assert [abs(d.std_difference) for d in c.differences] == sorted((abs(d.std_difference) for d in c.differences), reverse=True)
    assert set(c.keywords_only_a).isdisjoint(shop.segment(1)["keywords"])
    assert (c.a.size, c.b.size) == (shop.segment(0)["size"], shop.segment(1)["size"])
    assert len(sentences(c.narrative)) == 1
    with pytest.raises(ParameterError):
        compare_segments(shop, 1, 1)


@pytest.mark.slow
def test_real_model_labels_name_the_planted_themes_and_are_distinct(tmp_path):
    from tools.embed.embedding import SentenceTransformerEmbedder

    generate_sample(tmp_path / "data", n_users=600, seed=7)
    embedder = SentenceTransformerEmbedder()
    segment_dataset(load_dataset(tmp_path / "data"), tmp_path / "ws", RunParams(seed=7), embedder=embedder, write_store=False)
    run = load_run(tmp_path / "ws")
    labels = label_segments(run.summary)
    names = " ".join(lab.name for lab in labels)
    for theme in ("Book", "Garden", "Electronics", "Clothing"):
        assert theme in names, names
    assert label_distinctiveness(labels, run, embedder) >= 0.6


def test_text_runs_describe_without_items(messages):
    d = describe_segment(messages, 0)
    assert d.typical_items == () and d.representative_texts and d.traits == ()
    assert typical_items(messages, 0) == ()
    c = compare_segments(messages, 0, 1)
    assert c.differences == () and (c.keywords_only_a or c.keywords_only_b)


def test_distinctiveness_scores_only_the_segments_users_are_in(shop):
    """A parent's label (a segment no user is in directly) takes no part: the LLM relabelling passes every label."""
    labels = label_segments(shop.summary)
    emb = HashingEmbedder()
    leaf = next(lab for lab in labels if (shop.labels == lab.segment_id).any())
    # the same text as a leaf's and listed first, so it wins every tie with that leaf's label if it is scored
    parent = replace(leaf, segment_id=max(lab.segment_id for lab in labels) + 1)
    assert label_distinctiveness([parent, *labels], shop, emb) == label_distinctiveness(labels, shop, emb)
    assert set(distinctiveness_by_segment([parent, *labels], shop, emb)) == set(np.unique(shop.labels).tolist())
