"""assistant/reporting.py: a report assembled from a workspace, with verified example recommendations per segment."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from helpers import dataset_from_frames, sample_workspace

from assistant.config import load_settings
from assistant.reporting import build_report, example_recommendations
from assistant.service import WorkspaceService
from tools.core.errors import WorkspaceError
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    ws = sample_workspace(tmp_path_factory.mktemp("reporting"), seed=2)
    return WorkspaceService(ws, load_settings(), embedder=HashingEmbedder())


def _cards(html: str) -> dict[int, str]:
    return {int(i): body for i, body in re.findall(r'<article class="card(?: sub)?" id="segment-(\d+)"(.*?)</article>', html, flags=re.S)}


def test_examples_are_verified_recommendations_for_each_segments_own_members(service):
    run = service.run
    ids = [s["id"] for s in run.summary["segments"]]
    examples = example_recommendations(service, ids, n_examples=2)
    assert set(examples) == {s["id"] for s in run.summary["segments"] if s["size"] >= service.settings.min_segment_size}
    events = run.data.events
    for sid, chosen in examples.items():
        assert 1 <= len(chosen) <= 2
        members = run.segment(sid)["representative_user_ids"]
        for ex in chosen:
            assert ex.user_id in members[:2]  # a representative member of this very segment
            assert run.members(sid)[run.row_of(ex.user_id)]  # a top-level segment: any of its sub-segments
            assert ex.item_id not in set(events.loc[events["user_id"] == ex.user_id, "item_id"])  # something new to them
            top = [r.item_id for r in service.recommender.recommend(ex.user_id, k=10)]
            assert ex.item_id in top
            again = service.explain(ex.user_id, ex.item_id)
            assert (ex.explanation, ex.verified, ex.source, ex.title) == (again["explanation"], again["verified"], "extractive", again["title"])
    assert example_recommendations(service, ids, n_examples=0) == {}


def test_html_report_has_every_segment_and_counts_its_explanations(service, tmp_path):
    result = build_report(service, tmp_path / "out" / "report.html", n_examples=2)
    path = tmp_path / "out" / "report.html"
    assert result["path"] == str(path) and result["format"] == "html"
    html = path.read_text()
    cards = _cards(html)
    segments = service.run.summary["segments"]
    assert sorted(cards) == sorted(s["id"] for s in segments)  # sub-segments too (class "card sub")
    for s in segments:
        assert f"{s['size']:,}" in cards[s["id"]]
    expected = sum(len(v) for v in example_recommendations(service, list(cards), 2).values())
    assert result["n_explanations"] == expected > 0
    assert html.count("verified ✓") + html.count("not verified") == expected
    assert result["pass_rate"] == pytest.approx(html.count("verified ✓") / expected)
    assert "LLM backend extractive" in html


def test_markdown_from_the_suffix_and_one_segment_only(service, tmp_path):
    run = service.run
    sid = next(s["id"] for s in run.summary["segments"] if s["parent"] is None and s["id"] != 0)  # a top-level one: ###
    result = build_report(service, tmp_path / "one.md", segment_id=sid, n_examples=1)
    md = (tmp_path / "one.md").read_text()
    assert result["format"] == "md" and md.startswith("# segscope report")
    assert md.count("\n### ") == 1 and f"### {sid}. " in md
    assert result["n_explanations"] == 1
    forced = build_report(service, tmp_path / "forced.txt", fmt="md", n_examples=0)
    assert forced["format"] == "md" and forced["n_explanations"] == 0 and forced["pass_rate"] == 0.0
    assert (tmp_path / "forced.txt").read_text().startswith("# segscope report")
    with pytest.raises(WorkspaceError, match="no segment 99"):
        build_report(service, tmp_path / "bad.html", segment_id=99)
    assert not (tmp_path / "bad.html").exists()


def test_segments_below_the_size_limit_get_no_examples(service, tmp_path):
    sizes = sorted(s["size"] for s in service.run.summary["segments"])
    strict = WorkspaceService(service.workspace, service.settings.model_copy(update={"min_segment_size": sizes[-1]}),
                              embedder=HashingEmbedder())
    examples = example_recommendations(strict, [s["id"] for s in strict.run.summary["segments"]], 3)
    largest = [s["id"] for s in strict.run.summary["segments"] if s["size"] == sizes[-1]]
    assert set(examples) == set(largest)
    result = build_report(strict, tmp_path / "strict.md", n_examples=3)
    md = (tmp_path / "strict.md").read_text()
    assert result["n_explanations"] == sum(len(v) for v in examples.values())
    assert md.count("not shown individually") == len(sizes) - len(largest)


def test_text_runs_are_reported_without_recommendations(tmp_path):
    themes = ["when will my new card arrive", "how do i get a refund for this charge", "i forgot my pin code"]
    rows = [{"user_id": f"m{t}{i}", "event_type": "text", "text": f"{text} {i}", "item_id": None}
            for t, text in enumerate(themes) for i in range(12)]
    data = dataset_from_frames(pd.DataFrame(rows), kind="text")
    segment_dataset(data, tmp_path / "ws", RunParams(embedder="hashing-64", k=3), embedder=HashingEmbedder(), write_store=False)
    texts = WorkspaceService(tmp_path / "ws", load_settings(), embedder=HashingEmbedder())
    assert example_recommendations(texts, [0, 1, 2], 3) == {}
    result = build_report(texts, tmp_path / "texts.html")
    assert result["n_explanations"] == 0 and "Map of messages" in (tmp_path / "texts.html").read_text()


def test_the_report_carries_the_audit_saved_for_its_run_or_computes_its_segment_part(service, tmp_path):
    from tools.explain.audit import AUDIT_FILE, saved_or_new_audit

    saved = service.run.run_dir / AUDIT_FILE
    saved.unlink(missing_ok=True)
    md = (tmp_path / "r.md")
    build_report(service, md, n_examples=0)
    text = md.read_text()
    assert "## Fairness audit" in text and "### country" in text and "Cramér's V" in text
    assert "Recommendation quality by group is not in this report" in text and not saved.exists()  # the report writes no audit
    saved_or_new_audit(service.run, ["country"], permutations=49)
    build_report(service, md, n_examples=0)
    text = md.read_text()
    assert "### country" in text and "### age\\_band" not in text and "**Recommendations by group**" in text
    saved.unlink()
