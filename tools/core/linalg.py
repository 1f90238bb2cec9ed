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
