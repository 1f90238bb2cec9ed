"""Reports: self-contained escaped HTML, GitHub Markdown, the small-segment rule, atomic writes, map sampling."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import tools.core.workspace as workspace
from helpers import HOSTILE_GROUP, canned_audit
from tools.core.errors import ParameterError
from tools.report.charts import (
    MAX_MAP_POINTS,
    PALETTE,
    map_coordinates,
    segment_colours,
)
from tools.report.html import render_html
from tools.report.markdown import md_escape, render_markdown
from tools.report.model import ExampleRecommendation, ReportInput
from tools.report.write import write_report

HOSTILE_TITLE = "<script>alert(1)</script>"


def trait(feature, label, unit, seg, pop, lift, effect):
    return {"feature": feature, "label": label, "unit": unit, "segment_value": seg, "population_value": pop,
            "lift": lift, "effect": effect}


def make_summary(kind: str = "behaviour") -> dict:
    """Three segments as segments.json has them; segment 2 is tiny (4 members)."""
    return {
        "segscope_version": "1",
        "run_key": "abc",
        "data": {"source": "shop/events.csv", "kind": kind, "n_users": 124, "n_items": 40, "n_events": 2000,
                 "warnings": ["shop: ignored files: truth.csv"]},
        "parameters": {"algorithm": "kmeans", "k": "auto", "alpha": 0.5, "seed": 0, "embedder": "hashing"},
        "k": 3,
        "k_selection": {
            "reason": "k=3: smallest k with silhouette within 3% of the best",
            "candidates": [{"k": k, "silhouette": s, "calinski_harabasz": 10.0, "davies_bouldin": 1.0}
                           for k, s in ((2, 0.2), (3, 0.31), (4, 0.25))],
        },
        "metrics": {"silhouette": 0.31, "calinski_harabasz": 120.5, "davies_bouldin": 0.9},
        "labels": {"distinctiveness": 0.875, "source": "extractive"},
        "segments": [
            {
                "id": 0, "name": 'Gardeners "green" <b>thumbs</b>', "description": "They buy compost & tulips.",
                "size": 80, "share": 80 / 124, "keywords": ["tulip", "compost", "<img src=x onerror=alert(1)>"],
                "traits": [
                    trait("category_Garden", "share of activity in Garden", "share", 0.6, 0.2, 3.0, 1.5),
                    trait("recency_days", "days since last activity", "days", 3.0, 30.0, 0.1, -1.2),
                    trait("x", "odd | label *with* specials", "count", 5.0, 0.0, None, 0.8),
                ],
                "representative_user_ids": ["g001", "g002"],
                "representative_texts": ["mail me at ann@example.com <img src=x>", "second | text"],
            },
            {
                "id": 1, "name": "Watch Collectors", "description": "Few, pricey purchases.",
                "size": 40, "share": 40 / 124, "keywords": ["chronograph"],
                "traits": [trait("avg_price", "average price of items", "money", 1200.0, 300.0, 4.0, 2.0)],
                "representative_user_ids": ["w001"], "representative_texts": [],
            },
            {
                "id": 2, "name": None, "description": None, "size": 4, "share": 4 / 124, "keywords": ["zombie"],
                "traits": [trait("rating_mean", "average rating", "rating", 2.0, 3.5, 0.57, -1.0)],
                "representative_user_ids": ["tiny1", "tiny2"], "representative_texts": ["secret tiny text"],
            },
        ],
    }


def make_input(**overrides) -> ReportInput:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [80, 40, 4])
    points = rng.normal(size=(len(labels), 2)) + labels[:, None] * 3
    examples = {
        0: [ExampleRecommendation("g001", "i1", HOSTILE_TITLE, "Similar to what you chose | twice.", True, "extractive")],
        1: [ExampleRecommendation("w001", "i9", "Sapphire Bezel", "Made-up claim: 99% love it.", False, "openai")],
        2: [ExampleRecommendation("tiny1", "i7", "Tiny Segment Pick", "because.", True, "extractive")],
    }
    args = dict(summary=make_summary(), map_points=points, map_labels=labels, examples=examples,
                explanation_pass_rate=0.5, generated_by="segscope 0.1.0, backend extractive")
    args.update(overrides)
    return ReportInput(**args)


def cards(html: str) -> dict[int, str]:
    """Each card's HTML by segment id."""
    found = re.findall(r'<article class="card" id="segment-(\d+)".*?</article>', html, flags=re.S)
    bodies = re.findall(r'<article class="card" id="segment-\d+".*?</article>', html, flags=re.S)
    return {int(i): body for i, body in zip(found, bodies)}


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# ---------------------------------------------------------------- HTML


