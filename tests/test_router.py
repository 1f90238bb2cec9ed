"""The deterministic router: slash commands, plain-word arguments, the routing corpus's tuning half,
grounded ids and questions, compound requests, follow-ups in a session and through `ask --continue`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assistant.arguments import (
    active_within_days,
    audit_params,
    rank_query,
    result_count,
    search_description,
    segment_params,
)
from assistant.router import parse_slash, split_clauses

SLASH_CASES = [
    ("/segment k=5", "segment_users", {"k": 5}),
    ("/segment alpha 0.3 hdbscan", "segment_users", {"alpha": 0.3, "algorithm": "hdbscan"}),
    ("/segment --data /srv/shop-2026 k=5", "segment_users", {"k": 5, "data_path": "/srv/shop-2026"}),
    ("/segments", "list_segments", {}),
    ("/describe 3", "describe_segment", {"segment_id": 3}),
    ("/compare 1 4", "compare_segments", {"segment_a": 1, "segment_b": 4}),
    ("/why-user 42", "explain_user_segment", {"user_id": "42"}),
    ("/recommend u00017 --k 5 --explain", "recommend_items", {"user_id": "u00017", "k": 5, "explain": True}),
    ("/explain 42 1197", "explain_recommendation", {"user_id": "42", "item_id": "1197"}),
    ("/rank top 20 spenders", "rank_users", {"by": "monetary", "n": 20}),
    ("/report md", "write_report", {"fmt": "md"}),
    ("/find users who love gardening", "find_users", {"description": "users who love gardening"}),
    ("/help", "help", {}),
    ("/audit gender,age top", "audit_segments", {"sensitive": ["gender", "age"], "level": "top"}),
    ("/audit zip_code --no-recommendations", "audit_segments", {"sensitive": ["zip_code"], "recommendations": False}),
]


@pytest.mark.parametrize("text,tool,args", SLASH_CASES)
def test_slash_commands(text, tool, args):
    route = parse_slash(text)
    assert route.tool == tool
    for key, value in args.items():
        assert route.args[key] == value


@pytest.mark.parametrize("text", ["/describe", "/compare 1", "/why-user", "/recommend", "/explain 42"])
def test_missing_arguments_get_a_question(text):
    route = parse_slash(text)
    assert route.tool is None and route.question and route.question.endswith(("?", ".", "”."))


def test_plain_word_arguments():
    assert segment_params("split them into 7 groups with alpha=0.25") == {"k": 7, "alpha": 0.25}
    assert segment_params("redo it with agglomerative clustering, 6 segments") == {"k": 6, "algorithm": "agglomerative"}
    assert segment_params("cluster on behaviour only") == {"alpha": 0.0}
    assert segment_params("let it choose the number of segments") == {"k": "auto"}
    assert result_count("give u02020 five recommendations") == 5 and result_count("top 3 for me") == 3
    assert result_count("recommend something in the last 30 days") is None
    assert active_within_days("bought garden tools in the last 2 weeks") == 14.0 and active_within_days("recently") == 30.0
    assert rank_query("who might churn soon").args() == {"by": "churn_risk"}
    assert rank_query("the 7 biggest spenders").args() == {"by": "monetary", "order": "desc", "n": 7}
    assert rank_query("how many customers have not ordered in 3 months").args() == {"filters": [{"feature": "recency_days", "op": ">", "value": 90.0}]}
    assert rank_query("people with 10 or more purchases").args() == {"filters": [{"feature": "purchases", "op": ">=", "value": 10.0}]}
    assert not rank_query("find users who love gardening").found
    assert search_description("find users who love gardening", []) == "love gardening"
    text = "customers in segment 3 who like cooking"
    assert search_description(text, [(text.index("in segment"), text.index(" who"))]) == "cooking"


def test_audit_arguments_name_attributes_in_the_order_said():
    assert audit_params("is any segment a proxy for gender?") == {"sensitive": ["gender"]}
    assert audit_params("do older users or women get worse recommendations") == {"sensitive": ["age", "gender"]}
    assert audit_params("audit the segments for fairness") == {}
    assert audit_params("audit the top-level segments only for occupation") == {"sensitive": ["occupation"], "level": "top", "recommendations": False}
    assert audit_params("are the recommendations fair to every segment") == {}  # "men" is not inside "recommendations"


def test_clauses_split_only_where_a_new_request_starts():
    assert split_clauses("segment into 5 groups and write a report") == ["segment into 5 groups", "write a report"]
    assert split_clauses("list the segments, then describe the biggest one") == ["list the segments", "describe the biggest one"]
    assert split_clauses("is i00060 a good pick for u00060? why?") == ["is i00060 a good pick for u00060?", "why?"]
    for whole in ("compare segment 1 and 4", "find customers who spent more than 200 and like electronics", "biggest and smallest",
                  "users active in the last 30 days who spent more than 100"):
        assert split_clauses(whole) == [whole]


# -- on the sample workspace (3,000 users, seed 7, like `make run`; the fast hashing embedder for the run) ------------
@pytest.fixture(scope="module")
def shop(router_shop):
    return router_shop


@pytest.fixture(scope="module")
def minilm(minilm_embedder):
    return minilm_embedder


@pytest.fixture(scope="module")
def harness(router_harness):
    return router_harness


def test_the_corpus_tuning_half_routes_with_the_right_arguments(harness):
    """The benchmark's tuning half (sample workspace rows) in CI: a regression in the router shows here."""
    from bench.routing import evaluate, is_held_out, load_corpus

    rows = [r for r in load_corpus() if not is_held_out(r) and r.get("ws", "sample") == "sample"]
    results = evaluate(rows, {"sample": harness})["results"]
    assert len(results) > 150
    intent = sum(r["intent"] for r in results) / len(results)
    exact = sum(r["exact"] for r in results) / len(results)
    wrong = [(r["text"], r["routed"], r["question"]) for r in results if not r["exact"]]
    assert intent >= 0.97 and exact >= 0.95, wrong


