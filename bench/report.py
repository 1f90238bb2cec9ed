"""Turn bench/results/*.json into docs/benchmarks.md and the README's summary table.

The figures are produced by the scripts, never typed by hand.
"""

from __future__ import annotations

import json
import re

from bench.common import RESULTS, ROOT


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_rows() -> list[tuple[str, str, str]]:
    """(benchmark, measured, target) rows for the README."""
    rows = []
    emb = _load("embedding")
    if emb:
        rows.append((f"Embedding overhead (profiles ÷ bare encode, both {emb.get('precision', 'fp32')}, median)", f"{emb['overhead_ratio']:.2f}", "≤ 1.1"))
        if "bf16_speedup" in emb:
            rows.append(("bf16 autocast encode speed-up over fp32 / smallest cosine to the fp32 vector", f"×{emb['bf16_speedup']:.2f} / {emb['bf16_min_cosine_to_fp32']:.5f}", "reported"))
        rows.append(("Cached re-run ÷ cold run (median)", f"{emb['cache_ratio']:.4f}", "≤ 0.05"))
    seg = _load("segments")
    if seg:
        a = seg["planted"]["alpha"].get("0.5")
        if a:
            levels = f" (top level k={a['k']}; its {a['k_leaf']} sub-segments: ARI {a['ari_leaf_median']:.3f})" if "k_leaf" in a else ""
            rows.append(("Planted-segment ARI, sample data, α=0.5, at the level with the planted count (median of 3 seeds)",
                         f"{a['ari_median']:.3f}{levels}", "≥ 0.95"))
        sweep = seg["planted"]["alpha"]
        rows.append(("Planted-segment ARI by α (" + " / ".join(sweep) + ")", " / ".join(f"{v['ari_median']:.3f}" for v in sweep.values()), "chooses the α default"))
        rows += text_rows(seg.get("text", {}))
    rows += usefulness_rows(_load("usefulness"))
    rows += assign_drift_rows(_load("assign"), _load("drift"))
    ex = _load("explain")
    if ex:
        rows.append(("Label distinctiveness, sample data", f"{ex['label_distinctiveness']:.3f}", "reported"))
        rows.append((f"Explanations verified ({ex['explanations']:,} recommendations; report: {ex['report_explanations']})", f"{ex['explanation_pass_rate']:.1%} / {ex['report_pass_rate']:.0%}", "100%"))
        rows.append(("Time to explain one recommendation / label one segment (extractive, median)", f"{1000 * ex['explain_s_per_recommendation_median']:.1f} ms / {1000 * ex['label_s_per_segment_median']:.2f} ms", "reported"))
    asst = _load("assistant")
    if asst:
        rows.append(("TUI first painted screen (headless, median of 3)", f"{asst['first_paint_s_median']:.2f} s", "reported"))
        for prompt, r in asst["requests"].items():
            rows.append((f"“{prompt}”: submit → first token / full answer", f"{r['first_token']:.2f} s / {r['answer']:.2f} s", "seconds"))
        rows.append(("Memory of the running assistant (model loaded, peak RSS)", f"{asst['peak_rss_mb']:,} MB", "reported"))
    real = _load("real_llm")  # python -m bench.real_llm, after make llm-server
    if real:
        bound = 2 * real["segment_extractive_s"] + real["label_budget_s"]
        rows.append(("`segment --llm` with Gemma 3 270M on llama.cpp vs extractive (names by the model)",
                     f"{real['segment_llm_s']:.1f} s vs {real['segment_extractive_s']:.1f} s ({real['names_by_model']} of {real['segments']})", f"≤ {bound:.0f} s"))
        rows.append(("`ask --llm` with Gemma 3 270M: wall time / ungrounded statements printed",
                     f"{real['ask_s']:.1f} s / {len(real['ask_ungrounded'])}", f"model turn budget {real['turn_budget_s']:.0f} s / 0"))
    sc = _load("scale")
    for size in ("10k", "100k"):
        if sc and size in sc:
            r = sc[size]
            st = r["stages_s"]
            rows.append(
                (f"`segment` on {r['users']:,} users / {r['events']:,} events / {r['items']:,} items",
                 f"{r['segment_wall_s']:.0f} s (profiles {st['profiles_s']:.0f}, clustering {st['clustering_s']:.0f}, store {st.get('store_s', 0):.0f}), {r['segment_peak_rss_mb']:,} MB peak",
                 "≤ 300 s, ≤ 4096 MB" if size == "100k" else "reported")
            )
    if sc and "growth" in sc:
        g = sc["growth"]
        rows.append((f"Growth 10k → 100k users (×{g['users_factor']})", f"time ×{g['time_factor']}, memory ×{g['memory_factor']}", "reported"))
    tl = _load("tui_load")
    if tl:
        b = tl["B"]
        rows.append((f"TUI while {tl['users']:,} users are segmented ({b['run_s']:.0f} s): key press → echoed in the prompt box, median / p95 / max of {b['keys']} (idle median)",
                     f"{b['echo_median_ms']:.0f} / {b['echo_p95_ms']:.0f} / {b['echo_max_ms']:.0f} ms ({tl['idle_echo_median_ms']:.0f} ms)", "responsive"))
        for case in ("A", "C"):
            c = tl[case]
            rows.append((f"Esc while {c['stage']} ({tl['users']:,} users): process gone / turn reports cancelled; workspace as before",
                         f"{c['stopped_s']:.2f} s / {c['cancelled_reported_s']:.2f} s; {'yes' if c['workspace_unchanged'] else 'NO'}", "≤ 1 s; yes"))
    rt = _load("routing")
    if rt:
        h, t = rt["held_out"], rt["tuning"]
        rows.append((f"Request understanding, held-out half ({h['turns']} of {rt['turns']} turns; {', '.join(rt['workspaces'])} workspaces): intent / exact arguments",
                     f"{h['intent']:.1%} / {h['exact']:.1%}", "≥ 97% / ≥ 95%"))
        rows.append((f"Request understanding, tuning half ({t['turns']} turns): intent / exact arguments; the issue's 7 requests right",
                     f"{t['intent']:.1%} / {t['exact']:.1%}; {rt['issue_table']['right']} of {rt['issue_table']['rows']}", "reported"))
        if "resolver_100k" in rt:
            r = rt["resolver_100k"]
            rows.append((f"Resolver on {r['users']:,} users / {r['items']:,} titled items: index once / one request's mentions (median)",
                         f"{r['index_s']:.2f} s / {r['mentions_ms_median']:.1f} ms", "fast"))
    rec = _load("recommend")
    if rec:
        for row in rec.get("methods", []):
            rows.append((f"ml-latest-small {row['method']} HR@10 / NDCG@10", f"{row['hr']:.4f} / {row['ndcg']:.4f}", "≥ EASE" if row["method"].startswith("segscope") else "baseline"))
    return rows