def test_html_is_one_self_contained_page():
    html = render_html(make_input())
    assert html.startswith("<!doctype html>")
    parser = TagCollector()
    parser.feed(html)
    tags = {t for t, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not value.startswith(("http://", "https://", "//")), (name, value)
        assert not any(a.startswith("on") for a in attrs)  # no inline event handlers either
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html
    assert "<style>" in html and "<svg" in html


def test_all_data_text_is_escaped():
    html = render_html(make_input())
    assert HOSTILE_TITLE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>thumbs</b>" not in html and "Gardeners &quot;green&quot; &lt;b&gt;thumbs&lt;/b&gt;" in html
    assert "compost &amp; tulips" in html


def test_one_card_per_segment_in_id_order():
    html = render_html(make_input())
    assert list(cards(html)) == [0, 1, 2]
    assert html.count('<article class="card"') == 3
    assert "Segment 2" in cards(html)[2]  # an unnamed segment is called by its number


def test_segment_id_renders_only_that_card_with_the_overview():
    html = render_html(make_input(), segment_id=1)
    assert list(cards(html)) == [1]
    assert "Watch Collectors" in html and "Gardeners" not in cards(html)[1]
    assert "smallest k with silhouette" in html  # the overview is still there
    md = render_markdown(make_input(), segment_id=1)
    assert md.count("\n### ") == 1 and "### 1. Watch Collectors" in md
    with pytest.raises(ParameterError):
        render_html(make_input(), segment_id=7)


def test_lift_chart_has_one_bar_per_trait_with_a_lift():
    html = render_html(make_input())
    by_id = cards(html)
    assert html.count('<svg class="lift"') == 3
    # Segment 0 has three traits, one without a lift (population value 0): two bars, three labelled rows.
    assert by_id[0].count('class="bar"') == 2
    assert "odd | label *with* specials" in by_id[0] and "5.0 vs 0.0 (none overall)" in by_id[0]
    assert by_id[1].count('class="bar"') == 1
    assert "3.0×" in by_id[0] and "0.1×" in by_id[0] and "4.0×" in by_id[1]  # value labels
    assert 'class="ref"' in by_id[0]  # the 1× line


def test_small_segments_are_never_shown_individually():
    inp = make_input()
    html, md = render_html(inp), render_markdown(inp)
    tiny = cards(html)[2]
    note = "fewer than 10 members: not shown individually"
    assert note in tiny and note in md
    for secret in ("tiny1", "tiny2", "secret tiny text", "Tiny Segment Pick"):
        assert secret not in html and secret not in md
    assert "zombie" in tiny and 'class="bar"' in tiny  # aggregates are still shown
    assert note not in cards(html)[0]
    assert "g001" in cards(html)[0] and "w001" in cards(html)[1]
    # With a lower threshold the same segment is shown in full.
    assert "tiny1" in render_html(make_input(min_segment_size=3))


def test_cards_show_examples_with_verification_badges_and_masked_texts():
    by_id = cards(render_html(make_input()))
    assert "verified ✓" in by_id[0] and "phrased by extractive" in by_id[0]
    assert "not verified" in by_id[1] and "phrased by openai" in by_id[1]
    assert "ann@example.com" not in by_id[0] and "[email]" in by_id[0]  # a member's text is masked
    assert "<blockquote>second | text</blockquote>" in by_id[0]


def test_overview_reports_data_run_and_quality():
    html = render_html(make_input())
    for expected in ("shop/events.csv", "124", "2,000", "kmeans", "smallest k with silhouette", "0.310",
                     "120.5", "87.5%", "50.0%", "ignored files: truth.csv", "segscope 0.1.0, backend extractive"):
        assert expected in html, expected
    quiet = render_html(make_input(explanation_pass_rate=None))
    assert "Explanations verified" not in quiet
    summary = make_summary()
    summary.pop("labels")
    summary["k_selection"] = None
    plain = render_html(make_input(summary=summary))
    assert "Label distinctiveness" not in plain and "Why this k" not in plain


def test_map_has_a_legend_of_names_and_at_most_3000_dots():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], [4000, 996, 4])
    html = render_html(make_input(map_points=rng.normal(size=(5000, 2)), map_labels=labels))
    dots = re.findall(r"M[\d.]+ [\d.]+h0", html)
    assert 0 < len(dots) <= MAX_MAP_POINTS
    for seg in (0, 1, 2):
        assert f'data-segment="{seg}"' in html  # every segment still on the map
    legend = re.search(r'<ul class="legend">.*?</ul>', html, flags=re.S).group(0)
    assert "Gardeners &quot;green&quot;" in legend and "Watch Collectors" in legend and "Segment 2" in legend


