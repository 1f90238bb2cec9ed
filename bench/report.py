"""Turn bench/results/*.json into docs/benchmarks.md and the README's summary table.

The figures are produced by the scripts, never typed by hand. A README row measured on an external
log (bench/common.py ``EXT_DATA``) that is not on this machine is kept as it was, marked as measured
earlier, rather than lost when the table is regenerated without it.
"""

from __future__ import annotations

import json
import re

from bench.common import RESULTS, ROOT, ext_data


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
    rows += backend_rows()
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
    rows += outlier_rows(_load("outliers"))
    rows += assign_drift_rows(_load("assign"), _load("drift"))
    rows += incremental_rows(_load("incremental"))
    rows += whatif_rows(_load("whatif"))
    rows += sequence_rows(_load("sequence"))
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
    base = _load("scale-baseline")  # python -m bench.scale --sizes 10k --baseline --name scale-baseline
    sc = _load("scale") or ({} if base else None)
    for size in ("10k", "100k"):
        if sc is not None and size not in sc and base and size in base:
            sc = {**sc, size: base[size]}  # a size measured only beside its baseline
        if sc and size in sc:
            r = sc[size]
            st = r["stages_s"]
            cpu = (sc.get("cpu_features") or (base or {}).get("cpu_features", "")) + "; " if size == "100k" else ""
            where = f" ({cpu}{r['embed_backend']}; load {r['load_avg_1min_before_after'][0]})" if "embed_backend" in r else ""
            rows.append(
                (f"`segment` on {r['users']:,} users / {r['events']:,} events / {r['items']:,} items{where}",
                 f"{r['segment_wall_s']:.0f} s (profiles {st['profiles_s']:.0f}, clustering {st['clustering_s']:.0f}, store {st.get('store_s', 0):.0f}), {r['segment_peak_rss_mb']:,} MB peak",
                 "≤ 300 s, ≤ 4096 MB" if size == "100k" else "reported")
            )
    for size, r in (base or {}).items():
        if isinstance(r, dict) and "wall_ratio_vs_baseline" in r:
            b = r.get("baseline_torch") or r["baseline_torch_no_overlap"]
            rows.append((f"`segment` on {r['users']:,} users, {r['embed_backend']} ÷ torch bf16 (the previous default), same command: wall / profiles / store",
                         f"{r['wall_ratio_vs_baseline']:.2f} / {r['profiles_ratio_vs_baseline']:.2f} / {r['store_ratio_vs_baseline']:.2f} ({r['segment_wall_s']:.0f} s vs {b['segment_wall_s']:.0f} s)",
                         "< 1"))
    if sc and "growth" not in sc and "10k" in sc and "100k" in sc:
        a, b = sc["10k"], sc["100k"]
        sc["growth"] = {"users_factor": round(b["users"] / a["users"], 1), "time_factor": round(b["segment_wall_s"] / a["segment_wall_s"], 2),
                        "memory_factor": round(b["segment_peak_rss_mb"] / a["segment_peak_rss_mb"], 2)}
    if sc and "growth" in sc:
        g = sc["growth"]
        rows.append((f"Growth 10k → 100k users (×{g['users_factor']})", f"time ×{g['time_factor']}, memory ×{g['memory_factor']}", "reported"))
    vs = _load("store")  # python -m bench.store
    if vs:
        e, c = vs["embedded"], vs["server"]
        rows.append((f"Vector store, sample ({vs['users']:,} users): writing a run's vectors, embedded / Chroma server (median of {len(e['runs'])} runs)",
                     f"{e['store_s_median']:.1f} s / {c['store_s_median']:.1f} s", "reported"))
        rows.append((f"Vector store, embedded / server: one users query (median of {e['queries']}); recall@10 against exact search; "
                     "same ten users in both (two embedded builds of the same vectors)",
                     f"{e['query_ms_median']:.1f} / {c['query_ms_median']:.1f} ms; {e['recall_at_10']:.3f} / {c['recall_at_10']:.3f}; "
                     f"{vs['same_top10_share']:.1%} ({vs['same_top10_share_two_embedded_builds']:.1%})", "reported"))
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


