"""Binary user-item interactions: the matrix every recommender scores, and the leave-last-out split.

Any event (view, rating, purchase, ...) counts as one interaction; repeated
user-item pairs collapse to one, whose timestamp is the pair's latest.
Identifiers stay strings; rows and columns follow :func:`ordered_ids`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tools.core.errors import DataError

PAIR_COLUMNS = ("user_id", "item_id", "timestamp")
_INTEGER = re.compile(r"-?\d{1,18}")


def ordered_ids(ids: Iterable[str]) -> np.ndarray:
    """Distinct ids in segscope's canonical order: numerically when every id is an integer, else as strings.

    This order is the item tie-break everywhere: in the split (of two interactions
    at the same time, the later-ordered item is "last") and in rankings (of two
    equal scores, the earlier-ordered item ranks first).
    """
    values = ids if isinstance(ids, (pd.Series, np.ndarray, list, tuple)) else list(ids)
    uniq = pd.unique(pd.Series(np.asarray(values, dtype=object)).astype(str))
    if len(uniq) and all(_INTEGER.fullmatch(x) for x in uniq):
        order = np.argsort(np.array([int(x) for x in uniq], dtype=np.int64), kind="stable")
    else:
        order = np.argsort(uniq.astype(str), kind="stable")
    return np.asarray(uniq, dtype=object)[order]


def interaction_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_id, item_id) pairs with the latest timestamp of each; rows without an item are dropped."""
    missing = [c for c in ("user_id", "item_id") if c not in events.columns]
    if missing:
        raise DataError(f"the events have no {', '.join(missing)} column", "recommendations need user and item ids")
    frame = events.loc[events["item_id"].notna() & events["user_id"].notna(), ["user_id", "item_id"]].astype(str)
    if "timestamp" in events.columns:
        frame["timestamp"] = pd.to_numeric(events.loc[frame.index, "timestamp"], errors="coerce").astype(float)
    else:
        frame["timestamp"] = np.nan
    if frame.empty:
        raise DataError("the events contain no user-item interactions", "check that the data has an item column")
    # max() skips NaN, so a pair keeps its latest known time (NaN only when it has none).
    return frame.groupby(["user_id", "item_id"], sort=False, as_index=False)["timestamp"].max()


