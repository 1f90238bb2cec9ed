"""Place the users of new data in a fitted run's segments, without re-fitting: ``segscope assign``.

New data is profiled exactly as the run profiled its own users: the same embedder
(named in the run), the workspace's embedding cache (a text already embedded is
never embedded again; new item texts are embedded once and cached), and the run's
:class:`~tools.segment.recipe.ProfileRecipe` (its feature columns and scaling,
centring and weights), so a user lands in the run's space rather than in one
scaled on the new data. The run's model (tools/segment/fitted.py) then assigns
each user: the nearest top-level centroid after smoothing, the sub-segment
down the run's splits. On the run's own data this gives back its assignments.csv
exactly; segment ids are the run's.

Recency-like features are measured to the end of the data given (the new data's
last event), as the fit measured them to the end of its own.

With ``append``, the new data continues the run's: each of its users is profiled
over their events in the run's data plus the new ones (a later slice of the same
log, new items added to the run's catalogue), which is where a run on the whole log
would profile them. Without it, the new data is all there is to know about its users.

Each row of the result: ``user_id``, ``segment_id`` (the leaf), ``top_segment_id``,
``distance`` (to the user's top-level centroid, in the space the top level assigns
in), ``next_segment_id`` and ``next_distance`` (the nearest other top-level
segment), ``distance_percentile`` (the share of the run's own users nearer to
their centroid than this user is to theirs: above 0.99, the user fits no segment
as well as 99% of the run's users fit theirs) and ``run_segment_id`` (the user's
segment in the run, empty for users the run did not have).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.errors import DataError, ParameterError, WorkspaceError
from tools.core.run_state import RunState, load_run
from tools.core.workspace import Workspace, atomic_write_bytes
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder, make_embedder, vectors_name
from tools.segment.features import BehaviourFeatures, FeatureSpec, feature_label
from tools.segment.fitted import FittedSegments, Placement, load_fitted
from tools.segment.engine import LOCAL, Engine
from tools.segment.profiles import Profiles
from tools.segment.recipe import ProfileRecipe, fit_recipe

ProgressFn = Callable[[str, int, int], None]
COLUMNS = ("user_id", "segment_id", "top_segment_id", "distance", "next_segment_id", "next_distance",
           "distance_percentile", "run_segment_id")  # fmt: skip
EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class FittedRun:
    """A workspace's current run, ready to profile and place new users."""

    run: RunState
    recipe: ProfileRecipe
    segments: FittedSegments
    fit_features: BehaviourFeatures | None
    fit_distances: np.ndarray  # sorted: each fitted user's distance to their top-level centroid
    fit_agreement: float  # share of the run's users the loaded model places in their saved segment (1.0 expected)
    own: Placement  # the run's users placed by the loaded model

    @property
    def key(self) -> str:
        return str(self.run.summary["run_key"])

    @property
    def embedder_name(self) -> str:
        return str(self.run.summary["parameters"]["embedder"])

    @property
    def vectors_name(self) -> str:
        """The name the run's vectors are cached under (tools/embed/embedding.py ``vectors_name``: model and variant)."""
        params = self.run.summary["parameters"]
        return str(params.get("embed_vectors") or params["embedder"])

    def make_embedder(self) -> Embedder:
        """The run's embedder on the backend that made its vectors (int8 ONNX vectors are not fp32 ones)."""
        return make_embedder(self.embedder_name, backend=self.run.summary["parameters"].get("embed_backend") or None)

    def percentile(self, distance: np.ndarray) -> np.ndarray:
        """The share of the run's users at most this far from their own centroid."""
        return np.searchsorted(self.fit_distances, distance, side="right") / max(len(self.fit_distances), 1)


def fit_features_of(run: RunState) -> BehaviourFeatures | None:
    """The run's users' behaviour features as the fit computed them (raw saved; scaling recomputed, bit for bit)."""
    if run.summary["data"]["kind"] != "behaviour" or not run.feature_names:
        return None
    from tools.segment.features import fit_scale

    # The labels the run itself printed (a transaction log reads "days since last purchase"), else the plain ones.
    printed = {t["feature"]: (t["label"], t["unit"]) for seg in run.summary["segments"] for t in seg.get("profile", [])}
    specs = tuple(FeatureSpec(name, *printed.get(name, feature_label(name))) for name in run.feature_names)
    scaled = fit_scale(run.feature_raw, specs, run.fitted).apply(run.feature_raw)
    return BehaviourFeatures(run.user_ids, specs, run.feature_raw, scaled, run.summary["data"].get("currency"))


def fit_recipe_of(fit: RunState, params: dict, features: BehaviourFeatures | None) -> ProfileRecipe:
    """The recipe run ``fit`` was profiled with, derived again from its saved arrays (``params``: the
    parameters of the run being assigned to or updated, whose fit ``fit`` is)."""
    return fit_recipe(fit.data.events, fit.user_ids, fit.text, features, float(params.get("alpha", 0.5)),
                      str(params.get("text_source", "embedder")),
                      population=None if fit.fitted.all() else fit.fitted,  # all: the same figures, without a slow filter
                      order_weight=float(params.get("order_weight", 0.0)))