def test_colours_come_from_the_palette_largest_first():
    colours = segment_colours({0: 5, 1: 50, 2: 20})
    assert colours == {1: PALETTE[0], 2: PALETTE[1], 0: PALETTE[2]}
    many = segment_colours({i: 100 - i for i in range(12)})
    assert len({many[i] for i in range(len(PALETTE))}) == len(PALETTE)
    assert len({many[i] for i in range(len(PALETTE), 12)}) == 1  # the rest share one grey


# ---------------------------------------------------------------- Markdown


def test_markdown_has_trait_tables_with_escaped_cells():
    md = render_markdown(make_input())
    lines = md.splitlines()
    start = lines.index("| Trait | Segment (95% CI) | Overall | Lift |")
    assert lines[start + 1] == "|---|---|---|---|"
    rows = lines[start + 2 : start + 5]
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 5 for row in rows)  # 4 columns, no stray pipe
    assert rows[0] == "| share of activity in Garden | 60% | 20% | 3.0× |"
    assert rows[2] == r"| odd \| label \*with\* specials | 5.0 | 0.0 | — |"
    assert "## Segments" in md and "| 2 | Segment 2 | 4 | 3.2% |" in md
    assert "**Keywords:** tulip, compost, \\<img src=x onerror=alert(1)\\>" in md
    assert "<script>" not in md and "\\<script\\>alert(1)\\</script\\>" in md
    assert "- **" in md and "(verified ✓, phrased by extractive)" in md and "(not verified, phrased by openai)" in md
    assert "<svg" not in md


def test_md_escape_folds_lines_and_neutralises_markup():
    assert md_escape("a|b") == r"a\|b"
    assert md_escape("line one\n| two") == r"line one \| two"
    assert md_escape("*x* _y_ [z](u) `c` #h") == r"\*x\* \_y\_ \[z\](u) \`c\` \#h"
    assert md_escape("Tom &amp; Jerry & co") == "Tom &amp;amp; Jerry & co"


# ---------------------------------------------------------------- files


def test_write_report_replaces_the_file_atomically(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old report")
    assert write_report(make_input(), out) == out
    assert out.read_text().startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left
    md = write_report(make_input(), tmp_path / "r.md", fmt="md", segment_id=0)
    assert md.read_text().startswith("# segscope report")
    assert write_report(make_input(), tmp_path).name == "report.html"  # a folder gets report.<fmt>
    with pytest.raises(ParameterError):
        write_report(make_input(), out, fmt="pdf")


def test_a_failed_write_keeps_the_previous_report(tmp_path, monkeypatch):
    out = tmp_path / "report.md"
    out.write_text("previous")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(workspace.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_report(make_input(), out, fmt="md")
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


# ---------------------------------------------------------------- map coordinates


def test_map_coordinates_samples_every_segment():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2, 3], [9000, 900, 97, 3])
    fused = rng.normal(size=(len(labels), 8)) + labels[:, None]
    points, got = map_coordinates(fused, labels, seed=0, max_points=1000)
    assert points.shape == (len(got), 2) and len(got) <= 1000
    counts = np.bincount(got, minlength=4)
    assert (counts > 0).all() and counts[3] == 3  # a tiny segment is kept whole
    assert counts[0] > counts[1] > counts[2]  # otherwise roughly proportional
    again, _ = map_coordinates(fused, labels, seed=0, max_points=1000)
    np.testing.assert_array_equal(points, again)


