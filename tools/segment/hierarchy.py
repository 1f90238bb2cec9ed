"""Sub-segments: split the top-level segments where that explains what users do next.

The top level (tools/segment/clustering.py, ``k_rule="stability"``) says *who*
users are: the most reproducible partition of their profiles. Below it, a
segment is split where it is large and heterogeneous in its members' outlook
(tools/segment/outlook.py: how likely they are to come back, and how much they
will spend), so sibling segments differ in what their members are about to do.

How deep to go is measured, not assumed:

1. **Splits.** Each leaf's candidate split is the 2-means split of its
   members in the outlook space (both halves keep ``min_leaf_size`` users).
   Greedily, the leaf whose split gains the most *usefulness* is split next:
   the share of the outlook's ordering of who comes back that the split
   captures, plus the share of its explained spend. Splitting leaf L into A
   and B orders the n_A·n_B pairs across them by their mean "come back" score
   (a pair of a buyer and a non-buyer drawn from A×B is ordered right with
   odds that grow *linearly* with the gap of the means, so the expected AUC
   gain is ∝ n_A·n_B·|ā − b̄|, out of Σ_{i<j}|s_i − s_j| for ranking everyone
   by the score), and explains n_A·n_B/n_L·(ā − b̄)² of the spend score's
   sum of squares. The within-leaf sum of squares used before counts the
   "come back" gap squared: it prefers cutting off small extreme tails, which
   barely changes AUC, and leaves a large, homogeneous-looking group (CDNOW's
   one-time buyers, half the customers) whole though ordering it pays over
   many pairs. Both shares are unchanged by any rescaling of either score.
   The order of the splits is the candidate depths: 0 splits, 1 split, ...
   up to ``max_leaves`` leaves.
2. **Held-out usefulness per depth.** On a time split of the data (the last
   stretch plays the future), the same procedure runs on the users' past, and
   each depth is scored by how well segment means predict the stretch after
   the cut (tools/segment/usefulness.py: AUC of coming back, R² of log spend,
   means learned on other users than those scored, 10 halvings).
3. **Depth.** The smallest depth that reaches ``KNEE`` (95%) of the largest
   gain any candidate brings over no split, on every metric whose gain is real
   (the best depth beats no split in at least 80% of 20 fresh halvings,
   paired). No real gain: no sub-segments. The ARI between depths grown on two random 70% subsets is
   reported beside each candidate.

Without a usable time split (no timestamps, or no one comes back in the last
stretch) the splits are made in the profile space (the leaf whose 2-means
split lowers the within-leaf sum of squares most goes first) and the depth is
the smallest reaching ``KNEE`` of the gain in held-out share of the behaviour
features explained.

Ids: top-level segments are 0..T-1 (0 the largest). A top segment that is not
split is its own leaf; the children of split ones are numbered from T on, in
the order of their parent, largest first. ``leaf_labels`` holds each user's
leaf: the segment they are assigned to. A tree grown from everyone
(:func:`build_root_tree`) has its leaves as the top level, 0..L-1, largest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from tools.segment.stability import lloyd, nearest
from tools.segment.usefulness import explained_share, usefulness_scores

MIN_LEAF_SHARE = 0.02
MIN_LEAF_USERS = 20
# The past the depth is tried on is shorter and smaller than the data a run serves (a quarter of the span at
# most, a sample of users), so it understates what depth buys: the knee sits high, at 95% of the gain.
KNEE = 0.95
REAL_GAIN_SHARE = 0.8
SUBSET_SHARE = 0.7
FRESH = 1000  # seed offset of the halvings that confirm a gain


def min_leaf_size(n_users: int) -> int:
    """Fewest users a sub-segment may hold: 2% of the users, at least 20."""
    return max(MIN_LEAF_USERS, int(np.ceil(MIN_LEAF_SHARE * n_users)))


@dataclass(frozen=True)
class Split:
    """Leaf ``leaf`` split into ``children`` (new internal ids) by nearest of ``centres`` in the split space."""

    leaf: int
    children: tuple[int, int]
    centres: np.ndarray  # (2, d)
    gain: float  # what choosing it gained (grow_splits' ``gain``)


def _bisect(points: np.ndarray, min_leaf: int) -> tuple[float, np.ndarray, np.ndarray] | None:
    """2-means started from the two sides of the principal axis (deterministic); None when a side is too small."""
    if len(points) < 2 * min_leaf:
        return None
    x = points.astype(np.float64)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[:: max(1, len(x) // 5000)], full_matrices=False)
    along = centred @ vt[0]
    if np.all(along >= 0) or np.all(along < 0):
        return None
    start = np.vstack([x[along < 0].mean(axis=0), x[along >= 0].mean(axis=0)])
    side, centres = lloyd(x, start)
    if np.bincount(side, minlength=2).min() < min_leaf:
        return None
    within = sum(float(((x[side == s] - centres[s]) ** 2).sum()) for s in (0, 1))
    return float((centred**2).sum()) - within, centres.astype(np.float32), side


GAINS = ("variance", "usefulness")


class _UsefulnessGain:
    """Share of the outlook's pair ordering (column 0) and explained variance (column 1) a split captures.

    Computed against all users of ``space``: ``pairs`` = Σ_{i<j}|s_i − s_j| of the
    "come back" score, ``sst`` the sum of squares of the spend score.
    """

    def __init__(self, space: np.ndarray) -> None:
        come_back = np.sort(space[:, 0].astype(np.float64))
        rank = np.arange(1, len(come_back) + 1)
        self.pairs = max(float(((2 * rank - len(come_back) - 1) * come_back).sum()), 1e-12)
        spend = space[:, 1].astype(np.float64)
        self.sst = max(float(((spend - spend.mean()) ** 2).sum()), 1e-12)

    def __call__(self, points: np.ndarray, side: np.ndarray) -> float:
        a, b = points[side == 0].astype(np.float64), points[side == 1].astype(np.float64)
        gap = a.mean(axis=0) - b.mean(axis=0)
        n_a, n_b = len(a), len(b)
        return n_a * n_b * abs(gap[0]) / self.pairs + n_a * n_b / (n_a + n_b) * gap[1] ** 2 / self.sst


def grow_splits(groups: np.ndarray, space: np.ndarray, max_splits: int, min_leaf: int, gain: str = "variance",
                behaviour: np.ndarray | None = None) -> list[Split]:
    """The greedy sequence of splits (module docstring, step 1); ``groups`` are the top-level labels.

    ``gain`` says which leaf goes first: "usefulness" (an outlook space: column 0
    the "come back" score, column 1 the spend score) or "variance" (any space:
    the drop in within-leaf sum of squares). Either way a leaf's split is its 2-means split.
    With ``behaviour`` (standardised features, rows as ``space``), a leaf is only split where its two
    halves differ on some feature by DESCRIBABLE_GAP: profiles mix item vectors with behaviour, and
    halves nothing measurable tells apart would be sub-segments no one can describe or name.
    """
    if gain not in GAINS:
        raise ValueError(f"gain must be one of {GAINS}, got {gain!r}")
    labels = np.asarray(groups).copy()
    std = None
    if behaviour is not None:
        std = behaviour.std(axis=0)
        std[std < 1e-12] = 1.0
    next_id = int(labels.max()) + 1
    pending: dict[int, tuple[float, np.ndarray, np.ndarray, np.ndarray] | None] = {}
    useful = _UsefulnessGain(space) if gain == "usefulness" else None

    def consider(leaf: int) -> None:
        rows = np.flatnonzero(labels == leaf)
        found = _bisect(space[rows], min_leaf)
        if found is not None and behaviour is not None and not describable(behaviour[rows], found[2], std):
            found = None
        if found is None:
            pending[leaf] = None
            return
        score = found[0] if useful is None else useful(space[rows], found[2])
        pending[leaf] = (score, found[1], rows, found[2])

    for leaf in np.unique(labels):
        consider(int(leaf))
    splits: list[Split] = []
    while len(splits) < max_splits:
        ready = [leaf for leaf, cand in pending.items() if cand is not None]
        if not ready:
            break
        leaf = max(ready, key=lambda lf: (pending[lf][0], -lf))  # type: ignore[index]
        gain, centres, rows, side = pending.pop(leaf)  # type: ignore[misc]
        children = (next_id, next_id + 1)
        next_id += 2
        labels[rows] = np.where(side == 0, children[0], children[1])
        splits.append(Split(leaf, children, centres, gain))
        consider(children[0])
        consider(children[1])
    return splits


def apply_splits(groups: np.ndarray, space: np.ndarray, splits: list[Split] | tuple[Split, ...]) -> np.ndarray:
    """Internal leaf ids after ``splits``, each user following the nearest centre down (agrees with grow_splits)."""
    labels = np.asarray(groups).copy()
    for split in splits:
        rows = np.flatnonzero(labels == split.leaf)
        if len(rows):
            side = nearest(space[rows].astype(np.float64), split.centres.astype(np.float64))
            labels[rows] = np.where(side == 0, split.children[0], split.children[1])
    return labels


@dataclass(frozen=True)
class DepthCandidate:
    splits: int
    leaves: int
    auc: float | None  # held-out, on the time split (None without one)
    r2: float | None
    explained: float | None  # held-out share of behaviour explained (without a time split)
    stability_ari: float | None

    def as_dict(self) -> dict:
        def r(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 4)

        return {"splits": self.splits, "leaves": self.leaves, "auc": r(self.auc), "r2": r(self.r2),
                "explained": r(self.explained), "stability_ari": r(self.stability_ari)}


@dataclass(frozen=True)
class DepthChoice:
    splits: int
    space: str  # "outlook" or "profile"
    reason: str
    candidates: tuple[DepthCandidate, ...] = field(default=())


def _knee(gains: list[np.ndarray], real: list[bool]) -> int:
    """Smallest index reaching KNEE of the largest gain on every metric whose gain is real."""
    used = [g for g, ok in zip(gains, real) if ok]
    if not used:
        return 0
    for i in range(len(used[0])):
        if all(g[i] >= KNEE * g.max() for g in used):
            return i
    return len(used[0]) - 1


def _real(fresh: np.ndarray, base: np.ndarray) -> bool:
    """The best depth beats no split in at least REAL_GAIN_SHARE of the halvings (paired).

    Scored on fresh halvings, not the ones the best depth was picked on: the
    best of twenty candidates on noise looks better than no split on the very
    halvings that picked it, and only there.
    """
    diff = fresh - base
    diff = diff[np.isfinite(diff)]
    return bool(len(diff)) and float(np.mean(diff > 0)) >= REAL_GAIN_SHARE


def _subset_stability(groups: np.ndarray, space: np.ndarray, max_splits: int, min_leaf: int, seed: int, gain: str) -> list[float]:
    """ARI, per depth, between the splits grown on two random 70% subsets and applied to everyone."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed + 1)
    grown = []
    for _ in range(2):
        rows = np.sort(rng.choice(len(groups), size=int(SUBSET_SHARE * len(groups)), replace=False))
        grown.append(grow_splits(groups[rows], space[rows], max_splits, int(SUBSET_SHARE * min_leaf), gain))
    depth = min(len(grown[0]), len(grown[1]))
    return [float(adjusted_rand_score(apply_splits(groups, space, grown[0][:b]), apply_splits(groups, space, grown[1][:b])))
            for b in range(depth + 1)]