def load_fitted_run(workspace: str | Path, key: str | None = None) -> FittedRun:
    """The current run of ``workspace`` (or run ``key``) with its recipe and model; WorkspaceError when it cannot assign."""
    run = load_run(workspace, key)
    params, kind = run.summary["parameters"], run.summary["data"]["kind"]
    if not (run.run_dir / "model.npz").exists():
        raise WorkspaceError(f"{run.run_dir}: the run has no saved model", "run `segscope segment` again")
    # An updated run (tools/update.py) keeps the recipe of the run that was fitted: derive it from that one.
    fit = run if params.get("fitted_run") in (None, run.summary["run_key"]) else load_run(workspace, str(params["fitted_run"]))
    fit_features = fit_features_of(fit)
    recipe = fit_recipe_of(fit, params, fit_features)
    features = fit_features
    if fit is not run and recipe.features is not None:
        features = replace(fit_features_of(run), scaled=recipe.features.scale.apply(run.feature_raw))  # type: ignore[type-var]
    text_model = kind == "text" and params.get("algorithm", "kmeans") == "kmeans"
    segments = load_fitted(run.run_dir, fit_features, text_model)
    own = segments.place(run.fused, features)
    top = run.labels if run.top_labels is None else run.top_labels
    agreement = float(np.mean((own.leaf == run.labels) & (own.top == top))) if len(top) else 1.0
    return FittedRun(run, recipe, segments, features, np.sort(own.own_distance), agreement, own)


def _role(role: str, column: str | None = None) -> str:
    return role if column is None or column == role else f"{column} ({role})"


def check_columns(run: RunState, data: Dataset) -> list[str]:
    """DataError naming the columns the fit used that ``data`` lacks; warnings for what else differs."""
    fit = run.summary["data"]
    if data.kind != fit["kind"]:
        raise DataError(f"{data.source}: {data.kind} data, but the run was fitted on {fit['kind']} data",
                        "assign data of the same shape as the fit's")
    if data.entity != fit.get("entity", "user"):
        raise DataError(f"{data.source}: rows are {data.entity}s, but the run segmented {fit.get('entity', 'user')}s",
                        f"load it with --entity {fit.get('entity', 'user')}")
    used: dict[str, str] = fit.get("columns") or {}
    if used and data.columns:
        missing = [_role(r, c) for r, c in used.items() if r not in data.columns]
        extra = [_role(r, c) for r, c in data.columns.items() if r not in used]
    else:  # a run saved before columns were recorded: compare the normalised tables
        fit_data = run.data
        missing = [c for c in fit_data.events.columns if fit_data.events[c].notna().any() and not data.events[c].notna().any()]
        if fit_data.items is not None:
            have = data.items if data.items is not None else pd.DataFrame(columns=fit_data.items.columns)
            missing += [c for c in fit_data.items.columns if fit_data.items[c].notna().any() and not have[c].notna().any()]
        extra = []
    if missing:
        raise DataError(
            f"{data.source}: missing column{'s' if len(missing) > 1 else ''} the run was fitted with: {', '.join(missing)}",
            "assign data with the same columns as the fit's (or pass --map ROLE=COLUMN), or segment the new data instead",
        )
    return [f"{data.source}: columns the run was not fitted with are not used by its segments: {', '.join(extra)}"] if extra else []


@dataclass(frozen=True)
class Assignment:
    """Where the users of some data land in a fitted run (module docstring: the columns)."""

    run_key: str
    source: str
    user_ids: np.ndarray
    placement: Placement
    percentile: np.ndarray
    run_segment: np.ndarray  # int64, -1 for users the run did not have
    profiles: Profiles
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_new_users(self) -> int:
        return int((self.run_segment < 0).sum())

    def table(self) -> pd.DataFrame:
        nxt, nxt_d = self.placement.next_nearest()
        return pd.DataFrame({
            "user_id": self.user_ids.astype(str),
            "segment_id": self.placement.leaf,
            "top_segment_id": self.placement.top,
            "distance": np.round(self.placement.own_distance, 6),
            "next_segment_id": _ids_or_empty(nxt),
            "next_distance": np.round(nxt_d, 6),
            "distance_percentile": np.round(self.percentile, 4),
            "run_segment_id": _ids_or_empty(self.run_segment),
        })[list(COLUMNS)]  # fmt: skip

    def sizes(self) -> dict[int, int]:
        ids, counts = np.unique(self.placement.leaf, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}


def _ids_or_empty(ids: np.ndarray) -> pd.Series:
    out = pd.Series(ids, dtype="Int64")
    out[ids < 0] = pd.NA
    return out