def test_map_coordinates_keeps_small_inputs_whole_and_degenerate_ones_2d():
    labels = np.array([0, 0, 1, 1, 1])
    points, got = map_coordinates(np.arange(10, dtype=float).reshape(5, 2), labels)
    assert points.shape == (5, 2) and got.tolist() == labels.tolist()
    one_feature, _ = map_coordinates(np.arange(5, dtype=float).reshape(5, 1), labels)
    assert one_feature.shape == (5, 2)
    html = render_html(make_input(map_points=points, map_labels=got))
    assert html.count('class="dots"') == 2


def test_an_empty_map_is_left_out(tmp_path):
    html = render_html(make_input(map_points=np.zeros((0, 2)), map_labels=np.zeros(0, dtype=int)))
    assert "Map of" not in html and html.count('<article class="card"') == 3


def test_text_data_reads_as_messages_without_items():
    summary = make_summary(kind="text")
    summary["data"]["n_items"] = 0
    for seg in summary["segments"]:
        seg["traits"] = []
    html = render_html(make_input(summary=summary, examples={}))
    assert "Map of messages" in html and "Representative messages" in html
    assert "<span>items</span>" not in html
    assert "What sets them apart" not in html  # no behaviour traits exist for text data
    assert "second | text" in html


def test_report_module_renders_without_a_workspace(tmp_path: Path, monkeypatch):
    # Pure rendering: a hand-built input is the whole report, nothing is read from or written to disk.
    monkeypatch.chdir(tmp_path)
    md = render_markdown(make_input())
    assert list(tmp_path.iterdir()) == []
    lines = md.splitlines()
    headings = [line for line in lines if line.startswith("#")]
    assert headings == ["# segscope report", "## Overview", "## Segments", '### 0. Gardeners "green" \\<b\\>thumbs\\</b\\>',
                        "### 1. Watch Collectors", "### 2. Segment 2"]
    assert lines[2] == "_segscope 0.1.0, backend extractive_"
    for row in ("| Size | 124 users, 40 items, 2,000 events, 3 segments |", "| Data | shop/events.csv (behaviour data) |",
                "| Method | kmeans, k = 3 (asked for: auto) |", "| Seed | 0 |", "| 1 | Watch Collectors | 40 | 32.3% |",
                "| Label distinctiveness | 87.5% | members whose own segment's label fits them best (labels by extractive) |",
                "| average price of items | 1200 | 300 | 4.0× |", "- warning: shop: ignored files: truth.csv",
                "**80 users** (64.5% of all)", "**Representative users:** g001, g002", "> second \\| text",
                "- **Sapphire Bezel** for w001 (not verified, phrased by openai): Made-up claim: 99% love it."):
        assert row in lines, row
    # Each card's facts sit under its own heading.
    card_1 = md[md.index("### 1. ") : md.index("### 2. ")]
    assert "Few, pricey purchases." in card_1 and "chronograph" in card_1 and "tulip" not in card_1
    assert md.endswith("_fewer than 10 members: not shown individually_\n") and "\n\n\n" not in md


def test_focusing_a_small_segment_of_many_still_colours_it():
    summary = make_summary()
    base = summary["segments"][1]
    summary["segments"] = [dict(base, id=i, name=f"S{i}", size=100 - i, share=(100 - i) / 1000) for i in range(12)]
    labels = np.arange(12).repeat(5)
    inp = make_input(summary=summary, map_points=np.random.default_rng(0).normal(size=(60, 2)), map_labels=labels,
                     examples={})
    full = render_html(inp)
    assert "4 smaller segments" in full
    focused = render_html(inp, segment_id=11)
    legend = re.search(r'<ul class="legend">.*?</ul>', focused, flags=re.S).group(0)
    assert "S11" in legend and "other segments" in legend
    assert f"--c:{PALETTE[0]}" in cards(focused)[11]