@dataclass(frozen=True, eq=False)
class InteractionMatrix:
    """Binary user x item CSR matrix with the ids of its rows and columns.

    ``times`` is aligned with ``csr.data``: the pair's latest timestamp (NaN when unknown).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    csr: sp.csr_matrix
    times: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    @cached_property
    def _user_lookup(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.user_ids)}

    def user_index(self, users: Iterable[str | int] | str | int) -> np.ndarray:
        """Row indices for user ids (str) or row numbers (int); an unknown id is a ``DataError``."""
        values = [users] if isinstance(users, (str, int, np.integer)) else list(users)
        lookup = self._user_lookup
        out = []
        for value in values:
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                if not 0 <= int(value) < len(self.user_ids):
                    raise DataError(f"user index {value} is out of range", f"there are {len(self.user_ids)} users")
                out.append(int(value))
            elif str(value) in lookup:
                out.append(lookup[str(value)])
            else:
                raise DataError(f"unknown user {value!r}", "use a user id that appears in the data")
        return np.asarray(out, dtype=np.int64)

    def pairs(self) -> pd.DataFrame:
        """The matrix back as (user_id, item_id, timestamp) pairs."""
        rows = np.repeat(np.arange(self.csr.shape[0]), np.diff(self.csr.indptr))
        return pd.DataFrame(
            {"user_id": self.user_ids[rows], "item_id": self.item_ids[self.csr.indices], "timestamp": self.times}
        )

    @classmethod
    def from_pairs(
        cls, pairs: pd.DataFrame, user_ids: np.ndarray | None = None, item_ids: np.ndarray | None = None
    ) -> InteractionMatrix:
        """Build from distinct pairs; ``user_ids``/``item_ids`` fix the index (pairs outside it are dropped)."""
        users = ordered_ids(pairs["user_id"]) if user_ids is None else np.asarray(user_ids, dtype=object)
        items = ordered_ids(pairs["item_id"]) if item_ids is None else np.asarray(item_ids, dtype=object)
        rows = pd.Index(users).get_indexer(pairs["user_id"])
        cols = pd.Index(items).get_indexer(pairs["item_id"])
        keep = (rows >= 0) & (cols >= 0)
        rows, cols = rows[keep], cols[keep]
        times = pairs["timestamp"].to_numpy(dtype=float)[keep]
        order = np.lexsort((cols, rows))
        rows, cols, times = rows[order], cols[order], times[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(users)))])
        csr = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols.astype(np.int32), indptr),
            shape=(len(users), len(items)),
        )
        return cls(user_ids=users, item_ids=items, csr=csr, times=times)

    @classmethod
    def from_events(cls, events: pd.DataFrame) -> InteractionMatrix:
        """Build from an events frame (canonical columns)."""
        return cls.from_pairs(interaction_pairs(events))


@dataclass(frozen=True, eq=False)
class Split:
    """Leave-last-out split: ``train`` pairs and one ``test`` pair per evaluated user (PAIR_COLUMNS)."""

    train: pd.DataFrame
    test: pd.DataFrame
    dropped_unseen_items: int  # test rows dropped because their item never appears in train

    @property
    def n_test_users(self) -> int:
        return len(self.test)


def leave_last_out_split(events: pd.DataFrame) -> Split:
    """Hold out each user's latest interaction as the test item (the leave-last-out split).

    Interactions are distinct user-item pairs (a pair's time is its latest).
    Ties on time go to the item that comes last in :func:`ordered_ids` order
    (numeric ids compared as numbers). A pair with an unknown time counts as the
    oldest. A test row whose item never appears in the training pairs is dropped.
    Users left with no training pairs stay in the test set (scored cold).
    """
    pairs = interaction_pairs(events)
    if pairs["timestamp"].isna().all():
        raise DataError("leave-last-out needs timestamps and the events have none", "add a timestamp column")
    item_rank = pd.Index(ordered_ids(pairs["item_id"])).get_indexer(pairs["item_id"])
    time = pairs["timestamp"].fillna(-np.inf).to_numpy()
    order = np.lexsort((item_rank, time, pairs["user_id"].to_numpy()))
    ordered = pairs.iloc[order]
    is_last = ~ordered["user_id"].duplicated(keep="last").to_numpy()
    test = ordered[is_last]
    train = ordered[~is_last]
    seen = test["item_id"].isin(set(train["item_id"]))
    test = test[seen.to_numpy()]
    return Split(
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        dropped_unseen_items=int((~seen).sum()),
    )


def recency_positions(matrix: InteractionMatrix) -> np.ndarray:
    """Per stored pair (aligned with ``csr.data``): how recent it is within its user's history.

    0 for the user's most recent timestamp, 1 for the one before, ...; pairs
    sharing a timestamp share a position (a batch of ratings saved together is
    one moment). Unknown times count as oldest.
    """
    csr = matrix.csr
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    if len(rows) == 0:
        return np.zeros(0)
    frame = pd.DataFrame({"row": rows, "t": np.nan_to_num(matrix.times, nan=-np.inf)})
    return frame.groupby("row")["t"].rank(method="dense", ascending=False).to_numpy() - 1.0


def holdout_last(matrix: InteractionMatrix, seed: int = 0) -> tuple[InteractionMatrix, np.ndarray, np.ndarray]:
    """Leave-last-out inside a matrix, keeping its index: (train matrix, user rows, target columns).

    The same rules as :func:`leave_last_out_split`; used to carve a validation
    split from training data. With no timestamps at all there is no "last", so
    one interaction per user is held out at random (seeded) instead.
    """
    pairs = matrix.pairs()
    untimed = bool(pairs["timestamp"].isna().all())
    if untimed:
        pairs = pairs.assign(timestamp=np.random.default_rng(seed).random(len(pairs)))
    split = leave_last_out_split(pairs)
    kept = split.train.assign(timestamp=np.nan) if untimed else split.train
    train = InteractionMatrix.from_pairs(kept, matrix.user_ids, matrix.item_ids)
    users = pd.Index(matrix.user_ids).get_indexer(split.test["user_id"])
    targets = pd.Index(matrix.item_ids).get_indexer(split.test["item_id"])
    return train, users.astype(np.int64), targets.astype(np.int64)
