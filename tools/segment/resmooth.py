"""Smoothing a changed profile again without searching the whole reference, with the search's exact result.

Smoothing (tools/segment/clustering.py) averages each profile with its ``m`` nearest rows of the
model's reference sample: a search of every reference row, most of an update's cost when the data's
end moves and everyone's recency changes with it (tools/segment/update.py). That change is small and
touches one or two columns, so the search can usually be skipped, provably:

- The search keeps ``CANDIDATES`` nearest rows per profile, not only ``m + 1`` (no dearer: the cost is
  the distances to every row), and the run saves them with ``bound``, a distance no other reference row
  is nearer than (the farthest candidate's).
- When a profile moves from ``x`` to ``x' = x + δ``, every other row ``r`` has
  ``|x' − r|² = |x − r|² + 2 δ·(x − r) + |δ|² ≥ bound² + 2 δ·x + |δ|² − 2 max_r δ·r``. With ``δ`` non-zero
  in a few columns ``E`` only, ``max_r δ·r`` is a product with the reference's ``E`` columns: cheap. That
  is the new ``bound``.
- The candidates' own distances follow from their saved ones by the same identity, exactly (no search, no
  full-width product: only the moved columns are read). If the ``m`` nearest of them are nearer than
  the next candidate and than the new bound, by more than ``TOLERANCE`` (far above either computation's
  rounding), they are the ``m`` nearest of the whole reference: what the search would find, so the
  average is the search's, bit for bit (both sum the kept rows in the order of their row numbers).
- Every other profile (a wide change, a tie, a profile that is itself a reference row, no saved
  candidates) is searched as before, and its candidates replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CANDIDATES = 48  # reference rows kept per profile (measured on the 100k sample: 94% skip the search after 14 days)
SELF_DISTANCE = 1e-9  # a profile this near a reference row is that row (smoothing then drops it)
TOLERANCE = 1e-6  # margin a re-smoothed profile's neighbours must clear (distances are ~0.1-1; rounding ~1e-14)
MAX_MOVED_COLUMNS = 8  # a change in more columns is searched (its bound would cost what the search does)
_CHUNK = 512
NEIGHBOURS_FILE = "neighbours.npz"  # a run folder's saved candidates, rows as in profiles.npz


@dataclass(frozen=True)
class Candidates:
    """Per profile: reference rows near it, and a distance no other reference row is nearer than.

    ``ids`` (n, C) int32, -1 rows where nothing is known; ``dist`` (n, C) float64, the profile's distance to each;
    ``bound`` (n,) float64, -inf where nothing is known, inf when the candidates are the whole reference."""

    ids: np.ndarray
    dist: np.ndarray
    bound: np.ndarray

    @classmethod
    def unknown(cls, n: int, width: int) -> Candidates:
        return cls(np.full((n, width), -1, dtype=np.int32), np.full((n, width), np.nan), np.full(n, -np.inf))

    @property
    def known(self) -> np.ndarray:
        """Rows with a full list of candidates and a bound (padded rows hold -1s: they are searched)."""
        if not self.ids.shape[1]:
            return np.zeros(len(self.bound), dtype=bool)
        return (self.ids >= 0).all(axis=1) & np.isfinite(self.dist).all(axis=1) & ~np.isneginf(self.bound)

    def rows(self, rows: np.ndarray) -> Candidates:
        return Candidates(self.ids[rows], self.dist[rows], self.bound[rows])

    def put(self, rows: np.ndarray, other: Candidates) -> Candidates:
        """These candidates with rows ``rows`` (a mask or indices) replaced by ``other``'s; the narrower is padded
        with -1 (never cut: the bound holds only for rows outside the full list)."""
        width = max(self.ids.shape[1], other.ids.shape[1])
        ids = np.full((len(self.ids), width), -1, dtype=np.int32)
        dist = np.full((len(self.ids), width), np.nan)
        ids[:, : self.ids.shape[1]], dist[:, : self.ids.shape[1]] = self.ids, self.dist
        ids[rows], dist[rows] = -1, np.nan
        ids[rows, : other.ids.shape[1]], dist[rows, : other.ids.shape[1]] = other.ids, other.dist
        bound = self.bound.copy()
        bound[rows] = other.bound
        return Candidates(ids, dist, bound)

    def save(self, path: Path) -> None:
        np.savez(path, ids=self.ids, dist=self.dist, bound=self.bound)

    @classmethod
    def load(cls, path: Path, n: int) -> Candidates | None:
        """The run's saved candidates, or None when it has none (an older run) or they are not its ``n`` users'."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                out = cls(saved["ids"].astype(np.int32), saved["dist"].astype(np.float64), saved["bound"].astype(np.float64))
        except (OSError, ValueError, KeyError):
            return None  # unreadable: every profile is searched, as for a run saved without them
        return out if len(out.bound) == n and out.ids.shape == out.dist.shape and out.ids.shape[0] == n else None


