"""How segments changed: who moved where, how sizes and traits shifted, and who fits no segment (``segscope drift``).

Three comparisons, each between a *before* and an *after* placement of users:

- ``--data LATER``: before is the run as fitted, after is LATER assigned with the
  run's model (tools/segment/assign.py; ``append`` profiles LATER's users over
  their whole history). Same model, so a segment is itself on both sides.
- ``--window 90d``: the run's own data cut at its last 90 days; before is the data
  up to the cut assigned with the run's model (recency measured to the cut), after
  is the run itself (everything up to now).
- ``--since RUN``: before is an earlier run of the workspace, after the current
  one. Their segment ids are independent, so they are paired by Hungarian
  matching on centroids (tools/segment/matching.py), both runs' users profiled
  in the current run's space; a kept pair shows the earlier id and name.

The report:

- **migration**: users in both, by before segment (rows) and after segment
  (columns); each row sums to that segment's users present on both sides, the
  whole matrix to the users present on both; a few named examples of each move
  (the movers most typical of where they went);
- **sizes** before and after, as counts and shares;
- **trait shifts** of each segment present on both sides: the change in its
  members' mean of each behaviour feature, with a 95% confidence interval by the
  normal approximation to the difference of two means (Welch: se = √(s₁²/n₁ +
  s₂²/n₂), change ± 1.96·se); the largest changes whose interval excludes 0;
- **unusual users**: farther from their segment's centroid than 99% of the run's
  own users are (and 95%, reported beside). About 1% by chance; when at least
  ``MIN_CANDIDATE`` users and twice the chance share are, they are a candidate
  new segment, described by their traits against everyone after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.errors import DataError, ParameterError
from tools.core.linalg import row_norms
from tools.segment.features import BehaviourFeatures
from tools.segment.matching import Match, centroids, identity_matches, match_segments

N_EXAMPLES = 3
N_SHIFTS = 5
MIN_CANDIDATE = 20
Z95 = 1.959964
DRIFT_VERSION = 1  # drift.json's layout: readers skip a file of another version
CI_METHOD = "95% normal approximation to the difference of means (Welch): change ± 1.96·√(s₁²/n₁ + s₂²/n₂)"


@dataclass(frozen=True)
class Side:
    """Users placed in segments at one moment: ids, leaf segments, behaviour features and the assignment space."""

    label: str
    user_ids: np.ndarray  # str
    leaf: np.ndarray  # int64
    features: BehaviourFeatures | None
    space: np.ndarray  # profiles in the current run's space, before smoothing (centroids, spreads, typical movers)
    names: dict[int, str]
    percentile: np.ndarray | None = None  # the after side: distance percentile among the run's own users


@dataclass(frozen=True)
class DriftReport:
    """What changed between two placements of users (module docstring); ``as_dict`` is what drift.json holds."""

    mode: str
    before: str
    after: str
    run_key: str
    users: dict[str, int]
    segments: tuple[dict, ...]
    migration: dict
    matching: dict
    trait_shifts: tuple[dict, ...]
    unusual: dict
    previous_run_key: str | None = None
    notes: tuple[str, ...] = field(default=())
    moves: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # user_id, before, after (users in both)

    def movers(self, from_id: int | None, to_id: int | None) -> list[str]:
        """Users in both who were in ``from_id`` and are in ``to_id`` (either None: any), most typical of where they went first."""
        if self.moves is None:
            return []
        rows = self.moves
        if from_id is not None:
            rows = rows[rows["before"] == from_id]
        if to_id is not None:
            rows = rows[rows["after"] == to_id]
        if from_id is None or to_id is None:
            rows = rows[~rows["same"]]  # "who left segment 3": those who moved, not those who stayed
        return rows["user_id"].tolist()

    def as_dict(self) -> dict:
        return {"version": DRIFT_VERSION, "mode": self.mode, "before": self.before, "after": self.after, "run_key": self.run_key,
                "previous_run_key": self.previous_run_key, "users": self.users, "segments": list(self.segments),
                "migration": self.migration, "matching": self.matching, "trait_shifts": list(self.trait_shifts),
                "unusual": self.unusual, "notes": list(self.notes), "method": {"trait_ci": CI_METHOD}}  # fmt: skip

    def moved(self, from_id: int, to_id: int) -> int:
        """Users who were in before segment ``from_id`` and are in after segment ``to_id``."""
        m = self.migration
        if from_id not in m["rows"] or to_id not in m["columns"]:
            return 0
        return int(m["counts"][m["rows"].index(from_id)][m["columns"].index(to_id)])


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def parse_window(text: str) -> float:
    """'90d', '12w', '3m' (30 days each), '1y' -> days; ParameterError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dwmy])\s*", str(text).lower())
    if not found or float(found.group(1)) <= 0:
        raise ParameterError(f"--window {text!r} is not a time window", "use e.g. --window 90d, 12w, 3m or 1y")
    return float(found.group(1)) * {"d": 1, "w": 7, "m": 30, "y": 365}[found.group(2)]


