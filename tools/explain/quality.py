"""How good a run's labels are, and writing them into the workspace: contrast members,
label distinctiveness, and applying labels to segments.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tools.core.errors import WorkspaceError
from tools.core.linalg import normalize_rows
from tools.core.run_state import RunState
from tools.core.workspace import Workspace, atomic_write_json
from tools.embed.embedding import Embedder

if TYPE_CHECKING:
    from tools.explain.labels import SegmentLabel


def contrastive_members(run: RunState, segment_id: int, n: int = 3, min_segment_size: int = 0) -> list[str]:
    """Members of OTHER segments nearest this segment's centre in the fused space: what it is not (Clio-style contrast).

    Members of segments smaller than ``min_segment_size`` are never offered.
    """
    members = run.members(segment_id)  # a clear error for an unknown id; a parent's members are its sub-segments'

    if not members.any() or n <= 0:
        return []
    sizes = np.bincount(run.labels, minlength=int(run.labels.max()) + 1)
    eligible = np.flatnonzero(~members & (sizes[run.labels] >= min_segment_size))
    centre = run.fused[members].mean(axis=0)
    dist = ((run.fused[eligible] - centre) ** 2).sum(axis=1)
    return [str(run.user_ids[i]) for i in eligible[np.argsort(dist, kind="stable")[:n]]]


def _scored(labels: Sequence[SegmentLabel], run: RunState) -> list[SegmentLabel]:
    """The labels of segments users are in: in a two-level run users belong to leaves, and a parent's
    label, nearest to its own members, would only count against them."""
    held = set(np.unique(run.labels).tolist())
    return [lab for lab in labels if lab.segment_id in held]


def _assign(labels: Sequence[SegmentLabel], run: RunState, embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """(true segment, nearest scored label's segment) for every user with a text vector."""
    labels = _scored(labels, run)
    if not labels:
        raise WorkspaceError("there are no labels to score", "label the segments first")
    vectors = np.asarray(embedder.encode([f"{lab.name}. {lab.description}" for lab in labels]), dtype=np.float32)
    if vectors.shape[1] != run.text.shape[1]:
        raise WorkspaceError(
            f"the embedder gives {vectors.shape[1]}-d vectors but this run's users are {run.text.shape[1]}-d",
            "score labels with the embedder the run was segmented with",
        )
    users = run.text.astype(np.float32)
    ok = (users != 0).any(axis=1)  # a user with no text has no direction to compare
    sims = normalize_rows(users[ok]) @ normalize_rows(vectors).T
    ids = np.asarray([lab.segment_id for lab in labels])
    return run.labels[ok], ids[np.argmax(sims, axis=1)]


def label_distinctiveness(labels: Sequence[SegmentLabel], run: RunState, embedder: Embedder) -> float:
    """Label distinctiveness: the share of users whose nearest label (by "name. description" embedding) is their own segment's."""
    truth, nearest = _assign(labels, run, embedder)
    return float((truth == nearest).mean()) if len(truth) else 0.0


def distinctiveness_by_segment(labels: Sequence[SegmentLabel], run: RunState, embedder: Embedder) -> dict[int, float]:
    """Label distinctiveness per segment: the share of its members nearest its own label."""
    truth, nearest = _assign(labels, run, embedder)
    out = {}
    for lab in _scored(labels, run):
        members = truth == lab.segment_id
        out[lab.segment_id] = float((nearest[members] == lab.segment_id).mean()) if members.any() else 0.0
    return out


def apply_labels(workspace: str | Path, labels: Sequence[SegmentLabel], distinctiveness: float | None,
                 run_key: str | None = None) -> dict:
    """Write names and descriptions into the current run's segments.json and the workspace's, atomically.

    Adds ``label_source`` and ``label_template`` to every segment and a top-level
    ``labels`` key (distinctiveness, source). ``run_key``, when given, must be the
    current run's: labels made for another run are refused. Returns the new summary.
    """
    ws = Workspace(workspace)
    with ws.lock():
        run_dir = ws.require_run()
        if run_key is not None and run_dir.name != run_key:
            raise WorkspaceError(f"the labels were made for run {run_key}, but the current run is {run_dir.name}",
                                 "label the current run again")
        summary = json.loads((run_dir / "segments.json").read_text())
        by_id = {lab.segment_id: lab for lab in labels}
        ids = {s["id"] for s in summary["segments"]}
        if set(by_id) != ids:
            raise WorkspaceError(f"the labels cover segments {sorted(by_id)} but the run has {sorted(ids)}",
                                 "label the current run again")
        for seg in summary["segments"]:
            lab = by_id[seg["id"]]
            seg.update(name=lab.name, description=lab.description, label_source=lab.source, label_template=lab.template)
        sources = sorted({lab.source for lab in labels})
        templates = sorted({lab.template for lab in labels if lab.template})
        summary["labels"] = {
            "distinctiveness": None if distinctiveness is None else round(float(distinctiveness), 4),
            "source": sources[0] if len(sources) == 1 else "mixed",
            "templates": templates,
        }
        atomic_write_json(run_dir / "segments.json", summary)
        atomic_write_json(ws.segments_json, summary)
    return summary
