"""Re-smoothing a changed profile from its saved candidates gives the search's result, bit for bit."""

import numpy as np

from tools.segment.clustering import SegmentModel
from tools.segment.resmooth import Candidates


def _model(seed: int = 0) -> tuple[SegmentModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 24))
    x = (centres[rng.integers(0, 6, 4000)] + 0.4 * rng.normal(size=(4000, 24))).astype(np.float32)
    model = SegmentModel(smooth_neighbours=10)
    model.reference_ = x[rng.choice(len(x), 1500, replace=False)]
    return model, x


def _end_moved(x: np.ndarray, column: int, seed: int) -> np.ndarray:
    """Everyone a little less recent: one column moved by a small, user-dependent amount (as update.py does)."""
    moved = x.copy()
    moved[:, column] += np.random.default_rng(seed).uniform(0.0, 0.05, len(x)).astype(np.float32)
    return moved


def test_resmoothing_equals_the_search_and_skips_most_of_it():
    model, x = _model()
    _, found = model._search(x, is_fit=False, keep=True)
    later = _end_moved(x, 3, 1)
    got, candidates, searched = model.resmoothed(later, x, found)
    want = model.smoothed(later)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert searched < 0.5 * len(x)  # most rows proved without a search
    # A second move, from the candidates the first one left: still the search's result.
    again = _end_moved(later, 3, 2)
    got2, _, _ = model.resmoothed(again, later, candidates)
    assert np.array_equal(got2, model.smoothed(again))


def test_wide_changes_and_unknown_rows_are_searched():
    model, x = _model(1)
    _, found = model._search(x, is_fit=False, keep=True)
    changed = x + np.float32(0.01)  # every column moved: beyond what a bound is worth
    got, _, searched = model.resmoothed(changed, x, found)
    assert searched == len(x) and np.array_equal(got, model.smoothed(changed))
    unknown = Candidates.unknown(len(x), found.ids.shape[1])
    got, candidates, searched = model.resmoothed(_end_moved(x, 0, 3), x, unknown)
    assert searched == len(x) and candidates.known.all()


def test_a_wrong_bound_would_be_caught():
    """The proof is what makes it exact: with the bound lifted, rows whose neighbours changed come out differently."""
    model, x = _model(2)
    _, found = model._search(x, is_fit=False, keep=True)
    later = _end_moved(x, 5, 4) + 0.0
    later[:, 5] += np.float32(0.5)  # a large move: many rows gain new neighbours
    cheat = Candidates(found.ids, found.dist, np.full(len(x), np.inf))
    wrong, _, _ = model.resmoothed(later, x, cheat)
    right, _, _ = model.resmoothed(later, x, found)
    want = model.smoothed(later)
    assert np.array_equal(right, want) and not np.array_equal(wrong, want)