def split_at_window(data: Dataset, days: float) -> tuple[Dataset, float]:
    """``data``'s events before its last ``days`` (and the cut, seconds since the epoch)."""
    ts = data.events["timestamp"].to_numpy(dtype=np.float64)
    if not np.isfinite(ts).any():
        raise DataError(f"{data.source}: the events have no timestamps, so there is no time window to cut",
                        "use --data LATER or --since RUN instead")
    cut = float(np.nanmax(ts)) - days * 86_400.0
    before = data.events[np.isfinite(ts) & (ts < cut)].reset_index(drop=True)
    if before["user_id"].nunique() < 3:
        raise ParameterError(f"fewer than 3 users were active before the last {days:g} days", "use a shorter --window")
    return replace(data, events=before, fingerprint=f"{data.fingerprint}:before:{int(cut)}"), cut


def _migration(before: Side, after: Side, same: dict[tuple[int, int], bool]) -> tuple[dict, np.ndarray, pd.DataFrame]:
    rows = pd.Index(before.user_ids).get_indexer(after.user_ids)
    both = rows >= 0
    b_lab, a_lab = before.leaf[rows[both]], after.leaf[both]
    row_ids, col_ids = sorted(int(s) for s in np.unique(before.leaf)), sorted(int(s) for s in np.unique(after.leaf))
    counts = pd.crosstab(pd.Categorical(b_lab, row_ids), pd.Categorical(a_lab, col_ids), dropna=False).to_numpy()
    # Examples: the movers nearest to the centre of where they went (the most typical of the move).
    a_means, _ = centroids(after.space, after.leaf)
    where = np.flatnonzero(both)
    dist = row_norms(after.space[where].astype(np.float64) - np.stack([a_means[int(s)] for s in a_lab])) if len(where) else np.zeros(0)
    examples = {}
    for b in row_ids:
        for a in col_ids:
            if same.get((b, a)):
                continue
            cell = np.flatnonzero((b_lab == b) & (a_lab == a))
            if len(cell):
                pick = cell[np.argsort(dist[cell], kind="stable")[:N_EXAMPLES]]
                examples[f"{b}->{a}"] = after.user_ids[where[pick]].astype(str).tolist()
    moved = int(sum(counts[i, j] for i, b in enumerate(row_ids) for j, a in enumerate(col_ids) if not same.get((b, a))))
    out = {"rows": row_ids, "columns": col_ids, "counts": counts.astype(int).tolist(),
           "row_totals": counts.sum(axis=1).astype(int).tolist(), "moved": moved, "examples": examples}  # fmt: skip
    moves = pd.DataFrame({"user_id": after.user_ids[where].astype(str), "before": b_lab.astype(int), "after": a_lab.astype(int),
                          "same": [bool(same.get((int(b), int(a)))) for b, a in zip(b_lab, a_lab)], "distance": dist})
    return out, both, moves.sort_values("distance", kind="stable").reset_index(drop=True)


def _overlap(before: Side, after: Side) -> dict[tuple[int, int], float]:
    rows = pd.Index(before.user_ids).get_indexer(after.user_ids)
    both = rows >= 0
    if not both.any():
        return {}
    table = pd.crosstab(before.leaf[rows[both]], after.leaf[both])
    shares = table.div(table.sum(axis=1), axis=0)
    return {(int(b), int(a)): float(shares.loc[b, a]) for b in shares.index for a in shares.columns}


