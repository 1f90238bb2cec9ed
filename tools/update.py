"""``segscope update``: append new events to the current run without re-fitting, and say when a re-fit is due.

The new users' and the touched users' profiles are recomputed with the run's recipe and
placed by its model (tools/segment/update.py: the result equals a full re-assign of the
run's data plus the new events). The summary is recomputed on the updated arrays
(sizes, traits with their tests, representatives: tools/segment/summary.py; keywords too, unless
fewer than ``KEYWORDS_KEPT`` of the users moved or are new, when a behaviour run keeps its parent's);
a segment keeps its name and description when its defining traits are the same features
as before and its size moved less than ``NAME_KEEP_SIZE``, since the model is unchanged;
others get the extractive name their new traits give.

The updated run is a new run folder, written like every run (a temporary folder renamed
whole, under the workspace lock, then published): key = sha256(parent key, appended
data's fingerprint)[:20]; its parameters record ``updated_from`` (the parent),
``fitted_run`` (the run whose recipe and model it uses: an update of an update still uses
the fit's) and ``features_end``. model.npz is copied. Vectors are not written: the live
run's collections are rebuilt from the run folder at the first search that needs them.

A re-fit is suggested, with the reason, when one of ``REFIT_RULES`` passes its threshold.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.errors import WorkspaceError
from tools.core.workspace import Workspace, atomic_write_json
from tools.embed.embedding import Embedder
from tools.explain.labels import label_segments
from tools.pipeline import assignments_csv, save_data
from tools.segment.profiles import Profiles
from tools.segment.resmooth import NEIGHBOURS_FILE
from tools.segment.summary import summarise_segments, trait_tests
from tools.segment.update import (
    UpdateBase,
    UpdatedUsers,
    load_update_base,
    run_p99,
    update_users,
)

KEYWORDS_KEPT = 0.05  # a behaviour run's keywords are the parent's when fewer users than this share moved or are new
NAME_KEEP_SIZE = 0.10  # relative size change under which a segment with the same defining features keeps its name
# Re-fit rules: (indicator, threshold, why it matters). Each is measured on the updated run against the fitted one.
BEYOND_P99 = 0.02  # share of users farther from their segment than 99% of the run's users: twice chance, as `drift` says
MIN_BEYOND = 20  # ... and at least this many of them: a candidate new segment
MOVED = 0.10  # share of the fitted run's users whose top-level segment changed
SIZE_CHANGE = 0.25  # relative change of a segment's share since the fit (segments of at least 1% of users)
STALE_DAYS = 90.0  # days the data's end moved since the fit: recency and tenure scaled for another end
NEW_USERS = 0.20  # users the fit never saw, as a share of the fit's users
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class UpdateResult:
    workspace: Path
    key: str
    parent: str
    summary: dict
    stats: dict
    refit: tuple[str, ...]  # reasons a full re-fit is suggested (empty: none)
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False


def update_key(parent: str, appended: Dataset) -> str:
    return hashlib.sha256(json.dumps({"parent": parent, "appended": appended.fingerprint}).encode()).hexdigest()[:20]


def _parents(summary: dict) -> dict[int, int | None]:
    return {int(s["id"]): (None if s.get("parent") is None else int(s["parent"])) for s in summary["segments"]}


def _keep_names(old: dict, new: dict) -> int:
    """Names and descriptions of segments that barely moved are the run's; the others are written anew. How many kept."""
    before = {int(s["id"]): s for s in old["segments"]}
    written = {lab.segment_id: lab for lab in label_segments(new)}
    kept = 0
    for seg in new["segments"]:
        prev, lab = before.get(int(seg["id"])), written[int(seg["id"])]
        same = prev is not None and [t["feature"] for t in prev.get("traits", [])] == [t["feature"] for t in seg.get("traits", [])]
        steady = prev is not None and abs(seg["size"] - prev["size"]) <= NAME_KEEP_SIZE * max(prev["size"], 1)
        if same and steady and prev.get("name"):
            seg.update(name=prev["name"], description=prev.get("description"), label_source=prev.get("label_source", "extractive"),
                       label_template=prev.get("label_template"))  # fmt: skip
            kept += 1
        else:
            seg.update(name=lab.name, description=lab.description, label_source=lab.source, label_template=lab.template)
    return kept


def refit_reasons(stats: dict) -> list[str]:
    """Why a full re-fit is suggested (module constants; README "Incremental updates")."""
    out = []
    if stats["beyond_p99_all"] >= MIN_BEYOND and stats["beyond_p99_all_share"] > BEYOND_P99:
        out.append(f"{stats['beyond_p99_all_share']:.1%} of the users are farther from their segment than 99% of the run's users are "
                   f"from theirs (above {BEYOND_P99:.0%}, twice chance; {stats['beyond_p99']:,} of the {stats['affected']:,} updated "
                   "users): a segment may be missing")
    if stats["moved_top_since_fit_share"] > MOVED:  # sub-segments follow the outlook: users lapse across them as time passes
        out.append(f"{stats['moved_top_since_fit']:,} of the fit's users ({stats['moved_top_since_fit_share']:.1%}) changed top-level "
                   f"segment since the fit (above {MOVED:.0%})")
    for seg, (before, after) in stats["shares"].items():
        if before >= 0.01 and abs(after - before) > SIZE_CHANGE * before:
            out.append(f"segment {seg} went from {before:.1%} to {after:.1%} of users (a change above {SIZE_CHANGE:.0%})")
    if stats["end_moved_days_since_fit"] > STALE_DAYS:
        out.append(f"the data now ends {stats['end_moved_days_since_fit']:.0f} days after the fit's did (above {STALE_DAYS:.0f}): "
                   "recency and tenure are scaled for an older end")
    if stats["new_users_since_fit_share"] > NEW_USERS:
        out.append(f"{stats['new_users_since_fit_share']:.0%} of the users are new since the fit (above {NEW_USERS:.0%})")
    return out