def assign_drift_rows(assign: dict | None, drift: dict | None) -> list[tuple[str, str, str]]:
    """bench/assign.py and bench/drift.py: the run's own data back exactly, a later slice placed, drift's matrix adding up."""
    rows = []
    for r in (assign or {}).get("results", []):
        own, app = r["own_data"], r["later_slice"]["appended"]
        rows.append((f"Assign, {r['log']} ({r['split']}): the fit's own {own['users']:,} users, leaf / top ids as in assignments.csv",
                     f"{own['leaf_agreement']:.1%} / {own['top_agreement']:.1%}; {own['seconds']:.1f} s vs fit {r['fit']['seconds']:.0f} s", "100%"))
        rows.append((f"Assign --append, {r['log']}: the later slice's {app['users']:,} users ({app['not_in_run']:,} new) in the same leaf / top "
                     f"segment as the model's predict on a whole-log run's profiles", f"{app['same_leaf_as_full_run_profiles']:.1%} / "
                     f"{app['same_top_as_full_run_profiles']:.1%}; beyond the run's p99 {app['beyond_p99']:.1%}", "reported"))
    for r in (drift or {}).get("results", []):
        d, same = r["data"], r["since_same_data_other_seed"]
        ok = all(r[k]["rows_sum_to_users_in_both"] for k in ("data", "data_appended", "since", "window_90d", "since_same_data_other_seed"))
        rows.append((f"Drift, {r['log']} halves by time: migration rows sum to the users in both ({d['users']['in_both']:,}); moved; beyond p99",
                     f"{'yes' if ok else 'NO'}; {d['users']['moved']:,}; {d['unusual']['share_beyond_p99']:.1%}", "rows sum exactly"))
        rows.append((f"Drift --since, {r['log']}: segments keeping id and name, whole log re-fitted with another seed / first half vs whole log",
                     f"{same['kept']} / {r['since']['kept']}", "unchanged segments kept"))
    return rows