def _welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return None
    change = float(y.mean() - x.mean())
    se = float(np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)))
    return change, change - Z95 * se, change + Z95 * se


def _trait_shifts(before: Side, after: Side, pairs: list[tuple[int, int]]) -> list[dict]:
    if before.features is None or after.features is None:
        return []
    b_cols = {n: j for j, n in enumerate(before.features.names)}
    specs = {s.name: s for s in after.features.specs}
    out = []
    for b, a in pairs:
        xb, xa = before.features.raw[before.leaf == b], after.features.raw[after.leaf == a]
        found = []
        for j, name in enumerate(after.features.names):
            if name not in b_cols:
                continue
            got = _welch(xb[:, b_cols[name]], xa[:, j])
            if got is None or (got[1] <= 0 <= got[2]):
                continue  # the interval holds 0: no shift we can vouch for
            pooled = np.nanstd(np.concatenate([xb[:, b_cols[name]], xa[:, j]]))
            label, unit = specs[name].label, specs[name].unit
            found.append((abs(got[0]) / pooled if pooled > 0 else 0.0, {
                "segment": a, "before_segment": b, "feature": name, "label": label, "unit": unit,
                "before": _r(float(np.nanmean(xb[:, b_cols[name]]))), "after": _r(float(np.nanmean(xa[:, j]))),
                "change": _r(got[0]), "ci_low": _r(got[1]), "ci_high": _r(got[2]),
                "n_before": int(np.isfinite(xb[:, b_cols[name]]).sum()), "n_after": int(np.isfinite(xa[:, j]).sum())}))
        found.sort(key=lambda f: -f[0])
        out += [dict(f[1], effect=_r(f[0])) for f in found[:N_SHIFTS]]
    return out


def _unusual(after: Side, pool: np.ndarray, thresholds: tuple[float, float]) -> dict:
    """Users of ``pool`` (a mask of the after side) beyond the 99th percentile of the run's own distances."""
    pct = np.zeros(len(after.user_ids)) if after.percentile is None else after.percentile
    beyond = pool & (pct > 0.99)
    n, share = int(beyond.sum()), float(beyond.sum() / max(pool.sum(), 1))
    out = {"p95_distance": _r(thresholds[0]), "p99_distance": _r(thresholds[1]), "pool": int(pool.sum()),
           "beyond_p95": int((pool & (pct > 0.95)).sum()), "beyond_p99": n, "share_beyond_p99": _r(share),
           "expected_share": 0.01, "candidate": bool(n >= MIN_CANDIDATE and share >= 0.02), "traits": [],
           "nearest_segments": {}, "examples": []}  # fmt: skip
    if not n:
        return out
    segs, counts = np.unique(after.leaf[beyond], return_counts=True)
    out["nearest_segments"] = {int(s): int(c) for s, c in zip(segs, counts)}
    order = np.argsort(-pct[beyond], kind="stable")[:N_EXAMPLES]
    out["examples"] = after.user_ids[beyond][order].astype(str).tolist()
    if after.features is not None:
        raw = after.features.raw
        traits = []
        for j, (name, spec) in enumerate(zip(after.features.names, after.features.specs)):
            col = raw[:, j]
            mine, everyone = float(np.nanmean(col[beyond])) if np.isfinite(col[beyond]).any() else np.nan, float(np.nanmean(col))
            std = float(np.nanstd(col))
            if not np.isfinite(mine) or std <= 0:
                continue
            label, unit = spec.label, spec.unit
            traits.append({"feature": name, "label": label, "unit": unit, "segment_value": _r(mine),
                           "population_value": _r(everyone), "lift": _r(mine / everyone) if everyone else None,
                           "effect": _r((mine - everyone) / std)})  # fmt: skip
        out["traits"] = sorted(traits, key=lambda t: -abs(t["effect"] or 0))[:N_SHIFTS]
    return out


