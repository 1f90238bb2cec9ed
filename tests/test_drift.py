"""`segscope drift`: the migration matrix adds up, unchanged segments keep their id and name, novel users are found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import behaviour_frames, dataset_from_frames

from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.segment.assign import load_fitted_run
from tools.segment.drift import _welch, parse_window
from tools.segment.drift_runs import drift_data, drift_since, drift_window

BIN = Path(sys.executable).parent / "segscope"
HASHING = RunParams(embedder="hashing-64")


def segscope(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> dict:
    """The sample cut in two halves by time; the first half segmented."""
    root = tmp_path_factory.mktemp("drift")
    generate_sample(root / "sample", n_users=400, seed=4)
    events = pd.read_csv(root / "sample" / "events.csv", dtype={"user_id": str, "item_id": str})
    cut = events["timestamp"].min() + (events["timestamp"].max() - events["timestamp"].min()) / 2
    for name, rows in (("first", events["timestamp"] < cut), ("second", events["timestamp"] >= cut)):
        (root / name).mkdir()
        events[rows].to_csv(root / name / "events.csv", index=False)
        shutil.copy(root / "sample" / "items.csv", root / name / "items.csv")
    segment_dataset(load_dataset(root / "first"), root / "ws", HASHING, embedder=HashingEmbedder(), write_store=False)
    return {"root": root, "ws": root / "ws", "events": events, "cut": cut}


def test_migration_rows_sum_to_the_users_present_in_both_halves(halves):
    fitted = load_fitted_run(halves["ws"])
    report = drift_data(fitted, load_dataset(halves["root"] / "second"), HashingEmbedder()).as_dict()
    events = halves["events"]
    first_users = set(events.loc[events["timestamp"] < halves["cut"], "user_id"])
    second_users = set(events.loc[events["timestamp"] >= halves["cut"], "user_id"])
    both = first_users & second_users
    assert 0 < len(both) < len(first_users)
    m = report["migration"]
    counts = np.asarray(m["counts"])
    assert counts.sum() == len(both) == report["users"]["in_both"]
    fit = pd.read_csv(halves["ws"] / "assignments.csv", dtype={"user_id": str}).set_index("user_id")["segment_id"]
    expected = fit.loc[sorted(both)].value_counts()
    assert counts.sum(axis=1).tolist() == [int(expected.get(r, 0)) for r in m["rows"]] == m["row_totals"]
    assert report["users"]["left"] == len(first_users - second_users) and report["users"]["new"] == len(second_users - first_users)
    diagonal = sum(counts[m["rows"].index(s), m["columns"].index(s)] for s in set(m["rows"]) & set(m["columns"]))
    assert report["users"]["moved"] == counts.sum() - diagonal
    for move, examples in m["examples"].items():  # named examples really made that move
        b, a = map(int, move.split("->"))
        assert b != a and 0 < len(examples) <= 3 and all(fit[u] == b for u in examples)


def test_window_compares_the_data_before_the_cut_with_the_run(halves):
    fitted = load_fitted_run(halves["ws"])
    report = drift_window(fitted, "30d", HashingEmbedder()).as_dict()
    counts = np.asarray(report["migration"]["counts"])
    assert counts.sum() == report["users"]["in_both"] == report["users"]["before"]  # everyone before is still in the run
    assert report["users"]["after"] == len(fitted.run.user_ids)
    assert report["users"]["new"] == report["unusual"]["pool"]  # novelty is judged on the users new in the window
    for t in report["trait_shifts"]:
        assert t["ci_low"] <= t["change"] <= t["ci_high"] and not (t["ci_low"] <= 0 <= t["ci_high"])


def test_a_segment_that_did_not_change_keeps_its_id_and_name_across_runs(tmp_path):
    events, items, truth = behaviour_frames((40, 30, 24))
    ws = tmp_path / "ws"
    segment_dataset(dataset_from_frames(events, items), ws, RunParams(embedder="hashing-64", k=3), embedder=HashingEmbedder(),
                    write_store=False)  # fmt: skip
    first = json.loads((ws / "segments.json").read_text())
    gardeners = [u for u, g in truth.items() if g == 0]
    # 25 of the 40 gardeners leave: gardeners become the smallest segment, so every id is renumbered by size.
    later = events[~events["user_id"].isin(gardeners[:25])]
    segment_dataset(dataset_from_frames(later, items), ws, RunParams(embedder="hashing-64", k=3), embedder=HashingEmbedder(),
                    write_store=False)  # fmt: skip
    second = pd.read_csv(ws / "assignments.csv", dtype={"user_id": str}).set_index("user_id")["segment_id"]
    report = drift_since(load_fitted_run(ws), "previous", HashingEmbedder()).as_dict()
    old = pd.read_csv(ws / ".segscope" / "runs" / report["previous_run_key"] / "assignments.csv", dtype={"user_id": str})
    old = old.set_index("user_id")["segment_id"]
    old_names = {s["id"]: s["name"] for s in first["segments"]}
    assert report["matching"]["kept"] == 3
    renumbered = 0
    for seg in report["segments"]:
        members = second[second == seg["current_id"]].index
        was = old.loc[members].mode()[0]  # the earlier segment these very users were in
        assert seg["kept"] and seg["id"] == seg["previous_id"] == was and seg["name"] == old_names[was]
        renumbered += seg["current_id"] != seg["id"]
    assert renumbered >= 2  # the ids really changed between the runs, and matching undid it
    assert report["users"]["moved"] == 0 and report["users"]["left"] == 25


def test_users_of_a_segment_the_fit_never_saw_are_a_candidate_new_segment(tmp_path):
    generate_sample(tmp_path / "all", n_users=600, seed=2)
    truth = pd.read_csv(tmp_path / "all" / "truth.csv", dtype=str).set_index("user_id")["segment"]
    held = "book_lovers"
    events = pd.read_csv(tmp_path / "all" / "events.csv", dtype={"user_id": str, "item_id": str})
    (tmp_path / "fit").mkdir()
    events[truth.reindex(events["user_id"]).to_numpy() != held].to_csv(tmp_path / "fit" / "events.csv", index=False)
    shutil.copy(tmp_path / "all" / "items.csv", tmp_path / "fit" / "items.csv")
    segment_dataset(load_dataset(tmp_path / "fit"), tmp_path / "ws", HASHING, embedder=HashingEmbedder(), write_store=False)
    report = drift_data(load_fitted_run(tmp_path / "ws"), load_dataset(tmp_path / "all"), HashingEmbedder()).as_dict()
    unusual = report["unusual"]
    n_held = int((truth == held).sum())
    assert unusual["candidate"] and unusual["beyond_p99"] >= 0.8 * n_held
    assert unusual["beyond_p99"] <= n_held + 0.03 * (len(truth) - n_held)  # hardly anyone the fit knew
    assert all(truth[u] == held for u in unusual["examples"]) and unusual["traits"]
    assert report["users"]["new"] == n_held


def test_cli_drift_writes_drift_json_and_refuses_two_comparisons(halves):
    ws = halves["ws"]
    result = segscope("drift", "--workspace", ws, "--window", "30d")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.name == "drift.json" and json.loads(path.read_text())["mode"] == "window"
    both = segscope("drift", "--workspace", ws, "--window", "30d", "--since", "previous")
    assert both.returncode == 2 and "exactly one of" in both.stderr and both.stdout == ""
    bad = segscope("drift", "--workspace", ws, "--window", "ninety days")
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "--window" in lines[0]


def test_welch_interval_and_window_parsing():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([3.0, 5.0, 7.0, 9.0, np.nan])
    change, lo, hi = _welch(x, y)
    se = np.sqrt(np.var(x, ddof=1) / 4 + np.var([3, 5, 7, 9], ddof=1) / 4)
    assert change == pytest.approx(3.5) and lo == pytest.approx(3.5 - 1.959964 * se) and hi == pytest.approx(3.5 + 1.959964 * se)
    assert parse_window("90d") == 90 and parse_window("12w") == 84 and parse_window("3m") == 90


def test_report_shows_the_migration_table_and_hides_examples_of_small_segments(halves):
    from tools.report.html import render_html
    from tools.report.markdown import render_markdown
    from tools.report.model import ReportInput
    from tools.segment.drift_runs import read_drift, write_drift

    fitted = load_fitted_run(halves["ws"])
    report = drift_data(fitted, load_dataset(halves["root"] / "second"), HashingEmbedder())
    write_drift(fitted, report)
    drift = read_drift(fitted.run.run_dir)
    assert drift == json.loads(json.dumps(report.as_dict()))
    summary = fitted.run.summary
    n = len(fitted.run.labels)

    def page(min_size: int) -> tuple[str, str]:
        inp = ReportInput(summary, np.zeros((n, 2)), fitted.run.labels, {}, None, min_segment_size=min_size, drift=drift)
        return render_html(inp), render_markdown(inp)

    html, md = page(1)
    assert "<h2>Drift</h2>" in html and "## Drift" in md
    m = drift["migration"]
    for label, row, total in zip(m["row_labels"], m["counts"], m["row_totals"]):
        line = next(x for x in md.splitlines() if x.startswith(f"| {label} |"))
        assert line.endswith(f"| {total:,} |") and all(f"{c:,}" in line for c in row if c)
    example = next(iter(m["examples"].values()))[0]
    assert example in html and example in md
    html, md = page(10**6)  # every segment "too small": no member is named
    assert example not in html and example not in md
    assert read_drift(halves["root"]) is None  # no drift.json there


def test_router_and_tool_answer_who_moved_from_the_loyal_segment_to_lapsed_since_last_month(halves, tmp_path):
    from assistant.config import load_settings
    from assistant.router import Router, parse_slash
    from assistant.service import WorkspaceService
    from assistant.toolbox import Toolbox
    from tools.explain.resolve import Resolver, WorkspaceIndex

    ws = tmp_path / "ws"
    shutil.copytree(halves["ws"], ws)
    fitted = load_fitted_run(ws)
    # Which segments lose and gain users over the last 30 days; call them what an analyst would.
    probe = drift_window(fitted, "30d", HashingEmbedder())
    m = probe.migration
    b, a = max(((b, a) for b in m["rows"] for a in m["columns"] if b != a), key=lambda ba: probe.moved(*ba))
    assert probe.moved(b, a) > 0
    for path in (fitted.run.run_dir / "segments.json", ws / "segments.json"):
        summary = json.loads(path.read_text())
        for seg in summary["segments"]:
            seg["name"] = {b: "Loyal Regulars", a: "Lapsed Buyers"}.get(seg["id"], f"Group {seg['id']}")
        path.write_text(json.dumps(summary))
    embed = HashingEmbedder()
    router = Router(lambda texts: embed.encode(list(texts)), Resolver(WorkspaceIndex.load(fitted.run.run_dir)))
    route = router.route("who moved from the loyal segment to lapsed since last month?")
    assert route.tool == "segment_drift", route
    assert route.args == {"window_days": 30.0, "from_segment": b, "to_segment": a}
    assert router.route("how did the segments change since the previous run?").args == {"since_run": "previous"}
    assert parse_slash("/drift 90d").args == {"window_days": 90.0}
    toolbox = Toolbox(WorkspaceService(ws, load_settings(), embedder=HashingEmbedder()))
    result = toolbox.segment_drift(**route.args)
    art = result.artifact
    assert art["n_movers"] == probe.moved(b, a) and art["movers"] == probe.movers(b, a)[:10]
    before = pd.read_csv(ws / "assignments.csv", dtype={"user_id": str}).set_index("user_id")["segment_id"]
    assert all(before[u] == a for u in art["movers"])  # in the lapsed segment now (the run is "now")
    assert f"{probe.moved(b, a):,} users moved from segment {b} <data>Loyal Regulars</data> to segment {a} <data>Lapsed Buyers</data>" in result.summary
