"""Fairness audit of a run: are segments proxies for user attributes, and do recommendations serve groups alike?

For each sensitive attribute (tools/explain/audit_attributes.py says which and how
values are grouped), against the run's segments (the leaf ``segment_id`` of
assignments.csv, or ``top_segment_id`` when asked for and present):

1. Association: Cramér's V, bias-corrected (Bergsma 2013), with a permutation
   p-value (``PERMUTATIONS`` shuffles, seeded) — tools/explain/audit_stats.py.
2. Composition: each segment's share of each group against the population, with
   the share ratio and an exact hypergeometric p-value, Holm-adjusted over the
   attribute's cells. A segment is flagged as a proxy when a group's share in it is
   at least ``PROXY_RATIO`` times (or at most 1/``PROXY_RATIO`` of) its population
   share, at least ``PROXY_POINTS`` away from it, with adjusted p < ``ALPHA``, in a
   segment of at least ``MIN_USERS`` users with a value and a group of at least
   ``MIN_USERS`` users.
3. What carries it: eta squared of every behaviour feature (and of the text profile as
   a block) between the attribute's groups and between segments; for a flagged
   segment, the features on which it departs from everyone in the same direction as
   the over-represented group does.
4. Recommendations (when the data has items): HR@10 and NDCG@10 per group on the
   evaluation protocol's split, and the share of top-10 slots on the most popular 10%
   of items — tools/explain/audit_recs.py.

Figures that rest on fewer than ``MIN_USERS`` users are shown but marked, and never
flagged. Attributes are read from the run's users table only; nothing is invented
when there is none.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError, WorkspaceError
from tools.core.run_state import RunState
from tools.core.workspace import atomic_write_json
from tools.explain.audit_attributes import SensitiveAttribute, band_order, sensitive_attributes
from tools.explain.audit_model import (
    ALPHA,
    EXPOSURE_GAP,
    MIN_EFFECT,
    MIN_USERS,
    PERMUTATIONS,
    PROXY_POINTS,
    PROXY_RATIO,
    QUALITY_GAP,
    AttributeAudit,
    AuditReport,
    Carrier,
    FeatureEffect,
    GroupShare,
    ProxyFlag,
    SegmentComposition,
    plain,
    strength,
    thresholds,
)
from tools.explain.audit_recs import RecommendationFit, fit_recommendations, group_quality
from tools.explain.audit_stats import association, block_eta_squared, cell_p_values, contingency, eta_squared, group_means, holm

N_FEATURES = 5
N_CARRIERS = 3
LEVELS = ("leaf", "top")
TEXT_FEATURE = "text profile"
TEXT_LABEL = "text profile (what they touched and wrote)"
AUDIT_FILE = "audit.json"
AUDIT_VERSION = 2  # a saved audit of another version is never reused
ProgressFn = Callable[[str, int, int], None]


def read_assignments(run_dir: Path, level: str = "leaf") -> pd.Series:
    """Segment id per user id from the run's assignments.csv, read by column name (``top_segment_id`` for the top level)."""
    if level not in LEVELS:
        raise ParameterError(f"--level {level!r} is not one of {', '.join(LEVELS)}", "use --level leaf (the default) or top")
    path = Path(run_dir) / "assignments.csv"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path}: cannot be read ({exc})", "run `segscope segment` again") from None
    column = "segment_id" if level == "leaf" else "top_segment_id"
    flat = level == "top" and column in frame and "segment_id" in frame and (frame[column] == frame["segment_id"]).all()
    if "user_id" not in frame or column not in frame or flat:  # a flat run writes top_segment_id = segment_id
        if level == "top":
            raise ParameterError("this run has one level of segments (no sub-segments)", "audit the segments as they are: --level leaf")
        raise WorkspaceError(f"{path}: no user_id/segment_id columns", "run `segscope segment` again")
    return pd.Series(pd.to_numeric(frame[column]).astype(int).to_numpy(), index=pd.Index(frame["user_id"]))


def _feature_blocks(run: RunState) -> tuple[np.ndarray, list[tuple[str, str, str]], np.ndarray | None]:
    """Behaviour features scaled as clustering saw them, their (name, label, unit), and the text block at unit total variance."""
    from tools.explain.describe import _feature_meta
    from tools.segment.features import FeatureSpec, scale_features

    meta = _feature_meta(run)
    specs = [FeatureSpec(name, *meta(name)) for name in run.feature_names]
    x = scale_features(run.feature_raw, specs).astype(np.float64) if specs else np.zeros((len(run.user_ids), 0))
    text = np.asarray(run.text, dtype=np.float64)
    centred = text - text.mean(axis=0) if text.size else text
    total = float((centred**2).sum(axis=1).mean()) if centred.size else 0.0
    z = centred / np.sqrt(total) if total > 1e-12 else None
    return x, [(s.name, s.label, s.unit) for s in specs], z