def whatif_rows(result: dict | None) -> list[tuple[str, str, str]]:
    """bench/whatif.py: random users and targets; proposals once applied must land in the target (100%)."""
    rows = []
    for r in (result or {}).get("results", []):
        reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(r["reasons"].items(), key=lambda kv: -kv[1])) or "none"
        med = "—" if r["median_changes"] is None else f"{r['median_changes']:g}"
        rows.append((f"What-if, {r['dataset']}: {r['pairs']} random users × target segments (≤ {result['max_changes']} changes): "
                     "with a proposal / proposals placed in the target once applied / median changes; the rest's reasons",
                     f"{r['proposed_share']:.0%} / {r['applied_in_target_share']:.0%} / {med}; {reasons}; {r['median_seconds']:.1f} s per answer",
                     "100% applied"))
    return rows


def sequence_rows(result: dict | None) -> list[tuple[str, str, str]]:
    """bench/sequence.py: the order-only sample's two variants with and without the order block; nothing else moved."""
    if not result:
        return []
    o, p = result["order_only"], result["sample"]

    def seeds(part: dict) -> str:
        return ", ".join(str(s) for s in part["seeds"])

    rows = [(f"Behaviour in order, order-only sample (seeds {seeds(o)}): ARI of the two variants that differ only in order, with the order block / order-blind (median, worst)",
             f"{o['with_order']['pair_ari_median']:.3f} (worst {o['with_order']['pair_ari_min']:.3f}) / {o['order_blind']['pair_ari_median']:.3f}; "
             f"everyone {o['with_order']['ari_median']:.3f} / {o['order_blind']['ari_median']:.3f}", "≥ 0.9 with the order"),
            (f"Behaviour in order, ordinary sample (seeds {seeds(p)}, k auto): planted ARI with the order block / order-blind",
             " ; ".join(f"seed {a['seed']}: {a['ari']:.3f} (k {a['k_top']}/{a['k_leaf']}) / {b['ari']:.3f} (k {b['k_top']}/{b['k_leaf']})"
                        for a, b in zip(p["with_order"]["per_seed"], p["order_blind"]["per_seed"])), "no loss")]
    for name, r in (result.get("real") or {}).items():
        if "with_order" in r:
            w, b = r["with_order"], r["order_blind"]
            rows.append((f"Behaviour in order, {name}: k with the order block / order-blind; ARI between the two runs' segments (leaf / top); order features",
                         f"k {w['k_top']}/{w['k_leaf']} / {b['k_top']}/{b['k_leaf']}; {r['ari_between_leaf']:.3f} / {r['ari_between_top']:.3f}; "
                         f"{len(w['order_features'])}", "reported"))
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


def incremental_rows(result: dict | None) -> list[tuple[str, str, str]]:
    """bench/incremental.py: `segscope update` of 1% of 100,000 users against a full run, and against a full re-assign."""
    rows = []
    # scale_minilm (the default embedder) first, then scale (hashing: cheap profiles, so the harsher ratio)
    runs = [v for k, v in sorted((result or {}).items(), key=lambda kv: (kv[0] == "scale", kv[0])) if k.startswith("scale")]
    for sc, (name, what) in ((sc, w) for sc in runs for w in (("late", "events inside the run's period (end unchanged)"),
                                                              ("later", "events after the run's end"))):
        r = sc.get(name)
        if not r or "median_s" not in r:
            continue
        v, u = r["vs_full_reassign"], r["update"]
        rows.append((f"Update, {sc['users']:,}-user sample ({sc['embedder']} embedder): 1% of users with new {what}; median of "
                     f"{len(r['wall_s'])} `segscope update` ÷ full `segment` ({sc['fit']['wall_s']:.0f} s; without its store "
                     f"{sc['fit']['wall_s'] - sc['fit']['timings'].get('store_s', 0):.0f} s); users re-placed; same leaf / top as a full re-assign",
                     f"{r['median_s']:.1f} s = {r['ratio_to_full_run']:.1%} ({r['ratio_to_full_run_without_store']:.1%}); "
                     f"{u['placed']:,}; {v['leaf_agreement']:.1%} / {v['top_agreement']:.1%}", "≤ 5%; 100%"))
    for r in (result or {}).get("logs", []):
        for name, what in (("first_14_days", "the 14 days after the cut"), ("whole_holdout", "the whole holdout")):
            u = r.get(name)
            if not u:
                continue
            v = u["vs_full_reassign"]
            kinds = {"farther": "beyond p99", "changed top-level": "moved", "went from": "sizes", "now ends": "end moved", "new since": "new users"}
            said = [k for word, k in kinds.items() if any(word in x for x in u["refit"])]
            refit = f"re-fit suggested ({', '.join(said)})" if u["refit"] else "no re-fit"
            rows.append((f"Update, {r['log']} ({r['split']}): {what} appended ({u['events']:,} events, {u['affected']:,} users, "
                         f"{u['new_users']:,} new); same leaf / top as a full re-assign; moved; seconds vs fit",
                         f"{v['leaf_agreement']:.1%} / {v['top_agreement']:.1%}; {u['moved']:,}; {u['seconds']:.1f} s vs "
                         f"{r['fit']['seconds']:.0f} s; {refit}", "100%"))
    return rows