def average(chunk: np.ndarray, ref: np.ndarray, keep: np.ndarray, m: int) -> np.ndarray:
    """Each row of ``chunk`` averaged with the reference rows ``keep`` names, summed in row-number order.

    Added one neighbour at a time: what ``ref[keep].sum(axis=1)`` does (a reduction across rows adds them in
    order), bit for bit, without gathering every neighbour's row at once (at 100k users, 1.6 GB of copies)."""
    order = np.sort(keep, axis=1)
    total = ref[order[:, 0]].copy()
    for j in range(1, order.shape[1]):
        total += ref[order[:, j]]
    return (chunk + total) / (m + 1)


def kept(dist: np.ndarray, idx: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` neighbours smoothing averages, from a search's nearest-first ``dist``/``idx``: a profile that is
    itself a reference row drops that hit, any other drops its (m+1)-th."""
    is_self = dist[:, 0] <= SELF_DISTANCE
    return np.where(is_self[:, None], idx[:, 1 : m + 1], idx[:, :m])


def resmooth(x: np.ndarray, previous: np.ndarray, candidates: Candidates, ref: np.ndarray, m: int,
             search: Callable[[np.ndarray], tuple[np.ndarray, Candidates | None]]) -> tuple[np.ndarray, Candidates, int]:
    """``x`` smoothed as ``search(x)`` smooths it (module docstring), searching only the rows it must.

    ``previous`` are the same profiles as ``candidates`` were found for; ``search`` smooths rows and returns their
    new candidates. Returns the smoothed rows, every row's candidates, and how many rows were searched."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    out = np.empty_like(x)
    if candidates.ids.shape[1] <= m:  # too few to hold the m + 1 nearest: everyone is searched
        candidates = Candidates.unknown(n, 0)
    new = Candidates(candidates.ids.copy(), np.full(candidates.dist.shape, np.nan), np.full(n, -np.inf))  # until proved
    done = np.zeros(n, dtype=bool)
    known = candidates.known
    for start in range(0, n, _CHUNK):
        part = slice(start, min(n, start + _CHUNK))
        xs = x[part].astype(np.float64)
        old = previous[part].astype(np.float64)
        moved = xs != old
        rows = np.flatnonzero(known[part] & (moved.sum(axis=1) <= MAX_MOVED_COLUMNS))
        if not len(rows):
            continue
        ids, dist, bound = candidates.ids[part][rows], candidates.dist[part][rows], candidates.bound[part][rows]
        cols = np.flatnonzero(moved[rows].any(axis=0))  # every row's change is within these columns
        d_e = (xs[rows] - old[rows])[:, cols]
        own = 2.0 * (d_e * old[rows][:, cols]).sum(axis=1) + (d_e**2).sum(axis=1)  # |x'-r|² - |x-r|² = own - 2 δ·r
        ref_e = ref[:, cols].astype(np.float64)
        near = np.sqrt(np.clip(dist**2 + own[:, None] - 2.0 * np.einsum("ij,ikj->ik", d_e, ref_e[ids]), 0.0, None))
        # The new bound (inf stays inf: when the candidates are the whole reference there is no other row).
        if len(cols) == 1:  # max over the reference of δ·r, for one column: δ times its largest or smallest value
            d1 = d_e[:, 0]
            floor = np.sqrt(np.clip(bound**2 + own - 2.0 * np.where(d1 > 0, d1 * ref_e.max(), d1 * ref_e.min()), 0.0, None))
        elif len(cols):
            floor = np.sqrt(np.clip(bound**2 + own - 2.0 * (d_e @ ref_e.T).max(axis=1), 0.0, None))
        else:
            floor = bound
        order = np.argsort(near, axis=1, kind="stable")
        sorted_near = np.take_along_axis(near, order, axis=1)
        last = sorted_near[:, m - 1]
        after = np.minimum(sorted_near[:, m], floor)
        good = (sorted_near[:, 0] > 100 * TOLERANCE) & (after - last > TOLERANCE * (1.0 + last))
        if not good.any():
            continue
        keep = np.take_along_axis(ids[good], order[good, :m], axis=1)
        at = start + rows[good]
        out[at] = average(x[at], ref, keep, m)
        new.dist[at], new.bound[at] = near[good], floor[good]
        done[at] = True
    rest = np.flatnonzero(~done)
    if len(rest):
        smoothed, found = search(x[rest])
        out[rest] = smoothed
        new = new if found is None else new.put(rest, found)
    return out, new, len(rest)