def audit_parameters(run: RunState, sensitive: Sequence[str] | None, level: str, recommendations: bool,
                     permutations: int, seed: int, k: int) -> dict:
    """What an audit was made with: its thresholds, the request, and the run audited (saved with it, to reuse it)."""
    asked = None if sensitive is None else [str(name).strip() for name in sensitive]
    return {**thresholds(), "audit_version": AUDIT_VERSION, "sensitive": asked, "level": level, "recommendations": recommendations,
            "permutations": permutations, "seed": seed, "k": k, "run_key": run.summary.get("run_key")}  # fmt: skip


def audit_run(
    run: RunState,
    sensitive: Sequence[str] | None = None,
    *,
    level: str = "leaf",
    recommendations: bool = True,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    k: int = 10,
    progress: ProgressFn | None = None,
) -> AuditReport:
    """Audit ``run``'s segments (and, with ``recommendations``, its recommender) for the ``sensitive`` attributes.

    ``sensitive`` names users-table columns (None: every attribute). A name that is
    not an attribute is a ParameterError; data without attributes gives a report
    with no attributes and a note saying so.
    """
    report = progress or (lambda stage, done, total: None)
    if permutations < 1:
        raise ParameterError(f"permutations must be at least 1, got {permutations}", f"the default is {PERMUTATIONS}")
    segment_of = read_assignments(run.run_dir, level)
    users_path = run.run_dir / "users.parquet"
    users = pd.read_parquet(users_path) if users_path.exists() else None
    attributes, skipped = sensitive_attributes(users, run.user_ids, sensitive)
    params = audit_parameters(run, sensitive, level, recommendations, permutations, seed, k)
    labels = segment_of.reindex(pd.Index(run.user_ids.astype(str))).to_numpy()
    if np.isnan(labels.astype(np.float64)).any():
        raise WorkspaceError(f"{run.run_dir}: assignments.csv does not cover every user of the run", "run `segscope segment` again")
    seg_ids = sorted(set(labels.tolist()))
    names = {int(s["id"]): s.get("name") or f"Segment {s['id']}" for s in run.summary.get("segments", [])}
    base = dict(level=level, n_users=len(run.user_ids), n_segments=len(seg_ids), skipped=tuple(skipped), parameters=params)
    if not attributes:
        why = ("this data has no user attributes (no users file, and no events column with one value per user): "
               "there is nothing to audit" if users is None or len(users.columns) <= 1 else
               "no user attribute can be grouped, so there is nothing to audit")  # fmt: skip
        return AuditReport(attributes=(), recommendations=None, notes=(why,), **base)

    codes = np.searchsorted(np.asarray(seg_ids), labels).astype(np.int64)
    x, specs, z = _feature_blocks(run)
    notes: list[str] = []
    fit = None
    if recommendations:
        fit, note = _fit(run, k, report)
        if note:
            notes.append(note)
    out = []
    for i, attr in enumerate(attributes):
        report("auditing attributes", i, len(attributes))
        # Each attribute's own stream: its p-values do not depend on which other attributes are audited.
        rng = np.random.default_rng([seed, zlib.crc32(attr.name.encode("utf-8"))])
        out.append(_audit_attribute(attr, codes, seg_ids, names, (x, run.feature_raw, specs, z), permutations, rng, fit, run.user_ids))
    report("auditing attributes", len(attributes), len(attributes))
    overall = None
    if fit is not None:
        overall = {"k": fit.k, "hr": fit.hr, "ndcg": fit.ndcg, "n_test_users": len(fit.test_user_ids),
                   "exposure": float(np.nanmean(fit.exposure)) if np.isfinite(fit.exposure).any() else None,
                   "head_items": fit.n_head_items, "n_items": fit.n_items, "seconds": fit.seconds}  # fmt: skip
    return AuditReport(attributes=tuple(out), recommendations=overall, notes=tuple(notes), **base)


def _fit(run: RunState, k: int, report: ProgressFn) -> tuple[RecommendationFit | None, str | None]:
    data = run.summary.get("data", {})
    if data.get("kind") == "text" or not data.get("n_items"):
        return None, "this data has no items, so there are no recommendations to audit"
    report("fitting the recommender on the evaluation split", 0, 1)
    from tools.core.errors import DataError

    try:
        fit = fit_recommendations(run.data.events, k=k)
    except DataError as exc:
        return None, f"recommendations not audited: {exc.message}"
    report("fitting the recommender on the evaluation split", 1, 1)
    return fit, None


