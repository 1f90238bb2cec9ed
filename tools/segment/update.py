"""Append new events to a fitted run and re-profile only the users they touch: the core of ``segscope update``.

The update is defined as what a full re-assign would give: the run's events plus the new
ones, every user profiled with the run's :class:`~tools.segment.recipe.ProfileRecipe` (the
fit's feature layout and scaling, fusion scales, collaborative basis: nothing is re-fitted)
and placed by the run's model (:meth:`FittedSegments.place`). ``assign_dataset(fitted,
merged)`` computes that for everyone; this module gets the same result while recomputing
only what changed:

- a user with new events (or a new user) has every block recomputed from their own events;
- every other user's text block and behaviour features are their own business (item
  weights decay from the user's own last event, category shares follow the run's layout),
  so they stay as saved -- except the features measured to the end of the data
  (``END_FEATURES``: recency and tenure). Recency is measured to when the data ends, as
  ``assign`` and the fit measure it; when the new events end later, everyone is that
  many days less recent. Those columns are recomputed for everyone, vectorised, exactly:
  with whole-second timestamps, ``end - last`` is recovered bit for bit from the saved
  value and the old end; otherwise every user's features are recomputed from the events.
  Only the behaviour columns of their fused profiles are written again (the text block is the
  saved one, bit for bit: ProfileRecipe.behaviour_columns). Those users' profiles changed, so they are re-placed too: an update that moves the end
  places every user (no embedding, no re-fit), but their smoothing skips the search of the
  reference wherever the run's saved candidates prove the result (tools/segment/resmooth.py:
  the search's result bit for bit, about 95% of users after 14 days); one that does not (late
  events, corrections, new users inside the run's period) places only the affected users.

The end the affected users are measured to is the merged data's: their events are
profiled together with those of one user who holds the merged data's last event, so
``compute_features`` sees the same end (no parameter added to it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from tools.core.dataset import EVENT_COLUMNS, Dataset
from tools.core.errors import DataError, ParameterError
from tools.core.run_state import RunState, load_run
from tools.core.workspace import Workspace
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder, make_embedder, vectors_name
from tools.segment.assign import check_columns, fit_features_of, fit_recipe_of, with_catalogue
from tools.segment.features import BehaviourFeatures, compute_features
from tools.segment.fitted import FittedSegments, load_fitted
from tools.segment.profiles import build_profiles
from tools.segment.recipe import ProfileRecipe
from tools.segment.resmooth import NEIGHBOURS_FILE, Candidates

END_FEATURES = ("recency_days", "tenure_days")  # measured to the end of the data (tools/segment/features.py)
DAY_SECONDS = 86400.0
P99_SAMPLE = 5000  # the run's own users placed to estimate its p99 distance (all of them when fewer)


@dataclass(frozen=True)
class UpdateBase:
    """A run to update: its state, the recipe and model of the fit it descends from, and where its data ends."""

    run: RunState
    fit_key: str  # the run that was fitted (this one, or the one an updated run descends from)
    recipe: ProfileRecipe
    segments: FittedSegments
    features_end: float | None  # the end its saved recency/tenure are measured to (None: no timestamps)
    fit_end: float | None  # the fitted run's end
    fit_user_ids: np.ndarray  # the fitted run's users and leaves: drift since the fit, over any number of updates
    fit_labels: np.ndarray
    fit_top: np.ndarray
    fit_features: BehaviourFeatures | None = None  # the fitted run's features (their names, labels and units)

    @property
    def key(self) -> str:
        return str(self.run.summary["run_key"])

    def make_embedder(self) -> Embedder:
        params = self.run.summary["parameters"]
        return make_embedder(str(params["embedder"]), backend=params.get("embed_backend") or None)

    @cached_property
    def candidates(self) -> Candidates | None:
        """The smoothing candidates the run saved (tools/segment/resmooth.py), read once for the update and its p99;
        None for a run saved without them."""
        return Candidates.load(self.run.run_dir / NEIGHBOURS_FILE, len(self.run.user_ids))

    @property
    def vectors_name(self) -> str:
        params = self.run.summary["parameters"]
        return str(params.get("embed_vectors") or params["embedder"])


def fit_end(run: RunState) -> float | None:
    """When a fitted run's data ends for its features: its fitted population's last event (features.py ``_end``)."""
    ev = run.data.events
    ts = ev["timestamp"].to_numpy(dtype=np.float64)
    if not np.isfinite(ts).any():
        return None
    fitted = run.fitted
    if fitted.all():
        return float(np.nanmax(ts))
    pop = fitted[user_codes(ev, run.user_ids)]
    known = ts[pop & np.isfinite(ts)]
    return float(known.max()) if len(known) else float(np.nanmax(ts))


def user_codes(events: pd.DataFrame, user_ids: np.ndarray) -> np.ndarray:
    """Each event's row in ``user_ids`` (every event's user must be there); through object arrays, which hash
    100x faster than pandas' Arrow strings (a million events: 0.2 s, not 20)."""
    codes = pd.Index(np.asarray(user_ids, dtype=object)).get_indexer(events["user_id"].to_numpy(dtype=object))
    if (codes < 0).any():
        raise ValueError("an event's user is not among the users")
    return codes