def choose_depth_by_outlook(
    groups: np.ndarray, space: np.ndarray, active: np.ndarray, value: np.ndarray, max_splits: int, seed: int,
    base: str = "the top level",
) -> DepthChoice:
    """Depth by held-out usefulness on a time split (module docstring, steps 2-3); all arrays are the past's users.

    ``base`` names what no split is, in the reason ("no segments" when ``groups`` is everyone in one).
    """
    min_leaf = min_leaf_size(len(groups))
    splits = grow_splits(groups, space, max_splits, min_leaf, "usefulness")
    aucs, r2s, leaves = [], [], []
    for b in range(len(splits) + 1):
        labels = apply_splits(groups, space, splits[:b])
        a, r = usefulness_scores(labels, active, value, seed=seed)
        aucs.append(a)
        r2s.append(r)
        leaves.append(len(np.unique(labels)))
    stab = _subset_stability(groups, space, max_splits, min_leaf, seed, "usefulness")
    auc_med = np.asarray([np.nanmedian(a) for a in aucs])
    r2_med = np.asarray([np.nanmedian(r) for r in r2s])
    labelled = [apply_splits(groups, space, splits[:b]) for b in (0, int(np.argmax(auc_med)), int(np.argmax(r2_med)))]
    fresh = [usefulness_scores(labels, active, value, seed=seed + FRESH) for labels in labelled]
    real_auc = _real(fresh[1][0], fresh[0][0])
    real_r2 = _real(fresh[2][1], fresh[0][1])
    chosen = _knee([auc_med - auc_med[0], r2_med - r2_med[0]], [real_auc, real_r2])
    cands = tuple(DepthCandidate(b, leaves[b], float(auc_med[b]), float(r2_med[b]), None, stab[b] if b < len(stab) else None)
                  for b in range(len(splits) + 1))
    if not (real_auc or real_r2):
        reason = (f"no sub-segments: no depth up to {leaves[-1]} leaves predicted the last stretch better than {base} "
                  f"in {REAL_GAIN_SHARE:.0%} of the held-out halvings")
    else:
        c = cands[chosen]
        reason = (f"{c.splits} split(s), {c.leaves} leaves: the smallest depth reaching {KNEE:.0%} of the best held-out gain "
                  f"over {base} among depths up to {leaves[-1]} leaves, on the users' past: AUC {auc_med[0]:.3f} → {c.auc:.3f} "
                  f"(best {auc_med.max():.3f}), R² {r2_med[0]:.3f} → {c.r2:.3f} (best {r2_med.max():.3f})"
                  + ("" if real_auc and real_r2 else f"; only {'AUC' if real_auc else 'R²'} gained reliably"))
    return DepthChoice(chosen, "outlook", reason, cands)


