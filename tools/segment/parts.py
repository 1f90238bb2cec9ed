"""Every user's profile kept as parts on disk, for runs larger than one process should hold.

A cluster engine (tools/distributed/engine.py) profiles users a partition at a time on its
workers. Past a size, gathering every profile in one process is what bounds a run (docs/scaling.md),
so each partition's text vectors and raw behaviour features stay in a part file of the run's scratch
folder (``part-NNNNN.ids.npy``, ``.text.npy``, ``.raw.npy``) and the process that fits keeps only the user ids, which rows each part
holds, and the fitted :class:`~tools.segment.recipe.ProfileRecipe`.

A part's scaled features and fused profiles are not stored: they are the recipe applied to its rows
(``ProfileRecipe.fuse``, ``FeatureScale.apply``), the same bits wherever they are computed. The rows
a step needs (the fit sample, one part to place or store) are read back with :meth:`ProfileParts.rows`
and :meth:`ProfileParts.part`, and the run's profiles.npz is written from the parts one at a time
(:meth:`ProfileParts.save_npz`), in the same format as a run profiled in one process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.core.npz import Blocks, save_npz
from tools.segment.features import BehaviourFeatures, FeatureSpec
from tools.segment.profiles import Profiles
from tools.segment.recipe import ProfileRecipe


def part_path(folder: Path, part: int, array: str) -> Path:
    return Path(folder) / f"part-{part:05d}.{array}.npy"


def write_part(folder: Path, part: int, user_ids: np.ndarray, text: np.ndarray, raw: np.ndarray) -> None:
    """One partition's rows (ids, text vectors, raw features), each written to a temp name and renamed: a retried
    task rewrites them whole, and a reader never sees half a file."""
    arrays = {"ids": np.asarray(user_ids, dtype=str), "text": np.asarray(text, dtype=np.float32),
              "raw": np.asarray(raw, dtype=np.float64)}
    for name, value in arrays.items():
        path = part_path(folder, part, name)
        tmp = path.with_name(f".{path.name}.{np.random.default_rng().integers(1 << 62):x}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=False)
        tmp.replace(path)


def _read_rows(path: Path, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop`` of a saved 2-d array, read from the file without mapping it (nothing else resident)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        if fortran or len(shape) != 2:
            raise RuntimeError(f"{path} is not a row-major table")
        width = int(shape[1])
        fh.seek(fh.tell() + start * width * dtype.itemsize)
        return np.fromfile(fh, dtype=dtype, count=(stop - start) * width).reshape(stop - start, width)


@dataclass(frozen=True)
class ProfileParts:
    """Every user's profile as part files (module docstring).

    Rows are the run's users in ``user_ids``' order; ``rows_of[i]`` are the rows part ``parts[i]`` holds, in its
    files' order, which is ascending (a partition lists its users as they first appear in the events, as the
    whole data does), so any range of rows is one slice of each part.
    """

    folder: Path
    parts: tuple[int, ...]  # part numbers
    rows_of: tuple[np.ndarray, ...]  # each part's rows, ascending
    user_ids: np.ndarray  # every user, in row order
    specs: tuple[FeatureSpec, ...]  # the behaviour features' (empty without a behaviour block)
    currency: str | None
    alpha: float
    item_ids: np.ndarray
    item_vectors: np.ndarray
    n_texts_embedded: int
    n_texts_total: int
    text_source: str
    recipe: ProfileRecipe

    def __post_init__(self) -> None:
        for rows in self.rows_of:
            if len(rows) > 1 and not (np.diff(rows) > 0).all():
                raise RuntimeError("a part's users are not in the order they first appear in the events")

    @property
    def feature_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Part ``i``'s (text, raw), checked against the rows it should hold."""
        ids = np.load(part_path(self.folder, self.parts[i], "ids"))
        if not np.array_equal(ids, self.user_ids[self.rows_of[i]].astype(str)):
            raise RuntimeError(f"{part_path(self.folder, self.parts[i], 'ids')} does not hold the users of its part")
        return (np.load(part_path(self.folder, self.parts[i], "text")),
                np.load(part_path(self.folder, self.parts[i], "raw")))

    def _profiles(self, user_ids: np.ndarray, text: np.ndarray, raw: np.ndarray) -> Profiles:
        """Profiles of these rows: scaled and fused by the recipe, as the whole population's were."""
        features = None
        if self.recipe.features is not None:
            scaled = self.recipe.features.scale.apply(raw)
            features = BehaviourFeatures(user_ids, self.specs, raw, scaled, self.currency)
        fused = self.recipe.fuse(text, None if features is None else features.scaled)
        return Profiles(user_ids=user_ids, text=text, features=features, fused=fused, alpha=self.alpha,
                        item_ids=self.item_ids, item_vectors=self.item_vectors, n_texts_embedded=self.n_texts_embedded,
                        n_texts_total=self.n_texts_total, text_source=self.text_source, recipe=self.recipe)

    def part(self, i: int) -> Profiles:
        """Part ``i``'s profiles (its rows ``rows_of[i]``)."""
        text, raw = self.load(i)
        return self._profiles(self.user_ids[self.rows_of[i]], text, raw)

    def rows(self, rows: np.ndarray) -> Profiles:
        """The profiles of ``rows`` (indices or a boolean mask over every user), in row order, read part by part."""
        chosen = np.asarray(rows)
        chosen = np.flatnonzero(chosen) if chosen.dtype == bool else np.unique(chosen)
        got_rows, texts, raws = [], [], []
        for i, held in enumerate(self.rows_of):
            inside = np.flatnonzero(np.isin(held, chosen, assume_unique=True))
            if len(inside) or (i == len(self.rows_of) - 1 and not texts):  # the last part gives the widths of none
                text, raw = self.load(i)
                got_rows.append(held[inside])
                texts.append(text[inside])
                raws.append(raw[inside])
        order = np.argsort(np.concatenate(got_rows), kind="stable")
        return self._profiles(self.user_ids[chosen], np.concatenate(texts)[order], np.concatenate(raws)[order])

    def fused_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.rows(rows).fused

    def _range(self, start: int, stop: int, arrays: tuple[str, ...]) -> list[np.ndarray]:
        """The ``arrays`` ("text", "raw") of rows ``start..stop``, in row order: one slice of each part's files."""
        got_rows, got = [], {name: [] for name in arrays}
        for i, held in enumerate(self.rows_of):
            a, b = np.searchsorted(held, [start, stop])
            if b > a:
                got_rows.append(held[a:b])
                for name in arrays:
                    got[name].append(_read_rows(part_path(self.folder, self.parts[i], name), int(a), int(b)))
        order = np.argsort(np.concatenate(got_rows), kind="stable")
        if not np.array_equal(np.concatenate(got_rows)[order], np.arange(start, stop)):
            raise RuntimeError(f"the parts do not hold rows {start}..{stop - 1} exactly once")
        return [np.concatenate(got[name])[order] for name in arrays]

    def blocks(self, size: int = 65_536) -> Iterator[tuple[slice, Profiles]]:
        """(rows, profiles) of consecutive ranges of ``size`` rows, in row order."""
        n = len(self.user_ids)
        for start in range(0, n, size):
            stop = min(start + size, n)
            text, raw = self._range(start, stop, ("text", "raw"))
            yield slice(start, stop), self._profiles(self.user_ids[start:stop], text, raw)

    def text_blocks(self, size: int = 65_536) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, text vectors) of consecutive ranges of ``size`` rows, in row order (the text alone)."""
        for start in range(0, len(self.user_ids), size):
            yield start, self._range(start, min(start + size, len(self.user_ids)), ("text",))[0]

    def save_npz(self, path: Path, arrays: dict[str, np.ndarray | None], block_rows: int = 16_384) -> None:
        """profiles.npz as ``np.savez`` writes it for a run profiled in one process: ``arrays`` as they are, and
        those given as None (text, fused, feature_raw) streamed from the parts a block of rows at a time."""
        n = len(self.user_ids)

        def fused(start: int, stop: int) -> np.ndarray:
            text, raw = self._range(start, stop, ("text", "raw"))
            return self._profiles(self.user_ids[start:stop], text, raw).fused

        # Text and raw features are read as they are; only the fused rows need the recipe applied.
        take = {"text": lambda a, b: self._range(a, b, ("text",))[0], "feature_raw": lambda a, b: self._range(a, b, ("raw",))[0],
                "fused": fused}
        entries: dict[str, np.ndarray | Blocks] = {}
        for name, value in arrays.items():
            if value is not None:
                entries[name] = value
                continue
            like = take[name](0, 1)  # one row: the array's type and width

            def make(name: str = name) -> Iterator[np.ndarray]:
                for start in range(0, n, block_rows):
                    yield take[name](start, min(start + block_rows, n))

            entries[name] = Blocks((n, *like.shape[1:]), like.dtype, make)
        save_npz(path, entries)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def fused_rows(profiles: Profiles | ProfileParts, rows: np.ndarray) -> np.ndarray:
    """The fused profiles of ``rows``, from profiles in memory or in parts."""
    return profiles.fused_rows(rows) if isinstance(profiles, ProfileParts) else profiles.fused[rows]
