"""Load a finished segmentation run back from a workspace, for describe, recommend, explain and report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.errors import WorkspaceError
from tools.core.workspace import Workspace


@dataclass(frozen=True)
class RunState:
    """Everything one run produced, as arrays aligned by user row.

    summary: the content of segments.json.
    user_ids / labels / text / fused: one row per user; ``labels`` is each user's
        leaf segment (the one assigned in assignments.csv), ``top_labels`` its
        top-level segment (the same as ``labels`` in a flat run).
    feature_names / feature_raw: behaviour features in their own units (may be empty).
    item_ids / item_vectors: the catalogue's text embeddings.
    outliers: per user, why they were flagged as an outlier (reason codes joined by "+",
        "" for everyone else; tools/data/outliers.py). Flagged users have segments like
        everyone, assigned after the fit unless the run kept them in it.
    """

    workspace: Path
    run_dir: Path
    summary: dict
    user_ids: np.ndarray
    labels: np.ndarray
    text: np.ndarray
    fused: np.ndarray
    feature_names: tuple[str, ...]
    feature_raw: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    top_labels: np.ndarray | None = None
    outliers: np.ndarray | None = None

    @property
    def flagged(self) -> np.ndarray:
        """Boolean mask of the users flagged as outliers (none for a run made before flagging)."""
        if self.outliers is None:
            return np.zeros(len(self.user_ids), dtype=bool)
        return self.outliers != ""

    @property
    def fitted(self) -> np.ndarray:
        """Boolean mask of the users the run was fitted on, whom its traits describe: everyone but the
        flagged outliers, unless the run kept them in the fit (--keep-outliers)."""
        block = (self.summary.get("data") or {}).get("outliers") or {}
        return np.ones(len(self.user_ids), dtype=bool) if block.get("kept_in_fit") else ~self.flagged

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids.tolist())}

    @cached_property
    def data(self) -> Dataset:
        """The normalised input data this run was computed from (saved with the run)."""
        events = pd.read_parquet(self.run_dir / "events.parquet")
        items_path = self.run_dir / "items.parquet"
        items = pd.read_parquet(items_path) if items_path.exists() else None
        users_path = self.run_dir / "users.parquet"
        users = pd.read_parquet(users_path) if users_path.exists() else None
        d = self.summary["data"]
        return Dataset(
            events=events, items=items, users=users, kind=d["kind"], source=d["source"], fingerprint=d["fingerprint"],
            entity=d.get("entity", "user"), entity_reason=d.get("entity_reason"), currency=d.get("currency"),
            skipped=d.get("skipped") or {}, spend=d.get("spend"), columns=d.get("columns") or {},
        )  # fmt: skip

    @property
    def k(self) -> int:
        return int(self.summary["k"])

    def segment(self, segment_id: int) -> dict:
        for seg in self.summary["segments"]:
            if seg["id"] == segment_id:
                return seg
        ids = sorted(int(s["id"]) for s in self.summary["segments"])
        listed = f"0..{ids[-1]}" if ids == list(range(len(ids))) else ", ".join(map(str, ids))
        raise WorkspaceError(
            f"there is no segment {segment_id} in this run (segments are {listed})",
            "list them with `segscope segment` output or segments.json",
        )

    def members(self, segment_id: int) -> np.ndarray:
        """Boolean mask of the users in segment ``segment_id``: a leaf's own, or all of a top-level segment's sub-segments."""
        seg = self.segment(segment_id)
        if seg.get("children"):
            tops = self.labels if self.top_labels is None else self.top_labels
            return tops == segment_id
        return self.labels == segment_id

    @property
    def leaf_ids(self) -> list[int]:
        """The segments users are assigned to (every segment of a flat run)."""
        return [int(s["id"]) for s in self.summary["segments"] if not s.get("children")]

    def row_of(self, user_id: str) -> int:
        row = self.user_index.get(str(user_id))
        if row is None:
            raise WorkspaceError(f"user {user_id!r} is not in this workspace's data", "check the id as written in your events file")
        return row


def load_run(workspace: str | Path, key: str | None = None) -> RunState:
    """The current run of ``workspace`` (or its run ``key``); WorkspaceError when there is none."""
    ws = Workspace(workspace)
    run_dir = ws.require_run() if key is None else ws.run_dir(key)
    if key is not None and not ws.has_run(key):
        raise WorkspaceError(f"{ws.root}: there is no complete run {key}", "list the runs in .segscope/runs")
    try:
        summary = json.loads((run_dir / "segments.json").read_text())
        with np.load(run_dir / "profiles.npz", allow_pickle=False) as p:
            arrays = {key: p[key] for key in p.files}
    except (OSError, ValueError, KeyError) as exc:
        raise WorkspaceError(f"{run_dir}: the run's files cannot be read ({exc})", "run `segscope segment` again") from exc
    return RunState(
        workspace=ws.root,
        run_dir=run_dir,
        summary=summary,
        user_ids=arrays["user_ids"].astype(object),
        labels=arrays["labels"],
        text=arrays["text"],
        fused=arrays["fused"],
        feature_names=tuple(arrays["feature_names"].tolist()),
        feature_raw=arrays["feature_raw"],
        item_ids=arrays["item_ids"].astype(object),
        item_vectors=arrays["item_vectors"],
        top_labels=arrays.get("top_labels"),
        outliers=arrays["outliers"].astype(object) if "outliers" in arrays else None,
    )
