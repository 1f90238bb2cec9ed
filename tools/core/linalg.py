"""Row L2-normalisation, the one way every stage makes vectors unit length (through scikit-learn)."""

from __future__ import annotations

import numpy as np


def normalize_rows(x: np.ndarray, copy: bool = True) -> np.ndarray:
    """Each row of ``x`` scaled to unit L2 norm, in its own float dtype.

    ``sklearn.preprocessing.normalize`` does the work: a row whose norm is zero (or
    below ten machine epsilons) is left as it is, so an empty profile stays empty.
    It refuses arrays without rows or columns; those come back unchanged.
    ``copy=False`` scales a float array in place.
    """
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.size == 0:
        return arr.astype(np.result_type(arr.dtype, np.float32), copy=copy)
    from sklearn.preprocessing import normalize

    return normalize(arr, copy=copy)


def row_norms(x: np.ndarray) -> np.ndarray:
    """Each row's L2 norm (``sklearn.utils.extmath.row_norms``), float64; a 1-D ``x`` is one row."""
    from sklearn.utils.extmath import row_norms as sk_row_norms

    arr = np.atleast_2d(np.asarray(x, dtype=np.float64))
    return sk_row_norms(arr) if arr.size else np.zeros(len(arr))