def with_catalogue(run: RunState, data: Dataset) -> tuple[Dataset, list[str]]:
    """``data`` with the run's catalogue when it brings none of its own (events referring to the fit's items)."""
    fit_items = run.data.items
    if data.items is not None or fit_items is None or data.kind != "behaviour":
        return data, []
    note = f"{data.source}: no catalogue given; using the run's ({len(fit_items):,} items)"
    return replace(data, items=fit_items), [note]


def profile_like_run(fitted: FittedRun, data: Dataset, embedder: Embedder | None = None,
                     progress: ProgressFn | None = None, engine: Engine = LOCAL) -> tuple[Profiles, list[str]]:
    """Profiles of ``data``'s users in the run's space, through the workspace's embedding cache (under its lock);
    ``engine`` says where they are built (tools/segment/engine.py)."""
    warnings = check_columns(fitted.run, data)
    data, notes = with_catalogue(fitted.run, data)
    embedder = embedder or fitted.make_embedder()
    if vectors_name(embedder) != fitted.vectors_name:
        raise ParameterError(f"the run's profiles were embedded as {fitted.vectors_name}, not {vectors_name(embedder)}",
                             f"assign with the run's embedder ({fitted.embedder_name}, backend "
                             f"{fitted.run.summary['parameters'].get('embed_backend') or 'auto'}), or segment the data again")
    ws = Workspace(fitted.run.workspace)
    with ws.lock():
        # The run's cache name: a text the run embedded is read back, never embedded again.
        cache = EmbeddingCache(ws.cache_dir, vectors_name(embedder))
        profiles = engine.profiles_like(data, embedder, cache, fitted.recipe, progress)
    return profiles, [*warnings, *notes]


def continued(run: RunState, later: Dataset) -> Dataset:
    """``later``'s users with their events in the run's data too, and the run's catalogue plus ``later``'s new items."""
    from tools.data.ingest import fingerprint

    fit = run.data
    users = pd.Index(pd.unique(later.events["user_id"]))
    events = pd.concat([fit.events[fit.events["user_id"].isin(users)], later.events], ignore_index=True)
    items = fit.items
    if later.items is not None:
        fresh = later.items[~later.items["item_id"].isin(pd.Index([] if items is None else items["item_id"]))]
        items = fresh.reset_index(drop=True) if items is None else pd.concat([items, fresh], ignore_index=True)
    return replace(later, events=events, items=items, source=f"{fit.source} + {later.source}",
                   fingerprint=fingerprint(events, items, None, later.kind, later.entity, later.currency))


def assign_dataset(fitted: FittedRun, data: Dataset, embedder: Embedder | None = None,
                   progress: ProgressFn | None = None, append: bool = False, engine: Engine = LOCAL) -> Assignment:
    """Every user of ``data`` placed in the run's segments (nothing written); ``append``: module docstring;
    ``engine``: where the profiles are built (the placement itself runs here)."""
    if data.events.empty:
        raise DataError(f"{data.source}: no events to assign", "give data with at least one event")
    if append:
        check_columns(fitted.run, data)  # before the tables are joined, so the message names the new data
        data = continued(fitted.run, data)
    profiles, warnings = profile_like_run(fitted, data, embedder, progress, engine)
    report = progress or (lambda stage, done, total: None)
    report("assigning", 0, 1)
    placement = fitted.segments.place(profiles.fused, profiles.features)
    report("assigning", 1, 1)
    rows = pd.Index(fitted.run.user_ids).get_indexer(profiles.user_ids.astype(object))
    run_segment = np.where(rows >= 0, fitted.run.labels[np.clip(rows, 0, None)], -1).astype(np.int64)
    return Assignment(fitted.key, data.source, profiles.user_ids, placement, fitted.percentile(placement.own_distance),
                      run_segment, profiles, tuple(warnings))


def default_out(workspace: Path, assignment: Assignment, fingerprint: str, append: bool = False) -> Path:
    """WORKSPACE/exports/assign-RUN-DATA.csv (``-appended`` when the data continued the run's)."""
    return Path(workspace) / EXPORTS_DIR / f"assign-{assignment.run_key[:12]}-{fingerprint[:12]}{'-appended' if append else ''}.csv"


def check_out(out: Path) -> Path:
    """An --out the table can be written to (checked before any work is done)."""
    if out.is_dir():
        raise ParameterError(f"--out {out} is a folder", "give a file name, e.g. --out assigned.csv")
    if not out.parent.is_dir():
        raise ParameterError(f"--out {out}: the folder {out.parent} does not exist", "create it first or write elsewhere")
    return out


def write_assignment(assignment: Assignment, path: Path) -> Path:
    """The table as CSV at ``path``, whole or not at all."""
    buf = io.StringIO()
    assignment.table().to_csv(buf, index=False, lineterminator="\n")
    atomic_write_bytes(Path(path), buf.getvalue().encode("utf-8"))
    return Path(path)
