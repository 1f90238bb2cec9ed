"""The commands that read a run, through the real console script: describe, recommend, explain, evaluate, ask.

Each answer is checked against the same capability called in-process on the same workspace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.service import WorkspaceService
from tests.fake_openai import FakeOpenAI, Reply, Status
from tools.core.run_state import load_run
from tools.embed.embedding import HashingEmbedder
from tools.explain.describe import compare_segments, describe_segment

BIN = Path(sys.executable).parent / "segscope"


def segscope(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def one_line_error(result: subprocess.CompletedProcess, *words: str, notes: int = 0) -> None:
    """Exit 2 and one error line naming ``words``, after at most ``notes`` informational lines (backend, tool calls)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("segscope: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and len(lines) <= 1 + notes, result.stderr
    assert "Traceback" not in result.stderr and all(w in errors[0] for w in words), errors[0]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return sample_workspace(tmp_path_factory.mktemp("cli"), seed=8)


@pytest.fixture(scope="module")
def service(ws) -> WorkspaceService:
    return WorkspaceService(ws, load_settings(), embedder=HashingEmbedder())


@pytest.fixture(scope="module")
def user(service) -> str:
    return str(service.run.user_ids[5])


# ---------------------------------------------------------------- describe
def test_describe_prints_the_segment_and_its_json_matches_the_tool(ws):
    run = load_run(ws)
    sid = run.summary["segments"][1]["id"]
    expected = describe_segment(run, sid, min_segment_size=10)
    shown = segscope("describe", "--segment", sid, "--workspace", ws)
    assert shown.returncode == 0, shown.stderr
    assert f"segment {sid}: {expected.name}" in shown.stdout and f"{expected.size} users" in shown.stdout
    for trait in expected.traits:
        assert trait.label in shown.stdout
    assert all(i.item_id in shown.stdout for i in expected.typical_items)
    as_json = segscope("describe", "-s", sid, "-w", ws, "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == json.loads(json.dumps(expected.as_dict()))
    other = run.summary["segments"][2]["id"]
    compared = segscope("describe", "-s", sid, "--compare", other, "-w", ws, "--json")
    assert json.loads(compared.stdout) == json.loads(json.dumps(compare_segments(run, sid, other).as_dict()))
    panel = segscope("describe", "-s", sid, "--compare", other, "-w", ws)
    assert f"segment {sid} vs segment {other}" in panel.stdout
    one_line_error(segscope("describe", "-s", 42, "-w", ws), "no segment 42")


# ---------------------------------------------------------------- recommend
def test_recommend_one_user_as_a_table_and_as_json(ws, service, user):
    expected = service.recommend(user, k=4)
    as_json = segscope("recommend", "--user", user, "--k", 4, "-w", ws, "--json")
    assert as_json.returncode == 0, as_json.stderr
    got = json.loads(as_json.stdout)
    assert got["user_id"] == user and got["items"] == [r.as_dict() for r in expected]
    table = segscope("recommend", "--user", user, "--k", 4, "-w", ws)
    rows = [line for line in table.stdout.splitlines() if any(r.item_id in line for r in expected)]
    assert [next(r.item_id for r in expected if r.item_id in row) for row in rows] == [r.item_id for r in expected]
    assert all(r.title in table.stdout for r in expected)
    seg = service.run.segment(int(service.run.labels[service.run.row_of(user)]))
    assert seg["name"].split()[0] in table.stdout


def test_recommend_with_explanations_names_the_backend(ws, user):
    result = segscope("recommend", "-u", user, "--k", 2, "--explain", "-w", ws, "--json")
    assert result.returncode == 0 and "LLM backend: extractive" in result.stderr
    items = json.loads(result.stdout)["items"]
    assert len(items) == 2 and all(i["verified"] and i["explanation_source"] == "extractive" and i["evidence"] for i in items)


def test_recommend_for_all_users_as_json_lines(ws, service, user):
    result = segscope("recommend", "--all-users", "--k", 3, "--format", "jsonl", "-w", ws)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    run = service.run
    assert sorted(r["user_id"] for r in lines) == sorted(str(u) for u in run.user_ids)  # everyone, once
    events = run.data.events
    seen = events.groupby("user_id")["item_id"].agg(set)
    assert all(len(r["items"]) == 3 and not set(r["items"]) & seen[r["user_id"]] for r in lines)
    # The batch agrees with one user's recommendations.
    mine = next(r for r in lines if r["user_id"] == user)
    assert mine["items"] == [r.item_id for r in service.recommend(user, k=3)]


def test_recommend_needs_exactly_one_of_user_and_all_users(ws, user):
    one_line_error(segscope("recommend", "-w", ws), "--user", "--all-users")
    one_line_error(segscope("recommend", "--user", user, "--all-users", "-w", ws), "--user")
    one_line_error(segscope("recommend", "--user", "nobody", "-w", ws), "nobody")


# ---------------------------------------------------------------- explain
def test_explain_prints_the_verified_explanation(ws, service, user):
    item = service.recommend(user, k=1)[0].item_id
    expected = service.explain(user, item)
    as_json = segscope("explain", "--user", user, "--item", item, "-w", ws, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == json.loads(json.dumps(expected))
    panel = segscope("explain", "-u", user, "-i", item, "-w", ws)
    assert expected["title"] in panel.stdout and "verified ✓" in panel.stdout and "phrased by extractive" in panel.stdout
    assert " ".join(panel.stdout.split()).count(expected["explanation"].split(":")[0]) == 1
    one_line_error(segscope("explain", "-u", user, "-i", "no-such-item", "-w", ws), "no-such-item", notes=1)


# ---------------------------------------------------------------- evaluate
def test_evaluate_scores_every_method_on_the_sample(ws, tmp_path):
    from tools.data.ingest import load_dataset
    from tools.recommend.evaluate import evaluate

    data = ws.parent / "data"
    result = segscope("evaluate", "--data", data, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = evaluate(load_dataset(data).events).as_dict()
    assert [m["method"] for m in report["methods"]] == ["Pop", "ItemKNN", "EASE", "segscope hybrid"]
    assert report["n_test_users"] == expected["n_test_users"] > 200
    for got, want in zip(report["methods"], expected["methods"]):
        assert (got["hr"], got["ndcg"]) == pytest.approx((want["hr"], want["ndcg"])) and 0 <= got["ndcg"] <= got["hr"] <= 1
    table = segscope("evaluate", "--data", data, "--k", 5)
    assert table.stdout.splitlines()[0] == "| method | HR@5 | NDCG@5 |" and len(table.stdout.splitlines()) == 6
    texts = tmp_path / "messages.csv"
    pd.DataFrame({"user_id": [f"m{i}" for i in range(20)], "text": ["where is my card"] * 20}).to_csv(texts, index=False)
    one_line_error(segscope("evaluate", "--data", texts), "text-only")


# ---------------------------------------------------------------- ask
def test_ask_answers_with_the_router_and_reports_the_tool_calls(ws, service):
    biggest = max(service.run.summary["segments"], key=lambda s: s["size"])
    result = segscope("ask", "describe the biggest segment", "-w", ws, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "TurnDone" and payload["responder"] == "router (extractive)"
    assert [c["name"] for c in payload["tool_calls"]] == ["describe_segment"] and payload["tool_calls"][0]["ok"]
    assert payload["tool_calls"][0]["result"]["description"]["segment_id"] == biggest["id"]
    assert biggest["name"] in payload["answer"] and payload["notices"] == []
    plain = segscope("ask", "describe the biggest segment", "-w", ws)
    assert biggest["name"] in plain.stdout and "describe_segment" in plain.stderr
    # A segment that does not exist is a question back (naming the ones there are), not a failure.
    missing = segscope("ask", "describe segment 42", "-w", ws)
    assert missing.returncode == 0 and "no segment 42" in missing.stdout and "Which one do you mean?" in missing.stdout
    assert biggest["name"] in missing.stdout and "Traceback" not in missing.stderr


def test_ask_through_a_tool_calling_model(ws, service):
    script = [Reply(tool_calls=[{"name": "list_segments", "args": {}}]), Reply("There are the segments listed above.")]
    with FakeOpenAI(script) as server:
        result = segscope("ask", "what segments are there?", "-w", ws, "--llm", "openai:test-model", "--json",
                          env={"OPENAI_BASE_URL": server.base_url, "SEGSCOPE_LLM_RETRIES": "0"})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["responder"] == "agent (openai:test-model)" and payload["notices"] == []
    assert [c["name"] for c in payload["tool_calls"]] == ["list_segments"] and payload["tool_calls"][0]["ok"]
    assert payload["answer"] == "There are the segments listed above."
    assert len(server.requests) == 2
    assert [s["id"] for s in payload["tool_calls"][0]["result"]["segments"]] == [s["id"] for s in service.run.summary["segments"]]


def test_ask_says_when_the_router_answered_for_a_failing_model(ws):
    with FakeOpenAI([Status(500)]) as server:
        result = segscope("ask", "/segments", "-w", ws, "--llm", "openai:test-model", "--json",
                          env={"OPENAI_BASE_URL": server.base_url, "SEGSCOPE_LLM_RETRIES": "0"})
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["responder"] == "router (after openai:test-model failed)" and payload["status"] == "TurnDone"
    assert len(payload["notices"]) == 1 and "the LLM failed" in payload["notices"][0]
    assert [c["name"] for c in payload["tool_calls"]] == ["list_segments"]