def proxy_direction(share: float, population_share: float, p_value: float, n_segment: int, n_group: int) -> str | None:
    """"over" / "under" when a group's share of a segment meets the proxy rule (module docstring), else None."""
    if n_segment < MIN_USERS or n_group < MIN_USERS or p_value >= ALPHA or population_share <= 0:
        return None
    ratio = share / population_share
    if ratio >= PROXY_RATIO and share - population_share >= PROXY_POINTS:
        return "over"
    if ratio <= 1 / PROXY_RATIO and population_share - share >= PROXY_POINTS:
        return "under"
    return None


def _audit_attribute(attr: SensitiveAttribute, codes: np.ndarray, seg_ids: list[int], names: dict[int, str], blocks: tuple,
                     permutations: int, rng: np.random.Generator, fit: RecommendationFit | None, user_ids: np.ndarray) -> AttributeAudit:
    """One attribute against the segments; ``blocks`` = (scaled features, raw features, their specs, text block or None)."""
    x, raw, specs, z = blocks
    known = np.array([v is not None for v in attr.values], dtype=bool)
    values = attr.values[known]
    counts = pd.Series(values).value_counts()
    order = band_order(attr, sorted(counts.index, key=lambda g: (-counts[g], str(g))))
    g_index = {g: j for j, g in enumerate(order)}
    groups = np.array([g_index[v] for v in values], dtype=np.int64)
    segs = codes[known]
    n_seg, n_grp = len(seg_ids), len(order)
    assoc = association(segs, groups, n_seg, n_grp, permutations, rng)
    table = contingency(segs, groups, n_seg, n_grp)
    p_cells = holm(cell_p_values(table).ravel()).reshape(table.shape)
    pop_counts = table.sum(axis=0)
    pop = pop_counts / max(pop_counts.sum(), 1)
    compositions, proxies = [], []
    seg_effect = group_means(x, codes, n_seg)[0] - x.mean(axis=0)
    grp_effect = group_means(x[known], groups, n_grp)[0] - x[known].mean(axis=0)
    if z is not None:
        seg_text = group_means(z, codes, n_seg)[0] - z.mean(axis=0)
        grp_text = group_means(z[known], groups, n_grp)[0] - z[known].mean(axis=0)
    for s, sid in enumerate(seg_ids):
        n_known = int(table[s].sum())
        shares = []
        for g, value in enumerate(order):
            share = table[s, g] / n_known if n_known else 0.0
            ratio = share / pop[g] if pop[g] > 0 else None
            direction = proxy_direction(share, float(pop[g]), float(p_cells[s, g]), n_known, int(pop_counts[g]))
            shares.append(GroupShare(str(value), int(table[s, g]), float(share), float(pop[g]), ratio, float(p_cells[s, g]), direction))
        name = names.get(int(sid), f"Segment {sid}")
        compositions.append(SegmentComposition(int(sid), name, n_known, tuple(shares), n_known < MIN_USERS))
        hits = [sh for sh in shares if sh.direction]
        if hits:
            lead = max(hits, key=lambda sh: (sh.direction == "over", abs(sh.share - sh.population_share)))
            g = g_index[lead.value]
            sign = 1.0 if lead.direction == "over" else -1.0  # under-represented: the segment goes against the group
            text = None if z is None else (seg_text[s], grp_text[g])
            carried = _carriers(seg_effect[s], grp_effect[g], sign, specs, text)
            proxies.append(ProxyFlag(int(sid), name, tuple(hits), carried))
    features = _features(x, raw, specs, z, codes, n_seg, known, groups, order)
    small = tuple(str(order[g]) for g in range(n_grp) if pop_counts[g] < MIN_USERS)
    recs = None
    if fit is not None:
        group_of = pd.Series(values, index=pd.Index(np.asarray(user_ids, dtype=str)[known]))
        recs = group_quality(fit, group_of, [str(g) for g in order], min_users=MIN_USERS, alpha=ALPHA, quality_gap=QUALITY_GAP,
                             exposure_gap=EXPOSURE_GAP, permutations=permutations, rng=rng)  # fmt: skip
    return AttributeAudit(
        attribute=attr.name, asked_as=attr.asked_as, banding=attr.banding, n_users=int(known.sum()), n_missing=attr.n_missing,
        groups=tuple((str(g), int(counts[g])) for g in order), association=assoc, strength=strength(assoc.cramers_v),
        compositions=tuple(compositions), proxies=tuple(proxies), features=features, small_groups=small, recommendations=recs,
    )  # fmt: skip