# ---------------------------------------------------------------- the fairness audit section
def test_the_audit_section_in_markdown_flags_the_proxy_and_escapes_data():
    md = render_markdown(make_input(audit=canned_audit()))
    section = md[md.index("## Fairness audit"): md.index("### 0.")]
    assert "Cramér's V 0.410 (bias-corrected; 0.430 uncorrected), permutation p = 0.001" in section
    assert "| Everyone | 124 | 50.0% | 50.0% |" in section.replace(md_escape(HOSTILE_GROUP), "H")
    assert "75.0% ×1.50 ▲" in section and "25.0% ×0.50 ▼" in section and "(fewer than 30: no verdict)" in section
    assert "is in effect a proxy for gender" in section and "share of activity in Garden (segment +1.50 sd, F +0.40 sd)" in section
    assert "worse recommendations" in section and "too few users (\\< 30)" in section and "not audited: zip\\_code" in section
    assert HOSTILE_GROUP not in section and md_escape(HOSTILE_GROUP) in section
    assert "## Fairness audit" not in render_markdown(make_input(audit=canned_audit()), segment_id=0)  # a one-segment report has none


def test_the_audit_section_in_html_is_escaped_and_says_when_recommendations_are_missing():
    html = render_html(make_input(audit=canned_audit(recommendations=False)))
    section = html[html.index("<section id='fairness'>"): html.index("</section>", html.index("<section id='fairness'>"))]
    assert "<b>x|y</b>" not in section and "&lt;b&gt;x|y&lt;/b&gt;" in section
    assert "Recommendations by group" not in section and "`segscope audit` adds it" in section
    assert "<section id='fairness'>" not in render_html(make_input())  # no audit, no section

# ---------------------------------------------------------------- intervals and significance


def _tested_input() -> ReportInput:
    """Segment 0's traits with their tests: two significant with intervals, one not significant."""
    summary = make_summary()
    garden, recency, _ = summary["segments"][0]["traits"]
    garden |= {"n": 80, "ci_low": 0.58, "ci_high": 0.66, "p": 1e-9, "q": 2e-8, "significant": True, "test": "welch"}
    recency |= {"n": 80, "ci_low": 2.0, "ci_high": 4.5, "p": 1e-5, "q": 3e-5, "significant": True, "test": "mann-whitney"}
    noise = trait("share_view", "share of events that are views", "share", 0.5, 0.3, 1.67, 0.9)
    noise |= {"n": 80, "ci_low": 0.1, "ci_high": 0.9, "p": 0.2, "q": 0.4, "significant": False, "test": "welch"}
    summary["segments"][0]["traits"] = [garden, recency, noise]
    summary["trait_tests"] = {"tests": 12, "significant": 7, "untested": 0, "alpha": 0.05}
    return make_input(summary=summary)


def test_reports_show_intervals_and_never_a_non_significant_trait():
    inp = _tested_input()
    md = render_markdown(inp)
    assert "| share of activity in Garden | 60% (58–66%) | 20% | 3.0× |" in md
    assert "| days since last activity | 3 (2–4) | 30 | 0.1× |" in md
    assert "views" not in md, "a trait that failed its test is not shown"
    assert "| Traits tested | 7 of 12 significant |" in md
    html = render_html(inp)
    assert "views" not in html
    assert "60% (58–66%) vs 20%" in html
    # The interval is drawn as an error bar on the lift chart: one per trait with an interval and a lift.
    card = html[html.index('id="segment-0"'):html.index('id="segment-1"')]
    assert card.count('class="ci"') == 2
    assert "95% interval of the segment mean: 60% (58–66%)" in card
    # A run made before traits were tested has no intervals: values alone, nothing hidden, no error bars.
    old = render_html(make_input())
    assert 'class="ci"' not in old and "days since last activity" in old