DESCRIBABLE_GAP = 0.5  # standardised gap on some behaviour feature for two halves of a split to be told apart


def describable(behaviour: np.ndarray, side: np.ndarray, std: np.ndarray, min_gap: float = DESCRIBABLE_GAP) -> bool:
    """True when the two sides of a split differ by ``min_gap`` standard deviations on some behaviour feature."""
    gap = np.abs(behaviour[side == 0].mean(axis=0) - behaviour[side == 1].mean(axis=0)) / std
    return bool(gap.size) and float(gap.max()) >= min_gap


def choose_depth_by_profile(groups: np.ndarray, space: np.ndarray, behaviour: np.ndarray, max_splits: int, seed: int) -> DepthChoice:
    """Depth without a time split: held-out share of the behaviour features the leaves explain."""
    min_leaf = min_leaf_size(len(groups))
    splits = grow_splits(groups, space, max_splits, min_leaf, "variance", behaviour)
    shares, leaves = [], []
    for b in range(len(splits) + 1):
        labels = apply_splits(groups, space, splits[:b])
        shares.append(explained_share(labels, behaviour, seed=seed))
        leaves.append(len(np.unique(labels)))
    gain = np.asarray(shares) - shares[0]
    real = len(gain) > 1 and float(gain.max()) > 0.01
    chosen = _knee([gain], [real])
    stab = _subset_stability(groups, space, max_splits, min_leaf, seed, "variance")
    cands = tuple(DepthCandidate(b, leaves[b], None, None, shares[b], stab[b] if b < len(stab) else None) for b in range(len(splits) + 1))
    if not real:
        reason = "no sub-segments: splitting the top level explained no more of the users' behaviour on held-out users"
    else:
        c = cands[chosen]
        reason = (f"{c.splits} split(s), {c.leaves} leaves (no usable time split, so split by profile): the smallest depth "
                  f"reaching {KNEE:.0%} of the best gain in held-out share of behaviour explained "
                  f"({shares[0]:.3f} → {c.explained:.3f}, best {max(shares):.3f})")
    return DepthChoice(chosen, "profile", reason, cands)