def backend_rows() -> list[tuple[str, str, str]]:
    """Embedding backends side by side on this CPU (bench/embed_backends.py)."""
    eb = _load("embed_backends")
    if not eb or "speed" not in eb:
        return []
    rows = []
    sp, q = eb["speed"], eb.get("quality", {})
    where = f"{eb['cpu_features']}, {eb['cores']} cores, load {max(sp['load_avg_1min_per_round']):.0f}"
    for name in ("banking77", "sample"):
        s = sp.get(name)
        if not s or "onnx-int8" not in s or "torch-bf16" not in s:
            continue
        a, b = s["onnx-int8"], s["torch-bf16"]
        rows.append((f"Embedding backend, {s['n_texts']:,} {name} texts ({where}): onnx-int8 vs torch bf16, texts/s (CPU-time speed-up)",
                     f"{a['texts_per_s']:.0f} vs {b['texts_per_s']:.0f} (×{a['speedup_cpu_vs_torch_bf16']:.2f})", "faster"))
        if "cosine_min" in a:
            rows.append((f"onnx-int8 vectors, {name}: smallest / median cosine to torch fp32", f"{a['cosine_min']:.4f} / {a['cosine_median']:.4f}", "reported"))
    if "torch-bf16" in q and "onnx-int8" in q:
        a, b = q["onnx-int8"], q["torch-bf16"]
        if "banking77_k77" in a:
            rows.append(("Banking77 k=77 NMI median (worst) over 3 seeds: onnx-int8 vs torch bf16",
                         f"{a['banking77_k77']['nmi_median']:.3f} ({a['banking77_k77']['nmi_min']:.3f}) vs {b['banking77_k77']['nmi_median']:.3f} ({b['banking77_k77']['nmi_min']:.3f})", "unchanged within noise"))
        rows.append(("Planted-segment ARI α=0.5, median (worst) of 3 seeds: onnx-int8 vs torch bf16",
                     f"{a['sample_ari_alpha_0.5']['ari_median']:.3f} ({a['sample_ari_alpha_0.5']['ari_min']:.3f}) vs {b['sample_ari_alpha_0.5']['ari_median']:.3f} ({b['sample_ari_alpha_0.5']['ari_min']:.3f})", "unchanged within noise"))
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
        for level in ("leaf", "one", "top"):
            ours = by.get(f"segscope ({level} level)")
            if ours is None:
                continue
            km = by[f"KMeans log-RFM (k={ours['k']})"]
            label = {"leaf": "segments", "one": "one-level segments", "top": "top-level segments"}[level]
            rows.append((
                f"Usefulness, {d['dataset']} ({d['protocol']}): held-out AUC / R² of segscope's {label} (k={ours['k']}, "
                f"stability {ours['stability_ari']:.2f}) vs RFM named groups (k={rfm['k']}) vs log-RFM KMeans (k={km['k']})",
                f"{ours['auc']:.3f} / {ours['r2']:.3f} vs {rfm['auc']:.3f} / {rfm['r2']:.3f} vs {km['auc']:.3f} / {km['r2']:.3f}",
                "reported" if level == "top" else "segscope ≥ both on both",
            ))
    return rows


OUTLIER_PREFIXES = ("Bots flagged", "Planted-segment ARI of the people", "Users flagged on real logs")


