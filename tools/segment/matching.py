"""Which segment of one run is which of another's: Hungarian matching on centroids.

Two runs number their segments independently (0 is the largest), so the same
group of users can be segment 2 in one and segment 4 in the next. Both runs'
users are profiled in one space (the later run's), each segment's centroid is
its members' mean there, and ``scipy.optimize.linear_sum_assignment`` pairs the
segments so that the total centroid distance is the smallest. A pair is
**kept** (the later segment keeps the earlier one's id and name) when its
centroid moved less than ``KEEP_SHIFT`` (0.5) of the segment's spread (the
median distance of its members to their centroid): the segment barely changed
in what it is. Who is in it is the migration's business; the share of the
earlier segment's users (among those in both runs) found in the later one is
reported beside each pair as its overlap, as is the shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.core.linalg import row_norms

KEEP_SHIFT = 0.5


@dataclass(frozen=True)
class Match:
    """Segment ``after`` of the later run and the earlier segment it was paired with (None: no partner left)."""

    after: int
    before: int | None
    shift: float | None  # centroid distance / the later segment's spread
    overlap: float | None  # share of the earlier segment's users (in both runs) that are in the later one
    kept: bool

    def as_dict(self) -> dict:
        def r(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 4)

        return {"after": self.after, "before": self.before, "shift": r(self.shift), "overlap": r(self.overlap), "kept": self.kept}


def centroids(space: np.ndarray, labels: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Each segment's mean in ``space`` and its spread (median member distance to the mean)."""
    means, spread = {}, {}
    for seg in np.unique(labels):
        rows = space[labels == seg].astype(np.float64)
        mean = rows.mean(axis=0)
        means[int(seg)] = mean
        spread[int(seg)] = float(np.median(row_norms(rows - mean)))
    return means, spread


def match_segments(
    before: dict[int, np.ndarray],
    after: dict[int, np.ndarray],
    spread: dict[int, float],
    overlap: dict[tuple[int, int], float] | None = None,
) -> list[Match]:
    """One Match per later segment (module docstring); ``overlap[(b, a)]``: shared-user overlap when the runs share users."""
    from scipy.optimize import linear_sum_assignment

    b_ids, a_ids = sorted(before), sorted(after)
    if not b_ids or not a_ids:
        return [Match(a, None, None, None, False) for a in a_ids]
    cost = np.stack([row_norms(np.stack([after[a] - before[b] for b in b_ids])) for a in a_ids])
    rows, cols = linear_sum_assignment(cost)
    paired = {a_ids[r]: (b_ids[c], float(cost[r, c])) for r, c in zip(rows, cols)}
    out = []
    for a in a_ids:
        if a not in paired:
            out.append(Match(a, None, None, None, False))
            continue
        b, dist = paired[a]
        shift = dist / spread[a] if spread.get(a, 0) > 1e-12 else (0.0 if dist <= 1e-12 else float("inf"))
        share = None if overlap is None else overlap.get((b, a), 0.0)
        out.append(Match(a, b, shift, share, shift < KEEP_SHIFT))
    return out


def identity_matches(before: dict[int, np.ndarray], after: dict[int, np.ndarray], spread: dict[int, float],
                     overlap: dict[tuple[int, int], float] | None = None) -> list[Match]:
    """The same run on both sides: each segment is itself; ``shift`` still says how far its members' mean moved."""
    out = []
    for a in sorted(after):
        if a not in before:
            out.append(Match(a, None, None, None, False))
            continue
        dist = float(row_norms(after[a] - before[a])[0])
        shift = dist / spread[a] if spread.get(a, 0) > 1e-12 else 0.0
        out.append(Match(a, a, shift, None if overlap is None else overlap.get((a, a), 0.0), True))
    return out