def load_update_base(workspace, key: str | None = None) -> UpdateBase:
    """The current run (or ``key``) with the recipe and model of its fit; nobody is placed (that is the point)."""
    from tools.core.errors import WorkspaceError

    run = load_run(workspace, key)
    if not (run.run_dir / "model.npz").exists():
        raise WorkspaceError(f"{run.run_dir}: the run has no saved model", "run `segscope segment` again")
    params, kind = run.summary["parameters"], run.summary["data"]["kind"]
    fit_key = str(params.get("fitted_run") or run.summary["run_key"])
    fit = run if fit_key == run.summary["run_key"] else load_run(workspace, fit_key)
    features = fit_features_of(fit)
    recipe = fit_recipe_of(fit, params, features)
    text_model = kind == "text" and params.get("algorithm", "kmeans") == "kmeans"
    segments = load_fitted(run.run_dir, features, text_model)
    end = params.get("features_end", "fit") if "features_end" in params else "fit"
    features_end = fit_end(run) if end == "fit" else (None if end is None else float(end))
    first_end = fit_end(fit) if fit is run else params.get("features_end_fit")
    return UpdateBase(run, fit_key, recipe, segments, features_end, None if first_end is None else float(first_end),
                      fit.user_ids.astype(object), fit.labels, fit.labels if fit.top_labels is None else fit.top_labels, features)


def merged_dataset(run: RunState, new: Dataset) -> Dataset:
    """The run's data followed by ``new``'s events (the catalogue grows by ``new``'s unseen items)."""
    fit = run.data
    events = pd.concat([fit.events, new.events[fit.events.columns.intersection(new.events.columns)]], ignore_index=True)
    items = fit.items
    if new.items is not None:
        seen = pd.Index([] if items is None else items["item_id"])
        fresh = new.items[~new.items["item_id"].isin(seen)]
        items = fresh.reset_index(drop=True) if items is None else pd.concat([items, fresh], ignore_index=True)
    users = fit.users
    if new.users is not None:
        seen_users = pd.Index([] if users is None else users["user_id"])
        fresh_users = new.users[~new.users["user_id"].isin(seen_users)]
        users = fresh_users.reset_index(drop=True) if users is None else pd.concat([users, fresh_users], ignore_index=True)
    # The merged tables' identity from the two parts' (hashing a million rows again would cost a second).
    ident = hashlib.sha256(f"{fit.fingerprint}+{new.fingerprint}".encode()).hexdigest()
    return replace(fit, events=events, items=items, users=users, source=f"{fit.source} + {new.source}", fingerprint=ident,
                   skipped={k: int(fit.skipped.get(k, 0)) + int(new.skipped.get(k, 0)) for k in {*fit.skipped, *new.skipped}})


@dataclass(frozen=True)
class UpdatedUsers:
    """Every user of the merged data, in the order a re-assign lists them, and what the update recomputed."""

    data: Dataset  # the merged data
    user_ids: np.ndarray
    text: np.ndarray
    fused: np.ndarray
    features: BehaviourFeatures | None
    labels: np.ndarray  # leaf
    top: np.ndarray
    outliers: np.ndarray  # the run's flags; "" for new users
    previous: np.ndarray  # each user's leaf in the run, -1 for new users
    affected: np.ndarray  # mask: users with new events (and new users)
    placed: np.ndarray  # mask: users re-placed (affected, and everyone when the end moved)
    own_distance: np.ndarray  # distance to the top-level centroid, NaN for users not re-placed
    end_shift_days: float
    end_recomputed: str  # "none" | "recovered" | "recomputed": how the end-measured features of the others were redone
    item_ids: np.ndarray
    item_vectors: np.ndarray
    n_texts_embedded: int
    features_end: float | None
    candidates: Candidates | None = None  # every user's smoothing candidates (tools/segment/resmooth.py), for the next update
    searched: int = 0  # re-placed users whose smoothing searched the reference (the others were proved unchanged)


