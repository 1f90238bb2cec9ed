"""The toolbox's answers about one user: which segment and why, what to recommend, and why an item."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.service import WorkspaceService
from assistant.session import user_text
from assistant.toolbox import Toolbox
from tools.core.errors import SegscopeError
from tools.embed.embedding import HashingEmbedder


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory) -> Toolbox:
    ws = sample_workspace(tmp_path_factory.mktemp("toolbox"), seed=3)
    return Toolbox(WorkspaceService(ws, load_settings(), embedder=HashingEmbedder()))


def _fences(text: str) -> list[str]:
    return re.findall(r"<data>(.*?)</data>", text, flags=re.S)


def test_explain_user_segment_names_the_segment_the_runner_up_and_the_users_own_values(toolbox):
    run = toolbox.service.run
    user = str(run.user_ids[7])
    row = run.row_of(user)
    result = toolbox.explain_user_segment(user)
    art = result.artifact
    sid = int(run.labels[row])
    centres = np.vstack([run.fused[run.labels == c].mean(axis=0) for c in range(run.k)])
    dist = np.linalg.norm(centres - run.fused[row], axis=1)
    runner_up = min((c for c in range(run.k) if c != sid), key=lambda c: dist[c])
    assert (art["user_id"], art["segment_id"], art["segment_name"]) == (user, sid, run.segment(sid)["name"])
    assert art["distance"] == pytest.approx(dist[sid]) and art["runner_up"] == runner_up
    assert art["runner_up_distance"] == pytest.approx(dist[runner_up])
    seg_traits = [t["feature"] for t in run.segment(sid)["traits"]]
    assert art["traits"] and [t["feature"] for t in art["traits"]] == [f for f in seg_traits if f in run.feature_names]
    for t in art["traits"]:
        assert t["user_value"] == pytest.approx(run.feature_raw[row, run.feature_names.index(t["feature"])])
    lines = result.summary.splitlines()
    assert lines[0].startswith(f"User {user} is in segment {sid} ") and f"{run.segment(sid)['size']:,} users" in lines[0]
    assert f"the next closest is segment {runner_up} " in lines[1] and f"{dist[runner_up]:.2f}" in lines[1]
    assert len(lines) == 2 + len(art["traits"]) and all(line.startswith("- ") for line in lines[2:])


def test_recommend_items_lists_unseen_items_from_the_recommender(toolbox):
    service = toolbox.service
    run = service.run
    user = str(run.user_ids[11])
    result = toolbox.recommend_items(user, k=5)
    art = result.artifact
    expected = service.recommend(user, k=5)
    assert [i["item_id"] for i in art["items"]] == [r.item_id for r in expected] and len(expected) == 5
    seen = set(run.data.events.loc[run.data.events["user_id"] == user, "item_id"])
    assert not seen & {i["item_id"] for i in art["items"]}
    sid = int(run.labels[run.row_of(user)])
    assert art["user_id"] == user and art["segment"] == {"id": sid, "name": run.segment(sid)["name"]}
    lines = result.summary.splitlines()
    assert lines[0].startswith(f"Top 5 items for user {user} (segment {sid} ")
    for n, (line, rec) in enumerate(zip(lines[1:], expected), 1):
        assert line == f"{n}. {rec.item_id} <data>{rec.title}</data>"
    assert "why" not in result.summary and all("explanation" not in i for i in art["items"])


def test_recommend_items_with_explanations_marks_each_verified(toolbox):
    user = str(toolbox.service.run.user_ids[11])
    result = toolbox.recommend_items(user, k=3, explain=True)
    items = result.artifact["items"]
    assert len(items) == 3 and all(i["verified"] is True and i["explanation_source"] == "extractive" for i in items)
    whys = [line for line in result.summary.splitlines() if line.lstrip().startswith("why")]
    assert len(whys) == 3 and all(w.strip().startswith("why (verified): <data>") for w in whys)
    for why, item in zip(whys, items):
        assert _fences(why) == [item["explanation"]]


def test_explain_recommendation_reports_the_verified_explanation_fenced(toolbox):
    service = toolbox.service
    user = str(service.run.user_ids[11])
    item = service.recommend(user, k=1)[0].item_id
    result = toolbox.explain_recommendation(user, item)
    expected = service.explain(user, item)
    assert result.artifact == expected and expected["verified"] is True
    assert result.summary.startswith(f"Why {item} <data>{expected['title']}</data> for user {user} (verified against the data): ")
    assert _fences(result.summary) == [expected["title"], expected["explanation"]]
    assert "“" + expected["title"] + "”" in user_text(result.summary)  # the user reads the title as a quote


def test_unknown_users_are_a_clear_error(toolbox):
    for call in (lambda: toolbox.explain_user_segment("nobody"), lambda: toolbox.recommend_items("nobody"),
                 lambda: toolbox.explain_recommendation("nobody", "i00001")):
        # one question naming the closest matches (the resolver), never a traceback or an empty answer
        with pytest.raises(SegscopeError, match="nobody.*Did you mean u\\d+"):
            call()


def test_audit_segments_reads_the_run_fences_data_words_and_reuses_a_saved_audit(toolbox):
    from assistant.toolbox import run_tool

    result = run_tool(toolbox, "audit_segments", {"sensitive": ["age_band", "country"], "recommendations": False})
    audit = result.artifact["audit"]
    assert [a["attribute"] for a in audit["attributes"]] == ["age_band", "country"] and not result.artifact["reused"]
    summary = result.summary
    assert summary.splitlines()[0].startswith("Fairness audit of ") and "Cramér's V" in summary
    # every segment name and group value the summary quotes is fenced as data
    for a in audit["attributes"]:
        for value, _ in a["groups"]:
            assert f"<data>{value}</data>" in summary
        for p in a["proxies"]:
            assert f"<data>{p['segment_name']}</data>" in summary
    assert "<data>" not in user_text(summary)
    again = run_tool(toolbox, "audit_segments", {"sensitive": ["age_band", "country"], "recommendations": False})
    assert again.artifact["reused"] and again.artifact["audit"] == audit
    with pytest.raises(SegscopeError, match="no user attribute 'gender'"):
        run_tool(toolbox, "audit_segments", {"sensitive": ["gender"]})