@dataclass(frozen=True)
class Tree:
    """The fitted two-level hierarchy over one run's users.

    ``root``: the splits were grown from all users as one group (no reproducible
    top level, tools/segment/levels.py); their leaves are then the top level
    themselves (ids 0..L-1, no parents) and ``predict`` starts everyone at the root.
    """

    top_labels: np.ndarray
    leaf_labels: np.ndarray  # final ids (module docstring)
    parents: dict[int, int | None]  # every node id -> its parent (None at the top)
    splits: tuple[Split, ...]
    leaf_map: dict[int, int]  # internal leaf id -> final id
    root: bool = False

    @property
    def levels(self) -> dict[int, int]:
        return {node: 0 if parent is None else 1 for node, parent in self.parents.items()}

    @property
    def children(self) -> dict[int, tuple[int, ...]]:
        out: dict[int, list[int]] = {node: [] for node in self.parents}
        for node, parent in self.parents.items():
            if parent is not None:
                out[parent].append(node)
        return {node: tuple(kids) for node, kids in out.items()}

    def predict(self, top_labels: np.ndarray, space: np.ndarray) -> np.ndarray:
        start = np.zeros(len(space), dtype=np.int64) if self.root else top_labels
        internal = apply_splits(start, space, self.splits)
        return np.asarray([self.leaf_map[int(i)] for i in internal], dtype=np.int64)