def _carriers(seg_effect: np.ndarray, grp_effect: np.ndarray, sign: float, specs,
              text: tuple[np.ndarray, np.ndarray] | None) -> tuple[Carrier, ...]:  # fmt: skip
    """Features on which the segment departs from everyone the way the group does (``sign`` +1: over-represented),
    or the opposite way (``sign`` −1: the group is under-represented).

    A feature's score is ``sign`` × the product of the two departures (in sd); the effects
    reported are the plain departures. The text profile, scaled to unit total variance
    like one feature, scores the dot product of its two mean offsets and reports their lengths.
    """
    scored = [(sign * float(seg_effect[j] * grp_effect[j]), Carrier(name, label, float(seg_effect[j]), float(grp_effect[j])))
              for j, (name, label, _) in enumerate(specs)]  # fmt: skip
    if text is not None:
        seg_text, grp_text = text
        carrier = Carrier(TEXT_FEATURE, TEXT_LABEL, float(np.sqrt(seg_text @ seg_text)), float(np.sqrt(grp_text @ grp_text)))
        scored.append((sign * float(seg_text @ grp_text), carrier))
    scored = [(s, c) for s, c in scored if s > 0]
    scored.sort(key=lambda sc: (-sc[0], sc[1].feature))
    return tuple(c for _, c in scored[:N_CARRIERS])


def _features(x, raw, specs, z, codes, n_seg, known, groups, order) -> tuple[FeatureEffect, ...]:
    """The features that best separate the attribute's groups (eta squared ≥ MIN_EFFECT), with the highest and lowest group."""
    if x.shape[1]:
        eta = eta_squared(x[known], groups, len(order))
        seg_eta = eta_squared(x, codes, n_seg)
    else:
        eta = seg_eta = np.zeros(0)
    out: list[FeatureEffect] = []
    for j in np.argsort(-eta, kind="stable")[:N_FEATURES]:
        if eta[j] < MIN_EFFECT:
            break
        name, label, unit = specs[j]
        # Means in the feature's own units (days, shares, money); a user without a value is left out of it.
        col = pd.Series(raw[known][:, j]).groupby(groups).mean().reindex(range(len(order)))
        hi, lo = int(col.fillna(-np.inf).to_numpy().argmax()), int(col.fillna(np.inf).to_numpy().argmin())
        out.append(FeatureEffect(name, label, unit, float(eta[j]), float(seg_eta[j]), (str(order[hi]), float(col.iloc[hi])),
                                 (str(order[lo]), float(col.iloc[lo]))))  # fmt: skip
    if z is not None:
        text_eta = block_eta_squared(z[known], groups, len(order))
        if text_eta >= MIN_EFFECT:
            out.append(FeatureEffect(TEXT_FEATURE, TEXT_LABEL, "block", text_eta, block_eta_squared(z, codes, n_seg), ("", 0.0), ("", 0.0)))
    out.sort(key=lambda f: (-f.eta_squared, f.feature))
    return tuple(out[:N_FEATURES])


def save_audit(run: RunState, report: AuditReport) -> Path:
    """The audit beside the run it audits (WORKSPACE/.segscope/runs/KEY/audit.json), written atomically."""
    path = run.run_dir / AUDIT_FILE
    atomic_write_json(path, report.as_dict())
    return path


def saved_or_new_audit(run: RunState, sensitive: Sequence[str] | None = None, *, level: str = "leaf", recommendations: bool = True,
                       permutations: int = PERMUTATIONS, seed: int = 0, k: int = 10, progress: ProgressFn | None = None) -> tuple[dict, bool]:
    """(the audit as a dict, whether it was reused): the run's saved audit when it was made with these parameters, else a new one, saved."""
    wanted = plain(audit_parameters(run, sensitive, level, recommendations, permutations, seed, k))
    saved = load_audit(run.run_dir)
    if saved is not None and saved.get("parameters") == wanted:
        return saved, True
    report = audit_run(run, sensitive, level=level, recommendations=recommendations, permutations=permutations, seed=seed,
                       k=k, progress=progress)  # fmt: skip
    if report.attributes:  # "nothing to audit" is said, not saved
        save_audit(run, report)
    return report.as_dict(), False


def load_audit(run_dir: Path) -> dict | None:
    """The saved audit of a run, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / AUDIT_FILE).read_text())
    except (OSError, ValueError):
        return None
