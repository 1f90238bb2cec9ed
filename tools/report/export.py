"""Hand a segment's members to the systems that act on them: a CSV, Parquet or JSON-lines file, written atomically.

Each row is one member: ``user_id``, ``segment_id``, ``segment_key`` (in a
two-level run also the top-level segment's), ``outlier`` when the run flagged any
(why the member was flagged, "" for everyone else), and the member's behaviour
features in their own units (days, orders, money), as the run saved them. With ``changed_since`` only the users who entered or left a segment
since an earlier run of the same workspace are written, with a ``change`` column
(``entered``, ``left`` or ``moved``) and their ``previous_segment_id``, for syncing.

The segment key is ``<run key>:<segment id>``. The run key is a hash of the data's
fingerprint and the run parameters (tools/pipeline.py ``run_key``), so re-running the
same data with the same parameters, in this or any workspace, gives the same keys;
new data or new parameters give new keys, because the segments may then differ.
Segment ids are compared literally across runs: matching segments between runs
whose clusterings differ is drift's job, not this module's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError, WorkspaceError
from tools.core.run_state import RunState
from tools.core.workspace import Workspace, atomic_write_bytes

FORMATS = ("csv", "parquet", "jsonl")
EXPORTS_DIR = "exports"
BASE_COLUMNS = ("user_id", "segment_id", "segment_key")
CHANGE_COLUMNS = ("previous_segment_id", "change")


@dataclass(frozen=True)
class ExportResult:
    """What was written: the file, its format, how many members, and which runs it compares."""

    path: Path
    format: str
    rows: int
    segment: str  # "all" or the segment id
    run_key: str
    since_run: str | None = None

    def as_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "rows": self.rows, "segment": self.segment,
                "run_key": self.run_key, "since_run": self.since_run}  # fmt: skip


def segment_key(run_key: str, segment_id: int) -> str:
    """The stable key of segment ``segment_id`` of run ``run_key`` (same data + parameters -> same key)."""
    return f"{run_key}:{segment_id}"


def parse_segment(run: RunState, segment: str) -> int | None:
    """``all`` -> None; otherwise the id of a segment of this run, or ParameterError naming the valid ids."""
    if str(segment).strip().lower() == "all":
        return None
    ids = sorted(int(s["id"]) for s in run.summary["segments"])
    try:
        seg = int(str(segment).strip())
    except ValueError:
        seg = None
    if seg is None or seg not in ids:
        raise ParameterError(
            f"unknown --segment {segment!r}: this run has segments {', '.join(map(str, ids))}",
            "give one of those ids, or --segment all",
        )
    return seg


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ParameterError(f"unknown --format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    return fmt


def run_keys(workspace: Workspace) -> list[str]:
    """Keys of the complete runs of ``workspace``, oldest first."""
    if not workspace.runs_dir.is_dir():
        return []
    runs = [p for p in workspace.runs_dir.iterdir() if not p.name.startswith(".") and (p / "run.json").exists()]
    return [p.name for p in sorted(runs, key=lambda p: (p.stat().st_mtime, p.name))]


def resolve_run(workspace: Workspace, ref: str) -> str:
    """The full key of run ``ref`` (a key or a unique prefix of one), or WorkspaceError listing the runs there are."""
    keys = run_keys(workspace)
    matches = [k for k in keys if k == ref] or [k for k in keys if ref and k.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(keys) if keys else "none"
    what = "matches several runs" if matches else "is not a run of this workspace"
    raise WorkspaceError(f"--changed-since {ref!r} {what} (available runs: {listed})", "pass one of those run keys")


def read_assignments(path: Path) -> pd.DataFrame:
    """user_id -> (segment_id, top_segment_id) from an assignments.csv (a flat run's top is its segment)."""
    try:
        frame = pd.read_csv(path, dtype={"user_id": str}, keep_default_na=False)
        leaf = frame["segment_id"].astype(int).to_numpy()
        top = frame["top_segment_id"].astype(int).to_numpy() if "top_segment_id" in frame.columns else leaf
        return pd.DataFrame({"segment_id": leaf, "top_segment_id": top}, index=frame["user_id"].to_numpy())
    except (OSError, ValueError, KeyError) as exc:
        raise WorkspaceError(f"{path}: cannot be read ({exc})", "run `segscope segment` again") from exc


def member_table(run: RunState, segment: int | None) -> pd.DataFrame:
    """Every member of ``segment`` (all users when None), with the segment key and their features in own units."""
    table = _current_table(run)
    # A top-level segment with sub-segments has its sub-segments' members.
    return table if segment is None else table[run.members(segment)].reset_index(drop=True)


def changes_table(run: RunState, previous: pd.DataFrame, since_key: str, segment: int | None) -> pd.DataFrame:
    """Users who entered or left ``segment`` (any segment when None) between run ``since_key`` and ``run``.

    Without a segment, a move is a change of leaf segment. With one, membership is the leaf or
    the top-level id (ids are unique across levels, so either matching means "in it").
    """
    table = _current_table(run)
    top = run.labels if run.top_labels is None else run.top_labels
    now = pd.DataFrame({"segment_id": table["segment_id"].to_numpy(), "top_segment_id": top.astype(int)},
                       index=table["user_id"].to_numpy())
    users = list(dict.fromkeys([*now.index.tolist(), *previous.index.tolist()]))
    before = previous["segment_id"].reindex(users)
    after = now["segment_id"].reindex(users)
    if segment is None:
        change = np.where(before.isna(), "entered", np.where(after.isna(), "left", np.where(before != after, "moved", "")))
    else:
        was = ((before == segment) | (previous["top_segment_id"].reindex(users) == segment)).to_numpy()
        is_ = ((after == segment) | (now["top_segment_id"].reindex(users) == segment)).to_numpy()
        change = np.where(is_ & ~was, "entered", np.where(was & ~is_, "left", ""))
    keep = change != ""
    out = pd.DataFrame({"user_id": np.asarray(users, dtype=object)[keep], "change": change[keep]})
    out["previous_segment_id"] = pd.array(before.to_numpy()[keep], dtype="Int64")
    out = out.merge(table, on="user_id", how="left")
    out["segment_id"] = out["segment_id"].astype("Int64")
    columns = [*BASE_COLUMNS, *CHANGE_COLUMNS, *[c for c in table.columns if c not in BASE_COLUMNS]]
    return out[columns]


def _current_table(run: RunState) -> pd.DataFrame:
    key = run.summary["run_key"]
    labels = run.labels.astype(int)
    table = pd.DataFrame({
        "user_id": run.user_ids.astype(str),
        "segment_id": labels,
        "segment_key": [segment_key(key, int(s)) for s in labels],
    })  # fmt: skip
    if run.top_labels is not None and (run.top_labels != labels).any():  # a two-level run: the parent too
        table["top_segment_id"] = run.top_labels.astype(int)
        table["top_segment_key"] = [segment_key(key, int(s)) for s in run.top_labels]
    if run.flagged.any():  # why a member was flagged as an outlier ("" for everyone else)
        table["outlier"] = run.outliers.astype(str)
    for j, name in enumerate(run.feature_names):
        column = name if name not in table.columns else f"feature_{name}"
        table[column] = run.feature_raw[:, j].astype(float)
    return table


def encode(table: pd.DataFrame, fmt: str) -> bytes:
    """The table as the bytes of a ``fmt`` file."""
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n").encode("utf-8")
    if fmt == "jsonl":
        if table.empty:
            return b""
        return (table.to_json(orient="records", lines=True, force_ascii=False, double_precision=15) or "").encode("utf-8")
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def default_path(workspace: Workspace, run_key: str, segment: int | None, fmt: str, since_key: str | None) -> Path:
    name = f"segment-{'all' if segment is None else segment}-{run_key[:12]}"
    if since_key:
        name += f"-since-{since_key[:12]}"
    return workspace.root / EXPORTS_DIR / f"{name}.{fmt}"


def check_out_path(out: Path) -> Path:
    """An --out the export can be written to: its folder must exist and it must not be a folder itself."""
    if out.is_dir():
        raise ParameterError(f"--out {out} is a folder", "give a file name, e.g. --out members.csv")
    if not out.parent.is_dir():
        raise ParameterError(f"--out {out}: the folder {out.parent} does not exist", "create it first or write elsewhere")
    return out


def export_members(
    run: RunState,
    segment: str = "all",
    fmt: str = "csv",
    out: Path | None = None,
    changed_since: str | None = None,
) -> ExportResult:
    """Write the members of ``segment`` (an id or ``all``) of ``run`` as ``fmt`` to ``out`` (default: WORKSPACE/exports/).

    Every input is checked before anything is written, and the file appears whole or not at all.
    """
    fmt = check_format(fmt)
    seg = parse_segment(run, segment)
    ws = Workspace(run.workspace)
    if out is not None:
        out = check_out_path(Path(out))
    since_key = None
    if changed_since is not None:
        since_key = resolve_run(ws, changed_since)
        previous = read_assignments(ws.run_dir(since_key) / "assignments.csv")
        table = changes_table(run, previous, since_key, seg)
    else:
        table = member_table(run, seg)
    run_key = run.summary["run_key"]
    path = out if out is not None else default_path(ws, run_key, seg, fmt, since_key)
    atomic_write_bytes(path, encode(table, fmt))
    return ExportResult(path, fmt, len(table), "all" if seg is None else str(seg), run_key, since_key)


def read_export(path: Path) -> pd.DataFrame:
    """An export read back, with user ids as strings (for tests and round trips)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        if path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_json(path, lines=True, dtype={"user_id": str})
    return pd.read_csv(path, dtype={"user_id": str}, keep_default_na=False, na_values=[""])