def build_tree(top_labels: np.ndarray, space: np.ndarray | None, n_splits: int, gain: str = "variance",
               behaviour: np.ndarray | None = None) -> Tree:
    """Grow ``n_splits`` splits (none when ``space`` is None) and number the nodes (module docstring, Ids)."""
    top_labels = np.asarray(top_labels, dtype=np.int64)
    k_top = int(top_labels.max()) + 1
    splits = [] if space is None or n_splits <= 0 else grow_splits(top_labels, space, n_splits, min_leaf_size(len(top_labels)), gain, behaviour)
    internal = apply_splits(top_labels, space, splits) if splits else top_labels.copy()
    parents: dict[int, int | None] = {t: None for t in range(k_top)}
    leaf_map: dict[int, int] = {}
    next_id = k_top
    for t in range(k_top):
        inside, counts = np.unique(internal[top_labels == t], return_counts=True)
        if len(inside) <= 1:
            leaf_map.update({int(i): t for i in inside})
            continue
        for i in inside[np.lexsort((inside, -counts))]:
            leaf_map[int(i)] = next_id
            parents[next_id] = t
            next_id += 1
    leaves = np.asarray([leaf_map[int(i)] for i in internal], dtype=np.int64)
    return Tree(top_labels, leaves, parents, tuple(splits), leaf_map)


def build_root_tree(space: np.ndarray, n_splits: int, gain: str = "usefulness") -> Tree:
    """Splits grown from all users as one group, their leaves made the top level (ids 0..L-1, largest first)."""
    grown = build_tree(np.zeros(len(space), dtype=np.int64), space, n_splits, gain)
    if len(grown.parents) == 1:  # nothing to split: one segment of everyone
        return replace(grown, root=True)
    leaf_map = {i: leaf - 1 for i, leaf in grown.leaf_map.items()}  # the root (0) goes; its children 1..L become 0..L-1
    leaves = grown.leaf_labels - 1
    return Tree(leaves, leaves, {leaf: None for leaf in sorted(leaf_map.values())}, grown.splits, leaf_map, root=True)


ProgressFn = Callable[[str, int, int], None]
