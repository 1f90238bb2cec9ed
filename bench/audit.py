"""Fairness audit figures (docs/fairness.md): the planted sample, MovieLens 100k, ml-latest-small.

- Sample: `segscope sample --users 3000 --seed 7 --plant-gender` segmented with --seed 7. The
  planted segment (fashion_forward, 85% F against 45% elsewhere; the leaves most of whose users
  are planted, when the run cuts it into sub-segments) must be flagged as a proxy for gender,
  and nothing for country, which the generator draws independently of the segments.
- MovieLens 100k as GroupLens ships it (u.data, u.item, u.user), from ``--ml100k PATH`` or the
  external data root (bench/common.py EXT_DATA; it is not shipped or in CI): Cramér's V of the segments with gender, age band and occupation,
  with p-values, and NDCG@10 and popular-item exposure by gender.
- ml-latest-small (../shared/data): no user attributes, so the audit must say so and report nothing.

- Any other folder with user attributes, ``--data NAME=PATH`` (the segment part only).

    python -m bench.audit [--ml100k /path/to/ml-100k] [--data NAME=PATH …] [--embedder minilm|hashing]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.common import ROOT, ext_data, save, shared_data

MARK_START, MARK_END = "<!-- AUDIT:START -->", "<!-- AUDIT:END -->"


def _segment(data_dir: Path, workspace: Path, embedder_name: str, seed: int = 0, k: int | str = "auto"):
    from tools.core.run_state import load_run
    from tools.data.ingest import load_dataset
    from tools.embed.embedding import make_embedder
    from tools.pipeline import RunParams, segment_dataset

    embedder = make_embedder(embedder_name)
    params = RunParams(k=k, seed=seed, embedder=embedder.name)
    segment_dataset(load_dataset(data_dir), workspace, params, embedder=embedder, write_store=False)
    return load_run(workspace)


def _p(p: float | None) -> str:
    return "—" if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _cells(flag: dict) -> str:
    return ", ".join(f"{c['value']} {c['share']:.1%} vs {c['population_share']:.1%}" for c in flag["groups"])


def _quality(label: str, groups: list[dict]) -> list[tuple[str, str]]:
    return [(f"{label}: recommendations for {g['value']} ({g['n_test_users']:,} test users)",
             f"NDCG@10 {g['ndcg']:.4f} (gap {g['ndcg_gap']:+.4f}, p {_p(g['ndcg_p'])}), HR@10 {g['hr']:.3f}, "
             f"{g['exposure']:.1%} of top-10 slots on the most popular 10% (own history {g['history_head_share']:.1%}, "
             f"p {_p(g['exposure_p'])}); flags: {', '.join(g['flags']) or 'none'}") for g in groups]  # fmt: skip


def _audit(run, sensitive=None, recommendations: bool = True) -> tuple[dict, float]:
    from tools.explain.audit import audit_run

    start = time.perf_counter()
    result = audit_run(run, sensitive, recommendations=recommendations).as_dict()
    return result, time.perf_counter() - start


def _attribute(audit: dict, name: str) -> dict:
    return next(a for a in audit["attributes"] if a["attribute"] == name)


def _v(a: dict) -> str:
    s = a["association"]
    p = "< 0.001" if s["p_value"] < 0.001 else f"{s['p_value']:.3f}"
    return f"V {s['cramers_v']:.3f} (uncorrected {s['cramers_v_uncorrected']:.3f}), permutation p {p}"


def sample_figures(root: Path, embedder: str) -> dict:
    from tools.data.sample import GENDER_SKEW, generate_sample

    generate_sample(root / "shop", n_users=3000, seed=7, plant_gender=True)
    run = _segment(root / "shop", root / "ws-shop", embedder, seed=7)
    audit, seconds = _audit(run, ["gender", "age_band", "country"])
    truth = pd.read_csv(root / "shop" / "truth.csv", dtype=str).set_index("user_id")["segment"]
    labels = pd.Series(run.labels, index=run.user_ids.astype(str))
    # the planted segment's users may be cut into sub-segments: the leaves most of whose members are planted
    share = (truth.reindex(labels.index) == GENDER_SKEW[0]).groupby(labels).mean()
    planted = sorted(int(s) for s in share.index[share > 0.5])
    gender, country = _attribute(audit, "gender"), _attribute(audit, "country")
    flagged = [p["segment_id"] for p in gender["proxies"]]
    return {"k": run.k, "seconds": seconds, "gender": gender["association"], "country": country["association"],
            "age_band": _attribute(audit, "age_band")["association"], "planted_segments": planted, "flagged_for_gender": flagged,
            "flagged_for_country": [p["segment_id"] for p in country["proxies"]],
            "gender_cells": gender["proxies"][0]["groups"] if gender["proxies"] else [],
            "recommendations_by_gender": gender["recommendations"], "overall": audit["recommendations"], "rows": [
                ("Sample (3,000 users, planted gender skew): gender", _v(gender)),
                ("Sample: the planted segment's leaves (most of their users planted) and those flagged as a proxy for gender", f"flagged {flagged}, planted {planted}"),
                ("Sample: country (independent of the segments)", _v(country) + f"; flagged {[p['segment_id'] for p in country['proxies']]}"),
                *_quality("Sample", gender["recommendations"]),
            ]}  # fmt: skip


def ml100k_figures(folder: Path, root: Path, embedder: str) -> dict:
    """k chosen automatically, then k = 8 (more, smaller segments) on the same embeddings."""
    out: dict = {"rows": []}
    for k in ("auto", 8):
        run = _segment(folder, root / "ws-ml100k", embedder, k=k)
        audit, seconds = _audit(run, ["gender", "age", "occupation"], recommendations=k == "auto")
        label = f"ml-100k (k={run.k}{', auto' if k == 'auto' else ''})"
        rows = [(f"{label}: {name}", _v(_attribute(audit, name))) for name in ("gender", "age", "occupation")]
        flags = [f"segment {p['segment_id']} for {a['attribute']} ({_cells(p)})" for a in audit["attributes"] for p in a["proxies"]]
        rows.append((f"{label}: proxy flags", "; ".join(flags) or "none"))
        if k == "auto":
            rows += _quality(label, _attribute(audit, "gender")["recommendations"])
            out["overall"] = audit["recommendations"]
        out["rows"] += rows
        out[f"k_{k}"] = {"k": run.k, "seconds": seconds, "attributes": [{key: a[key] for key in ("attribute", "association", "proxies", "recommendations")} for a in audit["attributes"]]}
    return out


def ml_latest_small_figures(folder: Path, root: Path, embedder: str) -> dict:
    run = _segment(folder, root / "ws-mls", embedder)
    audit, seconds = _audit(run)
    return {"seconds": seconds, "attributes": audit["attributes"], "notes": audit["notes"],
            "rows": [("ml-latest-small: user attributes", f"{len(audit['attributes'])}; says: {audit['notes'][0]}")]}


def other_figures(name: str, folder: Path, root: Path, embedder: str) -> dict:
    """Any other folder with user attributes (``--data NAME=PATH``): the segment part, k chosen automatically."""
    run = _segment(folder, root / f"ws-{name}", embedder)
    audit, seconds = _audit(run, recommendations=False)
    rows = [(f"{name} (k={run.k}): {a['attribute']} ({a['n_users']:,} users with a value)", _v(a)) for a in audit["attributes"]]
    flags = [f"segment {p['segment_id']} for {a['attribute']} ({_cells(p)})" for a in audit["attributes"] for p in a["proxies"]]
    rows.append((f"{name}: proxy flags", "; ".join(flags) or "none"))
    return {"k": run.k, "seconds": seconds, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml100k", type=Path, default=ext_data("ml100k"), help="a MovieLens 100k folder (u.data, u.item, u.user)")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=PATH", help="another folder with user attributes (repeatable)")
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args()
    result: dict = {"embedder": args.embedder}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result["sample"] = sample_figures(root, args.embedder)
        if args.ml100k is not None:
            result["ml100k"] = ml100k_figures(args.ml100k, root, args.embedder)
        for spec in args.data:
            name, _, path = spec.partition("=")
            result[name] = other_figures(name, Path(path), root, args.embedder)
        shared = shared_data()
        if shared is not None and (shared / "ml-latest-small").is_dir():
            result["ml_latest_small"] = ml_latest_small_figures(shared / "ml-latest-small", root, args.embedder)
    parts = ["sample", "ml100k", *(spec.partition("=")[0] for spec in args.data), "ml_latest_small"]
    rows = [row for part in parts if part in result for row in result[part]["rows"]]
    save("audit", result)
    table = "\n".join(["| audit | measured |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows)])
    print("\n" + table)
    if args.ml100k is not None and "ml_latest_small" in result:  # every part measured: the figures docs/fairness.md shows
        doc = ROOT / "docs" / "fairness.md"
        text = doc.read_text()
        start, end = text.index(MARK_START) + len(MARK_START), text.index(MARK_END)
        doc.write_text(text[:start] + "\n" + table + "\n" + text[end:])
        print(f"wrote the table into {doc}")


if __name__ == "__main__":
    main()
