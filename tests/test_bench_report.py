"""bench/report.py: regenerating the README table keeps the rows of external logs that are not on this machine."""

from __future__ import annotations

from bench.report import EARLIER, markdown_table, readme_rows, with_earlier_rows

OLD = [
    ("Usefulness, CDNOW: AUC", "0.80", "≥ RFM"),
    ("Usefulness, Online Retail: AUC", "0.75", "≥ RFM"),
    ("Usefulness, Complete Journey (sample): AUC", "0.70" + EARLIER, "≥ RFM"),
    ("Update, CDNOW: same leaf", "100%", "100%"),
]


def test_rows_of_absent_logs_are_kept_in_place_and_marked_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGSCOPE_EXT_DATA", str(tmp_path))  # no external log here
    new = [("Usefulness, CDNOW: AUC", "0.81", "≥ RFM"), ("Update, CDNOW: same leaf", "100%", "100%")]
    rows = with_earlier_rows(OLD, new)
    assert [r[0] for r in rows] == [OLD[0][0], OLD[1][0], OLD[2][0], OLD[3][0]]
    assert rows[0][1] == "0.81" and rows[1][1] == "0.75" + EARLIER and rows[2][1] == "0.70" + EARLIER  # marked once
    # A log that is here again is measured again: its old row is not carried over.
    (tmp_path / "online-retail").mkdir()
    (tmp_path / "online-retail" / "transactions.csv").write_text("InvoiceNo\n")
    assert [r[0] for r in with_earlier_rows(OLD, new)] == [OLD[0][0], OLD[2][0], OLD[3][0]]
    # Regenerated rows win over kept ones, and rows of logs that are not external are never kept.
    assert with_earlier_rows(OLD, []) == [(OLD[2][0], OLD[2][1], OLD[2][2])]


def test_the_readme_table_reads_back_what_it_writes():
    text = f"intro\n<!-- BENCH:START -->\n{markdown_table(OLD)}\n<!-- BENCH:END -->\nmore"
    assert readme_rows(text) == OLD and readme_rows("no table") == []


def test_a_kept_row_follows_its_neighbour_when_the_neighbours_title_quotes_new_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGSCOPE_EXT_DATA", str(tmp_path))
    old = [("Update, sample ÷ full run (225 s)", "14.6%", "≤ 5%"), ("Update, Online Retail: same leaf", "100%", "100%"),
           ("Update, CDNOW: same leaf", "100%", "100%")]
    new = [("Update, sample ÷ full run (86 s)", "8.9%", "≤ 5%"), ("Update, CDNOW: same leaf", "100%", "100%")]
    assert [r[0] for r in with_earlier_rows(old, new)] == [new[0][0], old[1][0], old[2][0]]


def test_rows_regenerated_on_their_own_take_the_place_of_those_they_replace(tmp_path, monkeypatch):
    import bench.report as report

    monkeypatch.setenv("SEGSCOPE_EXT_DATA", str(tmp_path))
    (tmp_path / "README.md").write_text(f"intro\n<!-- BENCH:START -->\n{markdown_table(OLD)}\n<!-- BENCH:END -->\n")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "summary_rows", lambda: [("Usefulness, CDNOW: AUC", "0.82", "≥ RFM")])
    report.update_readme_rows(("Usefulness,",))
    rows = readme_rows((tmp_path / "README.md").read_text())
    assert rows == [("Usefulness, CDNOW: AUC", "0.82", "≥ RFM"), (OLD[1][0], OLD[1][1] + EARLIER, OLD[1][2]), OLD[2], OLD[3]]


def test_make_bench_runs_what_every_row_of_the_table_needs(tmp_path, monkeypatch):
    from bench import run_all

    monkeypatch.setenv("SEGSCOPE_LLAMA_PYTHON", str(tmp_path / "python"))  # no llama.cpp install here
    monkeypatch.setenv("SEGSCOPE_LLAMA_MODEL", str(tmp_path / "model.gguf"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    runs = run_all.commands(run_all.BENCHES, tmp_path / "shop")
    assert ["bench.assign", "--sample", str(tmp_path / "shop")] in runs and ["bench.drift", "--sample", str(tmp_path / "shop")] in runs
    assert ["bench.scale", "--sizes", "10k", "--baseline", "--name", "scale-baseline"] in runs
    assert ["bench.real_llm"] not in runs
    (tmp_path / "python").write_text("")
    (tmp_path / "model.gguf").write_text("")
    assert ["bench.real_llm"] in run_all.commands(run_all.BENCHES, tmp_path / "shop")
    assert run_all.commands(["bench.routing"], tmp_path / "shop") == [["bench.routing"]]  # one bench asked for: that one only