def outlier_rows(result: dict | None) -> list[tuple[str, str, str]]:
    """Planted bots flagged, the people's segments with and without them, and flags on real logs (bench/outliers.py)."""
    if not result:
        return []
    rows = []
    p = result.get("planted")
    if p:
        seeds = len(p["seeds"])
        bots = p["per_seed"][0]["bots"]
        kinds = sorted(p["per_seed"][0]["recall_by_kind"])
        by_kind = ", ".join(f"{k} {min(r['recall_by_kind'][k] for r in p['per_seed']):.2f}" for k in kinds)
        rows.append((f"Bots flagged, sample with {p['bot_share']:.0%} bots ({bots} of {p['users']:,}; {p['embedder']}, median of {seeds} seeds): "
                     "recall / precision (worst recall per kind)",
                     f"{p['recall_median']:.3f} / {p['precision_median']:.3f} ({by_kind})", "≥ 0.95 / ≥ 0.90"))
        gaps = ", ".join(f"{r['ari_gap']:.3f}" for r in p["per_seed"])
        own = [r["kept"]["bots_in_one_top_segment"] for r in p["per_seed"]]
        purity = min(r["kept"]["that_segment_bot_share"] for r in p["per_seed"])
        rows.append((f"Planted-segment ARI of the people, at the planted level (median of {seeds} seeds): without bots / with bots, "
                     "flagged and left out of the fit / with bots kept in the fit (--keep-outliers)",
                     f"{p['ari_without_bots_median']:.3f} / {p['ari_with_bots_median']:.3f} / {p['ari_kept_median']:.3f} "
                     f"(top level k {p['k_top_without_bots']} / {p['k_top_with_bots']} / {p['k_top_kept']}; gap per seed {gaps}); "
                     f"kept in, {min(own)}–{max(own)} of the {bots} bots make a top-level segment of their own ({purity:.0%} bots)",
                     "with bots within 0.01 of without"))
    real = result.get("real") or []
    if real:
        names = " / ".join(r["dataset"] for r in real)
        figures = " / ".join(f"{r['flagged']:,} of {r['users']:,}" for r in real)
        rows.append((f"Users flagged on real logs, no bots planted ({names})", figures, "few: heavy users are not bots"))
    return rows


# How the README's rows name each external log (bench/common.py EXT_DATA).
EXT_NAMES = {"Online Retail": "online_retail", "Complete Journey": "completejourney", "DIGINETICA": "diginetica",
             "CLINC150": "clinc150", "ml-100k": "ml100k"}
EARLIER = " (measured earlier: the log is not on this machine)"


def _absent_logs(row: tuple[str, ...]) -> list[str]:
    return [name for name, key in EXT_NAMES.items() if name in row[0] and ext_data(key) is None]


def with_earlier_rows(old: list[tuple[str, ...]], new: list[tuple[str, str, str]]) -> list[tuple[str, ...]]:
    """``new``, plus each ``old`` row that was not regenerated and names an external log absent here, in its
    old place (after the row that preceded it), its figures marked as measured earlier."""
    out: list[tuple[str, ...]] = list(new)
    fresh = {_title_key(r[0]) for r in new}
    for i, row in enumerate(old):
        if _title_key(row[0]) in fresh or not _absent_logs(row):
            continue
        kept = (row[0], row[1] if row[1].endswith(EARLIER) else row[1] + EARLIER, *row[2:])
        placed = [_title_key(r[0]) for r in out]
        before = next((j for j in range(i - 1, -1, -1) if _title_key(old[j][0]) in placed), None)
        out.insert(0 if before is None else placed.index(_title_key(old[before][0])) + 1, kept)
    return out


def _title_key(title: str) -> str:
    """A row's title without its figures (a title may quote one, such as the full run's seconds)."""
    return re.sub(r"\d[\d,.]*", "#", title)


def readme_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of the README's benchmark table."""
    match = re.search(r"<!-- BENCH:START -->\n(.*?)\n<!-- BENCH:END -->", text, flags=re.S)
    if match is None:
        return []
    return [_cells(line) for line in match.group(1).splitlines()[2:]]


def _cells(line: str) -> tuple[str, ...]:
    """A Markdown table line's cells."""
    return tuple(c.strip() for c in line.strip().strip("|").split(" | "))