def _end_of(events: pd.DataFrame) -> float | None:
    ts = events["timestamp"].to_numpy(dtype=np.float64)
    return float(np.nanmax(ts)) if np.isfinite(ts).any() else None


def _integral(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(np.all(finite == np.floor(finite)) and (not len(finite) or np.abs(finite).max() < 2.0**52))


def shift_end_features(raw: np.ndarray, names: tuple[str, ...], old_end: float, new_end: float) -> np.ndarray:
    """``raw`` with each END_FEATURES column measured to ``new_end`` instead of ``old_end``, bit for bit as
    compute_features would (whole-second timestamps: ``end - t`` is recovered exactly from the saved days)."""
    out = raw.copy()
    for j, name in enumerate(names):
        if name in END_FEATURES:
            days = raw[:, j]
            ok = np.isfinite(days)
            t = old_end - np.round(days[ok] * DAY_SECONDS)  # the user's last (or first) event, exactly
            out[ok, j] = (new_end - t) / DAY_SECONDS
    return out


def _events_only(run: RunState) -> RunState:
    """``run`` as if fitted on its event columns only (what new events without a catalogue must match)."""
    data = run.summary["data"]
    used = {r: c for r, c in (data.get("columns") or {}).items() if r in EVENT_COLUMNS}
    return replace(run, summary={**run.summary, "data": {**data, "columns": used}})


def update_users(base: UpdateBase, new: Dataset, embedder: Embedder | None = None, progress=None) -> UpdatedUsers:
    """Profile and place what the new events change (module docstring); nothing is written."""
    run, recipe = base.run, base.recipe
    if new.events.empty:
        raise DataError(f"{new.source}: no events to append", "give data with at least one event")
    check_columns(_events_only(run) if new.items is None else run, new)  # no catalogue given: the run's is used
    new, _ = with_catalogue(run, new)
    embedder = embedder or base.make_embedder()
    if vectors_name(embedder) != base.vectors_name:
        raise ParameterError(f"the run's profiles were embedded as {base.vectors_name}, not {vectors_name(embedder)}",
                             "update with the run's embedder, or segment the data again")
    report = progress or (lambda stage, done, total: None)
    merged = merged_dataset(run, new)
    old_ids = run.user_ids.astype(object)
    fresh = pd.Index(pd.unique(new.events["user_id"])).difference(pd.Index(old_ids), sort=False)
    user_ids = np.concatenate([old_ids, np.asarray(fresh, dtype=object)])
    index = pd.Index(user_ids)
    n_old, n = len(old_ids), len(user_ids)
    affected = index.isin(pd.Index(pd.unique(new.events["user_id"])))

    new_end = _end_of(merged.events)
    recompute = affected.copy()
    if new_end is not None:  # one holder of the merged data's last event: the affected users' end is the merged one
        ts = merged.events["timestamp"].to_numpy(dtype=np.float64)
        holder = merged.events["user_id"].to_numpy()[np.flatnonzero(ts == new_end)[0]]
        recompute[index.get_loc(holder)] = True
    codes = user_codes(merged.events, user_ids)
    sub = replace(merged, events=merged.events[recompute[codes]].reset_index(drop=True), fingerprint=f"{merged.fingerprint}:update")
    with Workspace(run.workspace).lock():
        cache = EmbeddingCache(Workspace(run.workspace).cache_dir, vectors_name(embedder))
        prof = build_profiles(sub, embedder, cache, progress=report, recipe=recipe)
    rows = index.get_indexer(prof.user_ids.astype(object))

    text = np.zeros((n, run.text.shape[1]), dtype=run.text.dtype)
    text[:n_old] = run.text
    text[rows] = prof.text
    fused = np.zeros((n, run.fused.shape[1]), dtype=run.fused.dtype)
    fused[:n_old] = run.fused
    changed = recompute.copy()
    features, shift, how = None, 0.0, "none"
    if prof.features is not None:
        names = prof.features.names
        raw = np.full((n, len(names)), np.nan)
        raw[:n_old] = run.feature_raw
        old_end = base.features_end
        moves = new_end is not None and old_end is not None and new_end != old_end and any(x in END_FEATURES for x in names)
        if moves:
            shift = (new_end - old_end) / DAY_SECONDS  # type: ignore[operator]
            ts_all = merged.events["timestamp"].to_numpy(dtype=np.float64)
            if _integral(ts_all) and _integral(np.asarray([old_end, new_end])):
                raw[:n_old] = shift_end_features(run.feature_raw, names, old_end, new_end)  # type: ignore[arg-type]
                how = "recovered"
            else:  # fractional seconds: recompute everyone's features from the events (no embedding)
                report("recomputing features", 0, 1)
                raw[:] = compute_features(merged, user_ids, None, recipe.features).raw
                how = "recomputed"
            changed[:n_old] = True
        raw[rows] = prof.features.raw
        scaled = recipe.features.scale.apply(raw)  # type: ignore[union-attr]  # row by row: the saved rows' bits again
        features = BehaviourFeatures(user_ids.astype(str), prof.features.specs, raw, scaled, prof.features.currency)
        fused[recompute] = recipe.fuse(text[recompute], scaled[recompute])
        recency_only = changed & ~recompute  # their text is the run's: only the behaviour columns change
        if recency_only.any() and recipe.text_scale is not None:  # (without a behaviour block, fused is the text)
            fused[recency_only, recipe.text_width :] = recipe.behaviour_columns(scaled[recency_only])
    else:
        fused[rows] = prof.fused

    report("assigning", 0, 1)
    part = None if features is None else replace(features, user_ids=features.user_ids[changed], raw=features.raw[changed],
                                                   scaled=features.scaled[changed])  # fmt: skip
    # The changed users' profiles before, and the smoothing candidates the run saved: whoever moved little (the
    # end moved, their events did not) is re-smoothed without a search, to the search's result (resmooth.py).
    saved = base.candidates or Candidates.unknown(n_old, 0)
    candidates = Candidates.unknown(n, saved.ids.shape[1]).put(np.arange(n_old), saved)
    before = np.zeros((int(changed.sum()), fused.shape[1]), dtype=fused.dtype)
    old_changed = np.flatnonzero(changed[:n_old])
    before[: len(old_changed)] = run.fused if len(old_changed) == n_old else run.fused[old_changed]  # old rows first, then the new
    everyone = bool(changed.all())  # the end moved: whole arrays, not copies of every row
    placement = base.segments.place(fused if everyone else fused[changed], part,
                                    (before, candidates if everyone else candidates.rows(changed)))
    if placement.candidates is not None:
        candidates = candidates.put(changed, placement.candidates)
    report("assigning", 1, 1)
    labels = np.full(n, -1, dtype=np.int64)
    top = np.full(n, -1, dtype=np.int64)
    labels[:n_old] = run.labels
    top[:n_old] = run.labels if run.top_labels is None else run.top_labels
    labels[changed], top[changed] = placement.leaf, placement.top
    own = np.full(n, np.nan)
    own[changed] = placement.own_distance
    outliers = np.full(n, "", dtype=object)
    if run.outliers is not None:
        outliers[:n_old] = run.outliers
    previous = np.full(n, -1, dtype=np.int64)
    previous[:n_old] = run.labels
    return UpdatedUsers(merged, user_ids, text, fused, features, labels, top, outliers, previous, affected, changed, own,
                        shift, how, prof.item_ids, prof.item_vectors, prof.n_texts_embedded, new_end,
                        candidates if placement.candidates is not None else None,
                        int(changed.sum()) if placement.searched is None else placement.searched)


def run_p99(base: UpdateBase, seed: int = 0) -> float:
    """The run's own 99th percentile distance to the top-level centroid, from ``P99_SAMPLE`` of its fitted users."""
    run = base.run
    rows = np.flatnonzero(run.fitted)
    if len(rows) > P99_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, P99_SAMPLE, replace=False))
    features = base.fit_features  # the fit's names and units; the run's own rows, scaled by the fit
    if features is not None:
        scaled = base.recipe.features.scale.apply(run.feature_raw[rows])  # type: ignore[union-attr]
        features = replace(features, user_ids=run.user_ids[rows], raw=run.feature_raw[rows], scaled=scaled)
    # Their profiles are the run's, so the candidates it saved prove their smoothing: no search (resmooth.py).
    saved = base.candidates
    d = base.segments.place(run.fused[rows], features, None if saved is None else (run.fused[rows], saved.rows(rows))).own_distance
    return float(np.quantile(d, 0.99)) if len(d) else float("nan")