def text_rows(sets: dict) -> list[tuple[str, str, str]]:
    """Text-only sets: segscope beside BERTopic on the same vectors (bench/segments.py)."""
    rows = []
    titles = {"banking77": "Banking77", "clinc150_test": "CLINC150 test"}
    for name, s in sets.items():
        if "n_classes" not in s:
            continue
        title, k = titles.get(name, name), s["n_classes"]
        given, auto, peers = s[f"k={k}"], s["k=auto"], s.get("peers", {})

        def fig(m: dict) -> str:
            out = f"NMI {m['nmi_median']:.3f}, ARI {m['ari_median']:.3f}"
            return out + (f", {m['outlier_share_median']:.0%} outliers" if m["outlier_share_median"] else "")

        floor = " (≥ 0.82 every seed)" if name == "banking77" else ""
        rows.append((f"{title} ({s['n_texts']:,} texts), k={k}: segscope (median of 3 seeds, worst {given['nmi_min']:.3f})",
                     f"{fig(given)}; clustering {given['seconds_median']:.1f} s", f"≥ BERTopic UMAP+KMeans{floor}"))
        if "bertopic_umap_kmeans" in peers:
            p = peers["bertopic_umap_kmeans"]
            rows.append((f"{title}, k={k}: BERTopic UMAP+KMeans on the same vectors", f"{fig(p)}; fit {p['seconds_median']:.1f} s", "peer"))
        rows.append((f"{title}, k auto: segscope (k chosen {auto['k_chosen']})", f"{fig(auto)}; clustering {auto['seconds_median']:.1f} s", "≥ BERTopic default"))
        if "bertopic_default" in peers:
            p = peers["bertopic_default"]
            rows.append((f"{title}, k auto: BERTopic default, UMAP+HDBSCAN (k found {p['k_chosen']})", f"{fig(p)}; fit {p['seconds_median']:.1f} s", "peer"))
    return rows


def usefulness_rows(result: dict | None) -> list[tuple[str, str, str]]:
    """Per dataset and level: segscope's held-out AUC / R² beside the RFM-named groups and log-RFM KMeans at the same k."""
    if not result:
        return []
    rows = []
    for d in result.get("datasets", []):
        by = {r["method"]: r for r in d["rows"]}
        rfm = by["RFM named groups"]
        for level in ("leaf", "top"):
            ours = by.get(f"segscope ({level} level)")
            if ours is None:
                continue
            km = by[f"KMeans log-RFM (k={ours['k']})"]
            label = "segments" if level == "leaf" else "top-level segments"
            rows.append((
                f"Usefulness, {d['dataset']} ({d['protocol']}): held-out AUC / R² of segscope's {label} (k={ours['k']}, "
                f"stability {ours['stability_ari']:.2f}) vs RFM named groups (k={rfm['k']}) vs log-RFM KMeans (k={km['k']})",
                f"{ours['auc']:.3f} / {ours['r2']:.3f} vs {rfm['auc']:.3f} / {rfm['r2']:.3f} vs {km['auc']:.3f} / {km['r2']:.3f}",
                "segscope ≥ both on both" if level == "leaf" else "reported",
            ))
    return rows


def markdown_table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| benchmark | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def write_reports() -> None:
    rows = summary_rows()
    parts = ["# Benchmarks", "", "Produced by `make bench` (bench/run_all.py); raw figures in bench/results/*.json.", "", markdown_table(rows), ""]
    for name in ("recommend", "explain", "assistant", "embedding", "segments", "usefulness", "assign", "drift", "scale", "tui_load", "routing"):
        data = _load(name)
        if data is not None:
            parts += [f"## {name}", "", "```json", json.dumps(data, indent=2), "```", ""]
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "benchmarks.md").write_text("\n".join(parts))
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"<!-- BENCH:START -->\n{markdown_table(rows)}\n<!-- BENCH:END -->"
    readme.write_text(re.sub(r"<!-- BENCH:START -->.*?<!-- BENCH:END -->", lambda _: block, text, flags=re.S))


def update_readme_rows(prefixes: tuple[str, ...]) -> None:
    """Replace (or add) only the README rows that start with ``prefixes``, from the results present; the rest stay as they are.

    For a benchmark run on its own (`python -m bench.report routing`), when the other results are not on this machine.
    """
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = {a: (a, b, c) for a, b, c in summary_rows() if a.startswith(prefixes)}
    match = re.search(r"<!-- BENCH:START -->\n(.*?)\n<!-- BENCH:END -->", text, flags=re.S)
    if match is None:
        return
    kept = []
    for line in match.group(1).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if not cells[0].startswith(prefixes):
            kept.append(tuple(cells))
    rows = kept + list(new.values())
    readme.write_text(text[: match.start(1)] + markdown_table(rows) + text[match.end(1):])


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "routing":
        update_readme_rows(("Request understanding", "Resolver on"))
    elif len(sys.argv) > 1 and sys.argv[1] in ("assign", "drift"):
        update_readme_rows(("Assign", "Drift"))
    else:
        write_reports()