def test_every_row_of_the_issue_table(harness):
    from bench.routing import evaluate, load_corpus

    rows = [r for r in load_corpus() if r.get("table")]
    results = evaluate(rows, {"sample": harness})["results"]
    assert len(results) == 7 and all(r["exact"] for r in results), [(r["text"], r["routed"]) for r in results if not r["exact"]]


@pytest.mark.parametrize("text,args", [
    ("is any segment a proxy for gender?", {"sensitive": ["gender"]}),
    ("audit the segments for fairness", {}),
    ("are recommendations worse for women?", {"sensitive": ["gender"]}),
    ("check if the clusters are biased by age or occupation", {"sensitive": ["age", "occupation"]}),
    ("is one segment skewed towards young people?", {"sensitive": ["age"]}),
])
def test_fairness_questions_go_to_the_audit(harness, text, args):
    route = harness.router.route(text)
    assert [c.tool for c in route.calls] == ["audit_segments"], (route.calls, route.question)
    assert route.args == args


@pytest.mark.parametrize("text,args", [
    ("export the book reviewers to a csv", {"segment_id": 4}),
    ("I need segment 2 as parquet for the data team", {"segment_id": 2, "fmt": "parquet"}),
    ("send the shoe & clothing buyers to our crm", {"segment_id": 1}),
    ("give me a jsonl with everyone and their segment", {"fmt": "jsonl"}),
    ("a csv of who joined or left the garden segment since the last run", {"segment_id": 2, "changed_since": "previous"}),
    ("/export 3 parquet", {"segment_id": 3, "fmt": "parquet"}),
])
def test_a_request_for_a_member_file_goes_to_the_export(harness, text, args):
    route = harness.router.route(text)
    assert [c.tool for c in route.calls] == ["export_segment"], (route.calls, route.question)
    assert {k: v for k, v in route.args.items() if v != "csv"} == args


def test_an_export_of_the_segment_in_focus_and_a_report_stays_a_report(harness):
    from assistant.followup import Focus

    route = harness.router.route("export it as csv", Focus().after("describe_segment", {"segment_id": 5}))
    assert route.tool == "export_segment" and route.args.get("segment_id") == 5, route
    assert harness.router.route("export the segments as an html report").tool == "write_report"


@pytest.mark.parametrize("text,tool", [
    ("what segments did you find", "list_segments"),  # no change or time in it: not drift
    ("which groups came out of the run?", "list_segments"),
    ("did a new segment appear since last month?", "segment_drift"),
    ("which customers switched segments this quarter", "segment_drift"),
    ("how have the segments changed", "segment_drift"),
])
def test_drift_is_asked_for_with_change_or_time(harness, text, tool):
    route = harness.router.route(text)
    assert [c.tool for c in route.calls] == [tool], (route.calls, route.question)


def test_an_audit_follow_up_names_another_attribute(harness):
    from assistant.followup import Focus

    focus = Focus().after("audit_segments", {"sensitive": ["gender"], "recommendations": False})
    for text in ("and for occupation?", "what about age?"):
        route = harness.router.route(text, focus)
        assert route.tool == "audit_segments" and route.args == {"sensitive": [text.split()[-1].rstrip("?")], "recommendations": False}, route


def test_a_vaguer_fairness_question_asks_whether_an_audit_is_meant(harness):
    route = harness.router.route("does one of the segments basically mean young people?")
    assert route.calls == () and "audit the segments for fairness" in route.question


