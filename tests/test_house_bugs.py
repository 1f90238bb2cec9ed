"""Bugs found while tidying (issue 9 item 6): report examples, `recommend --all-users` tables, embedder names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import sample_workspace

from assistant.config import load_settings
from assistant.reporting import example_recommendations, pick_examples
from assistant.service import WorkspaceService
from tools.core.errors import ParameterError
from tools.embed.embedding import HashingEmbedder, make_embedder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return sample_workspace(tmp_path_factory.mktemp("bugs"), n_users=300, seed=1)


def _service(ws: Path) -> WorkspaceService:
    return WorkspaceService(ws, load_settings(embedder="hashing-64"), embedder=HashingEmbedder())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


# -- a report card's examples show different items ------------------------------------------
def test_three_users_with_one_top_item_show_three_items():
    ranked = [("u1", ["a", "b", "c"]), ("u2", ["a", "c", "b"]), ("u3", ["a", "b", "d"])]
    assert pick_examples(ranked, 3) == [("u1", "a"), ("u2", "c"), ("u3", "b")]


def test_an_item_repeats_only_when_the_segment_has_no_other():
    assert pick_examples([("u1", ["a"]), ("u2", ["a"]), ("u3", [])], 3) == [("u1", "a"), ("u2", "a")]
    assert pick_examples([("u1", ["a"]), ("u2", ["a"]), ("u3", ["b"])], 2) == [("u1", "a"), ("u3", "b")]


def test_report_cards_on_the_sample_show_distinct_items(workspace):
    service = _service(workspace)
    segments = service.run.summary["segments"]
    # The bug's situation is there: representative users share their top item.
    tops = {s["id"]: [service.recommender.recommend(u, k=1)[0].item_id for u in s["representative_user_ids"][:3]] for s in segments}
    assert any(len(set(t)) < len(t) for t in tops.values())

    examples = example_recommendations(service, [s["id"] for s in segments], 3)
    assert examples
    for sid, group in examples.items():
        items = [e.item_id for e in group]
        assert len(items) == 3 and len(set(items)) == 3, (sid, items)
        assert all(e.verified for e in group)


# -- recommend --all-users --format table -------------------------------------------------
def test_all_users_table_is_a_table_and_jsonl_is_json(workspace):
    table = _cli("recommend", "--workspace", str(workspace), "--all-users", "--k", "3", "--format", "table")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["user", "top"] and not any(line.lstrip().startswith("{") for line in lines)
    n_users = len(_service(workspace).run.user_ids)
    assert len(lines) == 1 + n_users
    first = lines[1].split()
    assert len(first) == 4  # the user and three items

    jsonl = _cli("recommend", "--workspace", str(workspace), "--all-users", "--k", "3", "--format", "jsonl")
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(rows) == n_users and rows[0]["user_id"] == first[0] and rows[0]["items"] == first[1:]


# -- --embedder names ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hashing-x", "hashing-", "hashing-0", "hashingfoo"])
def test_a_malformed_hashing_name_names_the_valid_choices(name):
    with pytest.raises(ParameterError, match="minilm") as err:
        make_embedder(name)
    assert "hashing-64" in err.value.one_line()


def test_hashing_names_that_are_valid():
    assert make_embedder("hashing").dim == 64 and make_embedder("hashing-16").dim == 16


def test_segment_with_a_bad_embedder_is_one_line_exit_2_and_writes_nothing(workspace, tmp_path):
    ws = tmp_path / "ws"
    result = _cli("segment", "--data", str(workspace.parent / "data"), "--workspace", str(ws), "--embedder", "hashing-x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "unknown embedder 'hashing-x'" in message and "minilm" in message and "low quality" in message
    assert not ws.exists()


def test_help_says_what_the_hashing_embedder_is_for():
    text = " ".join(_cli("segment", "--help").stdout.replace("│", " ").split())
    assert "'hashing' (fast, low quality: for tests and dry runs only)" in text