def _stats(base: UpdateBase, users: UpdatedUsers, p99: float, fit_summary: dict) -> dict:
    n_old = len(base.run.user_ids)
    old = users.previous[:n_old]
    moved = int((users.labels[:n_old] != old).sum())
    placed_affected = users.affected & np.isfinite(users.own_distance)
    beyond = int((users.own_distance[placed_affected] > p99).sum())
    # Over everyone, as `drift` counts it: the re-placed users as measured, the others as in the run (1% beyond its p99).
    placed = np.isfinite(users.own_distance)
    beyond_all = int((users.own_distance[placed] > p99).sum())
    beyond_all_share = (beyond_all + 0.01 * int((~placed).sum())) / max(len(users.user_ids), 1)
    n_aff = int(users.affected.sum())
    leaves = sorted({int(s["id"]) for s in base.run.summary["segments"] if not s.get("children")})
    fit_n = int(fit_summary["data"]["n_users"])
    shares = {}
    for seg in leaves:
        fit_size = next((s["size"] for s in fit_summary["segments"] if int(s["id"]) == seg), 0)
        shares[seg] = (round(fit_size / max(fit_n, 1), 4), round(float((users.labels == seg).mean()), 4))
    since = 0.0 if users.features_end is None or base.fit_end is None else (users.features_end - base.fit_end) / 86400.0
    rows = pd.Index(users.user_ids).get_indexer(pd.Index(base.fit_user_ids))
    moved_fit = int((users.labels[rows] != base.fit_labels).sum())
    moved_top = int((users.top[rows] != base.fit_top).sum())
    return {
        "users": len(users.user_ids), "affected": n_aff, "new_users": int(len(users.user_ids) - n_old),
        "placed": int(users.placed.sum()), "placed_searched": users.searched, "moved": moved, "moved_share": round(moved / max(n_old, 1), 4),
        "moved_since_fit": moved_fit, "moved_since_fit_share": round(moved_fit / max(len(rows), 1), 4),
        "moved_top_since_fit": moved_top, "moved_top_since_fit_share": round(moved_top / max(len(rows), 1), 4),
        "moved_affected": int((users.labels[:n_old] != old)[users.affected[:n_old]].sum()),
        "beyond_p99": beyond, "beyond_p99_share": round(beyond / max(int(placed_affected.sum()), 1), 4), "run_p99": round(p99, 6),
        "beyond_p99_all": beyond_all, "beyond_p99_all_share": round(beyond_all_share, 4),
        "end_shift_days": round(users.end_shift_days, 4), "end_features": users.end_recomputed,
        "end_moved_days_since_fit": round(since, 4),
        "new_users_since_fit_share": round(max(len(users.user_ids) - fit_n, 0) / max(fit_n, 1), 4),
        "texts_embedded": users.n_texts_embedded, "shares": shares,
    }  # fmt: skip