def compare(before: Side, after: Side, mode: str, run_key: str, thresholds: tuple[float, float],
            previous_run_key: str | None = None, notes: tuple[str, ...] = ()) -> DriftReport:
    """The drift between ``before`` and ``after`` (module docstring); ids are matched unless it is the same run."""
    b_means, _ = centroids(before.space, before.leaf)
    a_means, a_spread = centroids(after.space, after.leaf)
    overlap = _overlap(before, after)
    if mode == "since":
        matches = match_segments(b_means, a_means, a_spread, overlap or None)
        method = "Hungarian matching on centroids in the current run's space (scipy linear_sum_assignment)"
    else:
        matches = identity_matches(b_means, a_means, a_spread, overlap or None)
        method = "same run on both sides: every segment is itself"
    by_after: dict[int, Match] = {m.after: m for m in matches}
    same = {(m.before, m.after): True for m in matches if m.kept and m.before is not None}
    migration, both, moves = _migration(before, after, same)  # type: ignore[arg-type]
    b_sizes = pd.Series(before.leaf).value_counts().to_dict()
    a_sizes = pd.Series(after.leaf).value_counts().to_dict()
    segments = []
    for a in sorted(a_means):
        m = by_after[a]
        kept = m.kept and m.before is not None
        segments.append({
            "id": m.before if kept else a, "current_id": a, "previous_id": m.before, "kept": kept,
            "name": before.names.get(m.before, after.names.get(a, "")) if kept else after.names.get(a, ""),  # type: ignore[arg-type]
            "before": int(b_sizes.get(m.before, 0)) if kept else 0, "after": int(a_sizes.get(a, 0)),
            "before_share": _r(b_sizes.get(m.before, 0) / len(before.leaf)) if kept else 0.0,
            "after_share": _r(a_sizes.get(a, 0) / len(after.leaf)), "centroid_shift": _r(m.shift), "overlap": _r(m.overlap),
        })  # fmt: skip
    gone = sorted({int(b) for b in b_means} - {m.before for m in matches if m.kept})
    segments += [{"id": b, "current_id": None, "previous_id": b, "kept": False, "name": before.names.get(b, ""),
                  "before": int(b_sizes.get(b, 0)), "after": 0, "before_share": _r(b_sizes.get(b, 0) / len(before.leaf)),
                  "after_share": 0.0, "centroid_shift": None, "overlap": None} for b in gone]  # fmt: skip
    # Labels as people read them: before segments by their own id and name, after ones by the id they keep ("3*": new).
    shown = {s["current_id"]: (str(s["id"]) if s["kept"] else f"{s['current_id']}*", s["name"]) for s in segments if s["current_id"] is not None}
    migration["row_labels"] = [f"{b} {before.names.get(b, '')}".strip() for b in migration["rows"]]
    migration["column_labels"] = [f"{shown[a][0]} {shown[a][1]}".strip() for a in migration["columns"]]
    migration["row_sizes"] = [int(b_sizes.get(b, 0)) for b in migration["rows"]]  # all users before, not only those in both
    migration["column_sizes"] = [int(a_sizes.get(a, 0)) for a in migration["columns"]]
    pairs = [(int(m.before), m.after) for m in matches if m.kept and m.before is not None]
    new = ~pd.Index(after.user_ids).isin(pd.Index(before.user_ids))
    pool = np.ones(len(after.user_ids), dtype=bool) if mode == "data" else new
    kept = [m for m in matches if m.kept]
    matching = {"method": method, "pairs": [m.as_dict() for m in matches], "kept": len(kept), "segments": len(matches),
                "mean_shift": _r(float(np.mean([m.shift for m in kept]))) if kept else None}  # fmt: skip
    users = {"before": len(before.user_ids), "after": len(after.user_ids), "in_both": int(both.sum()),
             "left": int(len(before.user_ids) - both.sum()), "new": int(new.sum()), "moved": migration["moved"]}  # fmt: skip
    return DriftReport(mode, before.label, after.label, run_key, users, tuple(segments), migration, matching,
                       tuple(_trait_shifts(before, after, pairs)), _unusual(after, pool, thresholds), previous_run_key, notes,
                       moves)
