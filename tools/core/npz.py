"""``.npz`` files written an array block at a time, for arrays too large to build whole in memory.

What :func:`save_npz` writes is what ``np.savez`` writes for the same arrays (stored, not compressed;
``np.load`` reads both alike), but an entry given as :class:`Blocks` is written from its row blocks
as they come, so the whole array never exists in memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Blocks:
    """An array of ``shape`` and ``dtype`` as consecutive row blocks (``make()`` yields them in row order)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    make: Callable[[], Iterator[np.ndarray]]


def save_npz(path: str | Path, entries: dict[str, np.ndarray | Blocks]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in entries.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                if not isinstance(value, Blocks):
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
                    continue
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(value.dtype)), "fortran_order": False,
                          "shape": tuple(int(x) for x in value.shape)}
                try:
                    np.lib.format.write_array_header_1_0(fh, header)
                except ValueError:  # a header too long for version 1.0
                    np.lib.format.write_array_header_2_0(fh, header)
                rows = 0
                for block in value.make():
                    block = np.ascontiguousarray(block, dtype=value.dtype)
                    if block.shape[1:] != tuple(value.shape[1:]):
                        raise ValueError(f"{name}: a block of shape {block.shape} in an array of shape {value.shape}")
                    fh.write(block.tobytes())
                    rows += len(block)
                if rows != value.shape[0]:
                    raise ValueError(f"{name}: the blocks held {rows} rows, not {value.shape[0]}")