def _line(row: tuple[str, ...]) -> str:
    """A row as a Markdown table line."""
    return "| " + " | ".join(row) + " |"


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    return "\n".join(["| benchmark | measured | target |", "|---|---|---|", *(_line(row) for row in rows)])


def write_reports() -> None:
    rows = summary_rows()
    parts = ["# Benchmarks", "", "Produced by `make bench` (bench/run_all.py); raw figures in bench/results/*.json.", "", markdown_table(rows), ""]
    for name in ("recommend", "explain", "assistant", "embedding", "embed_backends", "segments", "usefulness", "outliers", "assign", "drift", "incremental",
                 "whatif", "sequence", "scale", "scale-baseline", "store", "tui_load", "routing"):
        data = _load(name)
        if data is not None:
            parts += [f"## {name}", "", "```json", json.dumps(data, indent=2), "```", ""]
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "benchmarks.md").write_text("\n".join(parts))
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"<!-- BENCH:START -->\n{markdown_table(with_earlier_rows(readme_rows(text), rows))}\n<!-- BENCH:END -->"
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
    old = readme_rows(text)
    rows = with_earlier_rows(old, replaced_in_place(old, list(new.values()), prefixes))
    readme.write_text(text[: match.start(1)] + markdown_table(rows) + text[match.end(1):])


def replaced_in_place(old: list[tuple[str, ...]], fresh: list[tuple[str, str, str]], prefixes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``old`` without its rows that start with ``prefixes``, ``fresh`` where the first of them was (else at the end)."""
    rows: list[tuple[str, ...]] = []
    for row in old:
        if not row[0].startswith(prefixes):
            rows.append(row)
        elif fresh and fresh[0] not in rows:
            rows += fresh
    return rows + [r for r in fresh if r not in rows]


def update_docs_section(prefixes: tuple[str, ...], name: str) -> None:
    """docs/benchmarks.md: replace (or add) the table rows that start with ``prefixes`` and the ``## name`` section."""
    docs = ROOT / "docs" / "benchmarks.md"
    data = _load(name)
    if data is None or not docs.exists():
        return
    lines = docs.read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("|---|"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("|"))
    old = [_cells(line) for line in lines[start + 1 : end]]
    rows = with_earlier_rows(old, replaced_in_place(old, [r for r in summary_rows() if r[0].startswith(prefixes)], prefixes))
    lines = lines[: start + 1] + [_line(r) for r in rows] + lines[end:]
    text = "\n".join(lines)
    section = f"## {name}\n\n```json\n{json.dumps(data, indent=2)}\n```\n"
    found = re.search(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    text = text[: found.start()] + section + "\n" + text[found.end():] if found else text.rstrip("\n") + "\n\n" + section
    docs.write_text(text)


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "routing":
        update_readme_rows(("Request understanding", "Resolver on"))
    elif len(sys.argv) > 1 and sys.argv[1] == "outliers":
        update_readme_rows(OUTLIER_PREFIXES)
        update_docs_section(OUTLIER_PREFIXES, "outliers")
    elif len(sys.argv) > 1 and sys.argv[1] == "incremental":
        update_readme_rows(("Update,",))
        update_docs_section(("Update,",), "incremental")
    elif len(sys.argv) > 1 and sys.argv[1] in ("assign", "drift"):
        update_readme_rows(("Assign", "Drift"))
    elif len(sys.argv) > 1 and sys.argv[1] == "usefulness":
        update_readme_rows(("Usefulness,",))
        update_docs_section(("Usefulness,",), "usefulness")
    elif len(sys.argv) > 1 and sys.argv[1] == "whatif":
        update_readme_rows(("What-if",))
        update_docs_section(("What-if",), "whatif")
    elif len(sys.argv) > 1 and sys.argv[1] == "sequence":
        update_readme_rows(("Behaviour in order",))
        update_docs_section(("Behaviour in order",), "sequence")
    elif len(sys.argv) > 1 and sys.argv[1] == "store":
        update_readme_rows(("Vector store",))
    elif len(sys.argv) > 1 and sys.argv[1] == "backends":  # bench.embed_backends and bench.scale run on their own
        update_readme_rows(("Embedding backend", "onnx-int8 vectors", "Banking77 k=77 NMI median", "Planted-segment ARI α=0.5, median", "`segment` on", "Growth 10k"))
    else:
        write_reports()
