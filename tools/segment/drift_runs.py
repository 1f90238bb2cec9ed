"""The three drift comparisons of a workspace (tools/segment/drift.py), and where their result is kept.

Each builds a before and an after :class:`~tools.segment.drift.Side` from the
current run (loaded with its model and recipe, tools/segment/assign.py) and
compares them. The result is written to the current run's folder as
``drift.json`` (atomically), where the report and the assistant find it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.errors import WorkspaceError
from tools.core.run_state import RunState
from tools.core.workspace import Workspace, atomic_write_json
from tools.embed.embedding import Embedder
from tools.segment.assign import (
    Assignment,
    FittedRun,
    assign_dataset,
    fit_features_of,
    profile_like_run,
)
from tools.segment.drift import (
    DRIFT_VERSION,
    DriftReport,
    Side,
    compare,
    parse_window,
    split_at_window,
)

ProgressFn = Callable[[str, int, int], None]
DRIFT_FILE = "drift.json"


def names_of(summary: dict) -> dict[int, str]:
    return {int(s["id"]): str(s.get("name") or f"segment {s['id']}") for s in summary["segments"]}


def thresholds(fitted: FittedRun) -> tuple[float, float]:
    d = fitted.fit_distances
    return (float(np.quantile(d, 0.95)), float(np.quantile(d, 0.99))) if len(d) else (float("nan"), float("nan"))


def run_side(fitted: FittedRun, label: str) -> Side:
    """The run itself: its users where it put them."""
    own = fitted.own
    return Side(label, fitted.run.user_ids.astype(str), fitted.run.labels.astype(np.int64), fitted.fit_features,
                fitted.run.fused, names_of(fitted.run.summary), fitted.percentile(own.own_distance))


def assigned_side(fitted: FittedRun, result: Assignment, label: str) -> Side:
    return Side(label, result.user_ids.astype(str), result.placement.leaf, result.profiles.features, result.profiles.fused,
                names_of(fitted.run.summary), result.percentile)


def drift_data(fitted: FittedRun, later: Dataset, embedder: Embedder | None = None, append: bool = False,
               progress: ProgressFn | None = None) -> DriftReport:
    """The run as fitted against ``later`` assigned with its model."""
    result = assign_dataset(fitted, later, embedder, progress, append=append)
    before = run_side(fitted, f"run {fitted.key[:12]} (as fitted)")
    after = assigned_side(fitted, result, later.source + (" (appended)" if append else ""))
    return compare(before, after, "data", fitted.key, thresholds(fitted), notes=result.warnings)


def drift_window(fitted: FittedRun, window: str, embedder: Embedder | None = None,
                 progress: ProgressFn | None = None) -> DriftReport:
    """The run's data up to its last ``window`` against all of it (the run itself)."""
    days = parse_window(window)
    earlier, cut = split_at_window(fitted.run.data, days)
    result = assign_dataset(fitted, earlier, embedder, progress)
    when = pd.Timestamp(cut, unit="s").strftime("%Y-%m-%d")
    before = assigned_side(fitted, result, f"before {when} (the data up to the last {days:g} days)")
    after = run_side(fitted, f"now (run {fitted.key[:12]})")
    return compare(before, after, "window", fitted.key, thresholds(fitted), notes=result.warnings)


def run_keys(ws: Workspace) -> list[str]:
    """Complete runs of the workspace, oldest first (by when run.json, written once as a run completes, appeared)."""
    if not ws.runs_dir.is_dir():
        return []
    runs = [p for p in ws.runs_dir.iterdir() if not p.name.startswith(".") and (p / "run.json").exists()]
    return [p.name for p in sorted(runs, key=lambda p: ((p / "run.json").stat().st_mtime, p.name))]


def resolve_previous(ws: Workspace, ref: str, current: str) -> str:
    """A run key, a unique prefix of one, or ``previous`` (the latest run before the current one)."""
    keys = [k for k in run_keys(ws) if k != current]
    if ref == "previous":
        if not keys:
            raise WorkspaceError(f"{ws.root}: the workspace has only one run", "segment other data or parameters first, or use --data / --window")
        return keys[-1]
    matches = [k for k in keys if k == ref] or [k for k in keys if ref and k.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    what = "matches several runs" if matches else "is not an earlier run of this workspace"
    raise WorkspaceError(f"--since {ref!r} {what} (runs: {', '.join(keys) or 'none'})", "pass one of those run keys, or 'previous'")


def drift_since(fitted: FittedRun, previous: str, embedder: Embedder | None = None,
                progress: ProgressFn | None = None) -> DriftReport:
    """An earlier run of the workspace against the current one, segments paired by Hungarian matching."""
    from tools.core.run_state import load_run

    ws = Workspace(fitted.run.workspace)
    key = resolve_previous(ws, previous, fitted.key)
    earlier: RunState = load_run(ws.root, key)
    profiles, notes = profile_like_run(fitted, earlier.data, embedder, progress)
    rows = pd.Index(profiles.user_ids.astype(str)).get_indexer(earlier.user_ids.astype(str))
    space = profiles.fused[rows]
    before = Side(f"run {key[:12]}", earlier.user_ids.astype(str), earlier.labels.astype(np.int64), fit_features_of(earlier),
                  space, names_of(earlier.summary))
    after = run_side(fitted, f"run {fitted.key[:12]} (current)")
    return compare(before, after, "since", fitted.key, thresholds(fitted), previous_run_key=key, notes=tuple(notes))


def write_drift(fitted: FittedRun, report: DriftReport) -> Path:
    """drift.json in the current run's folder (the latest drift of that run), whole or not at all."""
    path = fitted.run.run_dir / DRIFT_FILE
    atomic_write_json(path, report.as_dict())
    return path


def read_drift(run_dir: Path) -> dict | None:
    """The run's latest drift, or None when drift has not been run (or its file cannot be read, or is of another layout)."""
    path = Path(run_dir) / DRIFT_FILE
    try:
        found = json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("version") == DRIFT_VERSION else None