def update_run(workspace: str | Path, data: Dataset, embedder: Embedder | None = None,
               progress: StageProgress | None = None) -> UpdateResult:
    """Append ``data``'s events to the workspace's current run (module docstring); the new run is published."""
    report = progress or (lambda stage, done, total: None)
    ws = Workspace(workspace)
    t0 = time.perf_counter()
    base = load_update_base(ws.root)
    parent = base.key
    key = update_key(parent, data)
    timings: dict[str, float] = {"load_s": time.perf_counter() - t0}
    if ws.has_run(key):  # the same data appended to the same run: that run again
        with ws.lock():
            ws.publish(key, None)
        summary = json.loads((ws.run_dir(key) / "segments.json").read_text())
        upd = summary["parameters"]["update"]
        return UpdateResult(ws.root, key, parent, summary, upd["stats"], tuple(upd["refit"]), timings, cached=True)
    t1 = time.perf_counter()
    users = update_users(base, data, embedder, report)
    timings["profiles_and_placing_s"] = time.perf_counter() - t1
    with ws.lock():
        if ws.current_run() != parent:  # another run was published while this one was profiled: do not bury it
            raise WorkspaceError(f"{ws.root}: the current run changed to {ws.current_run()} during the update of {parent}",
                                 "run `segscope update` again: it appends to the current run")
        ws.clean_leftovers()
        with ws.new_run(key) as run_dir, ThreadPoolExecutor(1) as pool:
            # The arrays need no summary: they are written (mostly file output, outside the GIL) while it is made.
            arrays = pool.submit(_save_arrays, run_dir, base, users)
            t2 = time.perf_counter()
            p99 = run_p99(base)
            fit_summary = base.run.summary if base.fit_key == parent else json.loads((ws.run_dir(base.fit_key) / "segments.json").read_text())
            stats = _stats(base, users, p99, fit_summary)
            refit = refit_reasons(stats)
            report("describing segments", 0, 1)
            summary = _summary(base, users, data, key, stats, refit, fit_summary)
            report("describing segments", 1, 1)
            timings["summary_s"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            arrays.result()
            _save_summary(run_dir, summary)
            timings["write_s"] = time.perf_counter() - t3  # what writing added after the summary
            timings["total_s"] = time.perf_counter() - t0
            atomic_write_json(run_dir / "timings.json", timings)
        ws.publish(key, None)
    return UpdateResult(ws.root, key, parent, summary, stats, tuple(refit), timings)


def _summary(base: UpdateBase, users: UpdatedUsers, data: Dataset, key: str, stats: dict, refit: list[str],
             fit_summary: dict) -> dict:
    run = base.run
    flagged = users.outliers != ""
    kept = ((run.summary.get("data") or {}).get("outliers") or {}).get("kept_in_fit", True)
    fitted = np.ones(len(flagged), dtype=bool) if kept else ~flagged
    profiles = Profiles(users.user_ids.astype(str), users.text, users.features, users.fused, float(run.summary["parameters"].get("alpha", 0.5)),
                        users.item_ids, users.item_vectors, users.n_texts_embedded, 0, str(run.summary["parameters"].get("text_source", "embedder")),
                        base.recipe)  # fmt: skip
    changed = stats["moved"] + stats["new_users"]
    reuse_keywords = run.summary["data"]["kind"] == "behaviour" and changed < KEYWORDS_KEPT * len(users.user_ids)
    if reuse_keywords:  # counting every member's words again is most of the summary's cost; few members changed
        data = replace(users.data, items=None, events=users.data.events.iloc[:0])  # keywords are the only use of events
    else:  # ids as object arrays: pandas looks Arrow strings up 100x slower, and the keywords look every event's up
        data = replace(users.data, events=users.data.events.astype({"user_id": object, "item_id": object}))
    segments = summarise_segments(data, profiles, users.labels, users.top, _parents(run.summary), fitted=fitted, flagged=flagged)
    if reuse_keywords:
        before = {int(seg["id"]): tuple(seg.get("keywords") or ()) for seg in run.summary["segments"]}
        segments = [replace(seg, keywords=before.get(seg.segment_id, ())) for seg in segments]
    stats["keywords"] = "kept" if reuse_keywords else "recomputed"
    summary = json.loads(json.dumps(run.summary))
    merged = users.data
    summary["run_key"] = key
    summary["data"].update(source=merged.source, fingerprint=merged.fingerprint, n_users=len(users.user_ids), n_items=merged.n_items,
                           n_events=len(merged.events), returns=int((merged.events["event_type"] == "return").sum()),
                           skipped=dict(merged.skipped))  # fmt: skip
    summary["parameters"].update(updated_from=base.key, fitted_run=base.fit_key, features_end=users.features_end, features_end_fit=base.fit_end,
                                 update={"appended": data.source, "appended_fingerprint": data.fingerprint,
                                         "appended_events": len(data.events), "stats": stats, "refit": refit})  # fmt: skip
    summary["segments"] = [s.as_dict() for s in segments]
    summary["trait_tests"] = trait_tests(segments)
    stats["names_kept"] = _keep_names(run.summary, summary)
    summary["labels"] = {**(run.summary.get("labels") or {}), "distinctiveness_of": base.key}
    return summary


def _save_arrays(run_dir: Path, base: UpdateBase, users: UpdatedUsers) -> None:
    """The part of the run folder save_run writes that the summary does not decide, from the updated arrays."""
    (run_dir / "assignments.csv").write_text(assignments_csv(users.user_ids, users.labels, users.top, users.outliers))
    feats = users.features
    np.savez(
        run_dir / "profiles.npz",
        user_ids=users.user_ids.astype(str), text=users.text, fused=users.fused, labels=users.labels, top_labels=users.top,
        outliers=np.asarray(users.outliers, dtype=str),
        feature_names=np.asarray([] if feats is None else feats.names, dtype=str),
        feature_raw=np.zeros((len(users.user_ids), 0)) if feats is None else feats.raw,
        item_ids=users.item_ids.astype(str), item_vectors=users.item_vectors,
    )  # fmt: skip
    if users.candidates is not None:
        users.candidates.save(run_dir / NEIGHBOURS_FILE)
    shutil.copyfile(base.run.run_dir / "model.npz", run_dir / "model.npz")
    save_data(run_dir, users.data)


def _save_summary(run_dir: Path, summary: dict) -> None:
    """segments.json, then run.json (what marks the folder complete)."""
    (run_dir / "segments.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"key": summary["run_key"], "parameters": summary["parameters"]}, indent=2) + "\n")