@pytest.mark.parametrize("text,named", [
    ("recommend something for u09999", "u09999"), ("why is u03001 in their segment?", "u03001"),
    ("why recommend i00999 to u00042", "i00999"), ("describe the vampire hunters", "vampire hunters"),
])
def test_an_unknown_user_item_or_segment_is_one_question_with_the_closest(harness, text, named):
    route = harness.router.route(text)
    assert route.tool is None and named in route.question and route.question.rstrip().endswith("?")
    index = harness.toolbox.resolver.index
    real = list(index.users.set | index.items.set) + [s.name for s in index.segments.by_id.values()]
    assert any(r in route.question for r in real if r != named), route.question


# -- sessions: compound requests and follow-ups, as the TUI runs them ------------------------------------
def _session(shop, minilm, conversation=None):
    from assistant.config import load_settings
    from assistant.router import Router
    from assistant.session import Session

    return Session(shop, load_settings(llm="extractive"), conversation=conversation, router=Router(lambda t: minilm.encode(list(t))))


def _turn(session, prompt):
    from assistant.events import ToolStarted, TurnDone

    events: list = []
    session.run_turn(prompt, events.append, threading.Event())
    assert isinstance(events[-1], TurnDone), events[-1]
    return [(e.name, e.args) for e in events if isinstance(e, ToolStarted)], events[-1].answer


def test_follow_ups_in_a_session_use_the_last_turns(shop, minilm):
    session = _session(shop, minilm, conversation="new")
    assert _turn(session, "describe segment 2")[0] == [("describe_segment", {"segment_id": 2})]
    assert _turn(session, "and segment 3?")[0] == [("describe_segment", {"segment_id": 3})]
    assert _turn(session, "compare it with the smallest")[0] == [("compare_segments", {"segment_a": 3, "segment_b": 5})]
    calls, _ = _turn(session, "top 3 spenders in it")
    assert calls == [("rank_users", {"by": "monetary", "order": "desc", "n": 3, "segment_id": 3})]
    top = session.focus.results[0]
    assert _turn(session, "what about that user?")[0] == [("explain_user_segment", {"user_id": top})]
    assert _turn(session, "recommend something for them")[0] == [("recommend_items", {"user_id": top})]
    calls, answer = _turn(session, "why?")
    assert calls == [("recommend_items", {"user_id": top, "explain": True})] and "verified" in answer
    assert _turn(session, "more")[0] == [("recommend_items", {"user_id": top, "explain": True, "k": 20})]
    second = session.focus.shown_items[1]
    assert _turn(session, "explain the second one")[0] == [("explain_recommendation", {"user_id": top, "item_id": second})]


def test_compound_requests_run_in_order(shop, minilm):
    session = _session(shop, minilm, conversation="new")
    calls, answer = _turn(session, "describe the book reviewers and compare them with the biggest segment")
    book = session.toolbox.resolver.segment("the book reviewers")
    assert calls == [("describe_segment", {"segment_id": book}), ("compare_segments", {"segment_a": book, "segment_b": 0})]
    calls, answer = _turn(session, "recommend something for u00042 and tell me why")
    assert calls == [("recommend_items", {"user_id": "u00042", "explain": True})] and "why (verified)" in answer


def test_which_customers_are_about_to_churn_ranks_by_recency_and_says_so(shop, minilm):
    session = _session(shop, minilm, conversation="new")
    calls, answer = _turn(session, "which customers are about to churn?")
    assert calls == [("rank_users", {"by": "churn_risk"})]
    assert "days since" in answer and "last active" in answer and "usual gap" in answer
    rows = [line for line in answer.splitlines() if line.startswith("- u")]
    assert len(rows) == 10 and all(re.search(r"last active [\d.,]+ days ago, usually every [\d.,]+ days \(\d+ days active\)", line) for line in rows)


# -- the CLI: `ask --json` shows the calls, `--continue` and `--conversation` go on with a conversation ------------------
def _ask(ws: Path, *args: str) -> dict:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([str(bin_dir / "segscope"), "ask", "--workspace", str(ws), "--json", *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ask_continue_follows_up_on_the_last_conversation(shop):
    first = _ask(shop, "recommend something for u00042 and tell me why")
    assert [(c["name"], c["args"]) for c in first["tool_calls"]] == [("recommend_items", {"user_id": "u00042", "explain": True})]
    typical = json.loads((shop / "segments.json").read_text())["segments"][0]["representative_user_ids"][0]
    again = _ask(shop, "--continue", "and for the biggest segment's most typical user?")
    assert again["conversation"] == first["conversation"]
    assert [(c["name"], c["args"]) for c in again["tool_calls"]] == [("recommend_items", {"user_id": typical, "explain": True})]
    fresh = _ask(shop, "and segment 3?")  # no --continue: a new conversation has nothing to follow up on
    assert fresh["conversation"] != first["conversation"]
    named = _ask(shop, "--conversation", first["conversation"], "what about u00043?")
    assert [(c["name"], c["args"]) for c in named["tool_calls"]] == [("recommend_items", {"user_id": "u00043", "explain": True})]
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "segscope"), "ask", "--workspace", str(shop), "--conversation", "nope", "hi"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no conversation 'nope'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
