"""The Ray engine: profiles per partition of users, and placement of users, on Ray Data workers.

Profiles (tools/segment/profiles.py) are per user except for a few population-wide figures, the
run's :class:`~tools.segment.recipe.ProfileRecipe`. The engine therefore works in three steps:

1. embed every distinct text through the workspace cache with a pool of embedder actors
   (tools/distributed/embed.py), so every partition finds its texts in the cache;
2. decide the recipe's columns (feature layout, text source, collaborative axes) with
   :func:`build_profiles` on the data's users, or on a seeded sample of ``recipe_users`` of them
   past that; the end of the data and the top rating are the whole population's;
3. shuffle the events on a hash of the user id into partitions (``groupby(...).map_groups``) and
   profile each partition with the same :func:`build_profiles` and that recipe, then fit the
   scaling on the gathered rows exactly as the local engine fits it (``scale_features``, ``fit_recipe``).

On data within ``recipe_users`` every step is the local engine's computation on the same rows, so
the profiles, and the segments fitted on them, are the local engine's.

Past ``gather_users`` users no process gathers every profile (docs/scaling.md). The events go to the
workers as a Parquet file in the run's scratch folder (read there by ``ray.data.read_parquet``, not
shipped from this process), each partition writes its users' text vectors and raw features to a part
file (tools/segment/parts.py) and returns only the raw features, the text block's scaling is summed
part by part, and the run goes on with :class:`~tools.segment.parts.ProfileParts`: this process reads
back the fit sample alone, the workers place everyone else a part at a time (``place_parts``), and the
store and profiles.npz are written from the parts one at a time. The workers and this process then
share the workspace's file system, as they already do for the embedding cache.

Placing users (``assign_levels``) and scoring every user's recommendations (``top_k``) ship the
fitted model to the object store once and run it on slices of the users' rows.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tools.core.dataset import Dataset
from tools.core.memory import release_memory
from tools.embed.cache import EmbeddingCache
from tools.embed.embedding import Embedder, make_embedder, vectors_name
from tools.recommend.hybrid import HybridRecommender, TopK
from tools.segment.clustering import SegmentModel
from tools.segment.engine import StageProgress
from tools.segment.features import BehaviourFeatures, data_end, scale_features
from tools.segment.levels import Levels, assign_levels
from tools.segment.parts import ProfileParts, write_part
from tools.segment.profiles import Profiles, build_profiles, profile_texts
from tools.segment.recipe import BlockScale, ProfileRecipe, fit_recipe, rating_max
from tools.distributed.embed import PoolEmbedder

RECIPE_USERS = 20_000  # users the recipe's columns are decided on (all of them below this)
FIT_USERS = 100_000  # users the model is fitted on (a seeded sample past this); the rest are placed by the workers
PARTITION_USERS = 20_000  # about this many users per partition (and at least one partition per CPU)
GATHER_USERS = FIT_USERS  # past this many users, profiles stay in parts (module docstring)
EVENT_CHUNK = 1_000_000  # events converted to Arrow at a time when written for the workers
_ROW, _PART = "_segscope_row", "_segscope_part"


@dataclass(frozen=True)
class _PartContext:
    """What every partition needs besides its users' events: the same for all of them."""

    recipe: ProfileRecipe
    items: pd.DataFrame | None
    kind: str
    currency: str | None
    dtypes: dict
    cache_dir: str
    embedder: tuple[str, str | None, str | None]  # (name, precision, backend): made only if a text is not cached
    final: bool = False  # the recipe is a fitted run's: also return the scaled features and fused rows
    parts_dir: str | None = None  # keep the rows in a part file there, and return only the ids and raw features


def _profile_partition(group: pd.DataFrame, context_ref) -> dict[str, np.ndarray]:
    """One partition's users (all their events): text vectors and raw behaviour features, by the run's recipe."""
    import ray

    ctx: _PartContext = ray.get(context_ref)
    events = group.sort_values(_ROW, kind="stable").drop(columns=[_ROW, _PART]).reset_index(drop=True)
    events = events.astype(ctx.dtypes)
    part = Dataset(events=events, items=ctx.items, users=None, kind=ctx.kind, source="partition",  # type: ignore[arg-type]
                   fingerprint="partition", currency=ctx.currency)
    name, precision, backend = ctx.embedder
    embedder = make_embedder(name, precision, backend)  # lazy: it loads nothing while the cache has every text
    profiles = build_profiles(part, embedder, EmbeddingCache(ctx.cache_dir, vectors_name(embedder)), recipe=ctx.recipe)
    feats = profiles.features
    raw = np.zeros((len(profiles.user_ids), 0)) if feats is None else feats.raw
    if ctx.parts_dir is not None:  # the text stays in the part file; a retried task rewrites it whole
        number = int(group[_PART].iloc[0])
        write_part(ctx.parts_dir, number, profiles.user_ids, profiles.text, raw)
        return {"user_id": profiles.user_ids.astype(str), "raw": raw, "part": np.full(len(raw), number, dtype=np.int64)}
    out = {"user_id": profiles.user_ids.astype(str), "text": profiles.text, "raw": raw}
    if ctx.final:  # a fitted run's recipe: its scaling applies as it is, so the rows are final here
        out["scaled"] = np.zeros((len(profiles.user_ids), 0), dtype=np.float32) if feats is None else feats.scaled
        out["fused"] = profiles.fused
    return out


def _place_rows(batch: dict[str, np.ndarray], fitted_ref) -> dict[str, np.ndarray]:
    """The (top, leaf) segments of the users in ``batch["id"]`` (rows of the shipped profiles), from the fitted model."""
    import ray

    levels, model, profiles = ray.get(fitted_ref)
    rows = np.asarray(batch["id"], dtype=np.int64)
    top, leaf = assign_levels(levels, model, profiles.rows(rows))
    return {"id": rows, "top": np.asarray(top, dtype=np.int64), "leaf": np.asarray(leaf, dtype=np.int64)}


def _place_part(batch: dict[str, np.ndarray], fitted_ref, placed_ref) -> dict[str, np.ndarray]:
    """The (top, leaf) segments of the ``placed`` users (a mask over every row) in the parts ``batch["id"]``
    (positions in ``ProfileParts.parts``), placed from the fitted model on the part's profiles; "id" comes back as
    the users' row numbers."""
    import ray

    levels, model, parts = ray.get(fitted_ref)
    placed = ray.get(placed_ref)
    ids, tops, leaves = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for i in np.asarray(batch["id"], dtype=np.int64):
        inside = np.flatnonzero(placed[parts.rows_of[i]])
        if not len(inside):
            continue
        top, leaf = assign_levels(levels, model, parts.part(int(i)).rows(inside))
        ids.append(parts.rows_of[i][inside])
        tops.append(np.asarray(top, dtype=np.int64))
        leaves.append(np.asarray(leaf, dtype=np.int64))
    return {"id": np.concatenate(ids), "top": np.concatenate(tops), "leaf": np.concatenate(leaves)}


def _top_rows(batch: dict[str, np.ndarray], recommender_ref, k: int) -> dict[str, np.ndarray]:
    """The top-``k`` item columns and scores of the users in ``batch["id"]`` (row numbers), from the fitted recommender."""
    import ray

    rows = np.asarray(batch["id"], dtype=np.int64)
    cols, scores = ray.get(recommender_ref).top_columns(rows, k)
    return {"id": rows, "cols": cols, "scores": scores}


class RayEngine:
    """The local engine's stages on a Ray cluster (module docstring); connect with tools/distributed/cluster.py first."""

    name = "ray"

    def __init__(self, actors: int = 2, recipe_users: int = RECIPE_USERS, fit_users: int | None = FIT_USERS,
                 partition_users: int = PARTITION_USERS, seed: int = 0, gather_users: int = GATHER_USERS) -> None:
        self.actors = actors
        self.gather_users = gather_users
        self.recipe_users = recipe_users
        self.fit_users = fit_users
        self.partition_users = partition_users
        self.seed = seed
        self.pool: PoolEmbedder | None = None
        self.stats: dict[str, float] = {}  # the last call's stage seconds and bytes shuffled (the run's timings.json)

    def _partitions(self, n_users: int) -> int:
        import ray

        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return max(cpus, -(-n_users // self.partition_users))

    def build_profiles(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, alpha: float,
                       progress: StageProgress, exclude: np.ndarray | None, order: bool = True,
                       scratch: Path | None = None) -> Profiles | ProfileParts:
        """Every user's profile (module docstring): gathered here, or past ``gather_users`` users (with a
        ``scratch`` folder to keep them in) as :class:`ProfileParts` in a folder of ``scratch``."""
        report = progress
        misses_before = cache.misses
        self.stats.clear()  # a run's figures: this is its first stage
        clock = _Clock(self.stats)
        texts = self._embed_texts(data, embedder, cache, report)
        clock("ray_embed_s")

        ev = data.events
        user_ids = np.asarray(pd.unique(ev["user_id"]), dtype=object)
        excluded = pd.Index([] if exclude is None else exclude)
        population = None if not len(excluded) else ~pd.Index(user_ids).isin(excluded)
        sample = _recipe_sample(user_ids, population, self.recipe_users, self.seed)
        report("building profiles", 0, 3)
        if sample is None:
            decided = build_profiles(data, self.pool, cache, alpha=alpha, exclude=exclude, order=order)
        else:
            decided = build_profiles(data.for_users(sample), self.pool, cache, alpha=alpha, order=order)
        recipe = _whole_population(decided.recipe, data, user_ids, population)  # type: ignore[arg-type]
        report("building profiles", 1, 3)
        clock("ray_recipe_s")

        if scratch is not None and len(user_ids) > self.gather_users:
            parts = self._profile_parts(data, user_ids, population, decided, recipe, cache, embedder, scratch,
                                        misses_before, len(texts), clock)
            report("building profiles", 3, 3)
            return parts
        rows = self._profile_partitions(data, user_ids, recipe, cache, embedder, final=False)
        report("building profiles", 2, 3)
        clock("ray_partitions_s")
        profiles = _finish(data, user_ids, population, decided, recipe, rows["text"], rows["raw"], misses_before, cache, len(texts))
        report("building profiles", 3, 3)
        clock("ray_scaling_s")
        return profiles

    def _embed_texts(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, report: StageProgress) -> list[str]:
        """Every distinct text of ``data`` embedded by the actor pool into ``cache``, saved for the partitions to read."""
        self.pool = PoolEmbedder(embedder, self.actors)
        texts = profile_texts(data)
        cache.embed(texts, self.pool, progress=lambda done, n: report("embedding texts", done, n))
        cache.save()  # the partitions read the vectors from the workspace's cache file
        return texts

    def _profile_partitions(self, data: Dataset, user_ids: np.ndarray, recipe: ProfileRecipe, cache: EmbeddingCache,
                            embedder: Embedder, final: bool) -> dict[str, np.ndarray]:
        """The events shuffled on a hash of the user id into partitions, each profiled by ``recipe`` on a worker;
        the rows gathered in ``user_ids``' order ("text", "raw", and with ``final`` "scaled" and "fused")."""
        import ray
        import ray.data

        ev = data.events
        codes = _user_codes(ev, user_ids)
        n_parts = self._partitions(len(user_ids))
        frame = ev.assign(**{_ROW: np.arange(len(ev)), _PART: _user_hash(user_ids)[codes] % n_parts})
        if cache.path is None:
            raise ValueError("the Ray engine reads the vectors from a cache on disk (the workspace's)")
        context = _PartContext(recipe, data.items, data.kind, data.currency, dict(ev.dtypes), str(cache.path.parent.resolve()),
                               _spec(embedder), final)
        events = ray.data.from_pandas(frame)
        del frame
        self.stats["ray_shuffled_bytes"] = float(events.size_bytes())  # every event goes to its user's partition once
        parts = (
            events
            .groupby(_PART, num_partitions=n_parts)
            .map_groups(_profile_partition, fn_args=(ray.put(context),), batch_format="pandas")
        )
        keys = ("text", "raw", "scaled", "fused") if final else ("text", "raw")
        got_ids: list[np.ndarray] = []
        got: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for batch in parts.iter_batches(batch_size=None, batch_format="numpy"):
            got_ids.append(np.asarray(batch["user_id"], dtype=object))
            for k in keys:
                got[k].append(np.asarray(batch[k], dtype=np.float64 if k == "raw" else np.float32))
        order = pd.Index(np.concatenate(got_ids)).get_indexer(user_ids)
        if (order < 0).any() or len(order) != sum(len(x) for x in got_ids):
            raise RuntimeError("the partitions did not return every user exactly once")
        return {k: np.concatenate(v).reshape(len(order), -1)[order] for k, v in got.items()}

    def _profile_parts(self, data: Dataset, user_ids: np.ndarray, population: np.ndarray | None, decided: Profiles,
                       recipe: ProfileRecipe, cache: EmbeddingCache, embedder: Embedder, scratch: Path,
                       misses_before: int, n_texts: int, clock: _Clock) -> ProfileParts:
        """Each partition profiled by ``recipe`` into a part file of a new folder of ``scratch``; the scaling fitted
        here on the gathered raw features and on the text block summed part by part (:func:`_text_scale`)."""
        import tempfile

        import ray
        import ray.data

        if cache.path is None:
            raise ValueError("the Ray engine reads the vectors from a cache on disk (the workspace's)")
        # Absolute: the workers' working folder is not this process's (a relative workspace would land elsewhere).
        folder = Path(tempfile.mkdtemp(dir=Path(scratch).resolve(), prefix=".parts.", suffix=".tmp"))  # a killed run's is cleaned up
        try:
            n_parts = self._partitions(len(user_ids))
            events_file = folder / "events.parquet"
            self.stats["ray_shuffled_bytes"] = float(_write_events(data.events, user_ids, n_parts, events_file))
            release_memory()
            context = _PartContext(recipe, data.items, data.kind, data.currency, dict(data.events.dtypes),
                                   str(cache.path.parent.resolve()), _spec(embedder), parts_dir=str(folder))
            mapped = (
                ray.data.read_parquet(str(events_file))
                .groupby(_PART, num_partitions=n_parts)
                .map_groups(_profile_partition, fn_args=(ray.put(context),), batch_format="pandas")
            )
            got_ids, got_raw, got_part = [], [], []
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                got_ids.append(np.asarray(batch["user_id"], dtype=object))
                got_raw.append(np.asarray(batch["raw"], dtype=np.float64))
                got_part.append(np.asarray(batch["part"], dtype=np.int64))
            events_file.unlink()
            ids, part = np.concatenate(got_ids), np.concatenate(got_part)
            rows = pd.Index(user_ids).get_indexer(ids)
            if len(ids) != len(user_ids) or (rows < 0).any() or np.bincount(rows, minlength=len(user_ids)).max() != 1:
                raise RuntimeError("the partitions did not return every user exactly once")
            returned = np.concatenate(got_raw).reshape(len(ids), -1)
            del got_raw
            raw = np.empty_like(returned)
            raw[rows] = returned  # in the run's row order, as gathered locally
            del returned
            numbers = np.unique(part)
            rows_of = tuple(rows[part == number] for number in numbers)  # each in its part files' order
            clock("ray_partitions_s")

            parts = ProfileParts(folder, tuple(int(x) for x in numbers), rows_of, user_ids,
                                 () if decided.features is None else tuple(decided.features.specs), data.currency,
                                 decided.alpha, decided.item_ids, decided.item_vectors, cache.misses - misses_before,
                                 n_texts, decided.text_source, recipe)
            features = None
            if decided.features is not None:
                specs = decided.features.specs
                features = BehaviourFeatures(user_ids, specs, raw, scale_features(raw, specs, population), data.currency)
            fitted = fit_recipe(data.events, user_ids, None, features, recipe.alpha, recipe.text_source, recipe.collaborative,
                                population, text_scale=_text_scale(parts, population) if features is not None else None)
            del features, raw
            release_memory()
            clock("ray_scaling_s")
            return replace(parts, recipe=fitted)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def place_parts(self, levels: Levels, model: SegmentModel, parts: ProfileParts, placed: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(top, leaf) of the ``placed`` rows of ``parts`` (a mask over every row), each part placed on a worker;
        the other rows' entries are -1."""
        import ray
        import ray.data

        clock = _Clock(self.stats)
        n = len(parts.user_ids)
        top, leaf = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
        placed = np.asarray(placed, dtype=bool)
        if placed.any():
            numbers = ray.data.range(len(parts.parts), override_num_blocks=len(parts.parts))  # "id": a part's position
            mapped = numbers.map_batches(_place_part, fn_args=(ray.put((levels, model, parts)), ray.put(placed)),
                                         batch_size=1, batch_format="numpy")
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                top[batch["id"]], leaf[batch["id"]] = batch["top"], batch["leaf"]
            if (leaf[placed] < 0).any():
                raise RuntimeError("the workers did not place every user")
        clock("ray_place_s")
        return top, leaf

    def profiles_like(self, data: Dataset, embedder: Embedder, cache: EmbeddingCache, recipe: ProfileRecipe,
                      progress: StageProgress | None = None) -> Profiles:
        """The local ``build_profiles(data, ..., recipe=recipe)``, per partition on the workers (for ``assign``)."""
        report = progress or (lambda stage, done, total: None)
        misses_before = cache.misses
        texts = self._embed_texts(data, embedder, cache, report)
        user_ids = np.asarray(pd.unique(data.events["user_id"]), dtype=object)
        if recipe.features is not None and recipe.features.end is None:  # the data's own end, as locally: not a partition's
            recipe = _ended(recipe, data, np.ones(len(data.events), dtype=bool))
        report("building profiles", 0, 2)
        # One user profiled here gives what is the same for everyone: the feature columns and the catalogue's vectors.
        head = build_profiles(data.for_users(user_ids[:1]), self.pool, cache, recipe=recipe)
        rows = self._profile_partitions(data, user_ids, recipe, cache, embedder, final=True)
        report("building profiles", 1, 2)
        features = None
        if head.features is not None:
            features = BehaviourFeatures(user_ids, head.features.specs, rows["raw"], rows["scaled"], data.currency)
        profiles = Profiles(
            user_ids=user_ids, text=rows["text"], features=features, fused=rows["fused"], alpha=head.alpha,
            item_ids=head.item_ids, item_vectors=head.item_vectors, n_texts_embedded=cache.misses - misses_before,
            n_texts_total=len(texts), text_source=head.text_source, recipe=recipe,
        )
        report("building profiles", 2, 2)
        return profiles

    def assign_levels(self, levels: Levels, model: SegmentModel, profiles: Profiles) -> tuple[np.ndarray, np.ndarray]:
        import ray

        n = len(profiles.user_ids)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        clock = _Clock(self.stats)
        top, leaf = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
        for batch in self._over_rows(n, _place_rows, (ray.put((levels, model, profiles)),)):
            top[batch["id"]], leaf[batch["id"]] = batch["top"], batch["leaf"]
        if (leaf < 0).any():
            raise RuntimeError("the workers did not place every user")
        clock("ray_place_s")
        return top, leaf

    def _over_rows(self, n: int, fn, fn_args: tuple) -> Iterator[dict[str, np.ndarray]]:
        """``fn(batch, *fn_args)`` on the workers over slices of the row numbers ``0..n-1`` (``batch["id"]``), one
        slice per partition: the batches it returns, in no particular order."""
        import ray.data

        slices = ray.data.range(n, override_num_blocks=min(n, self._partitions(n)))
        mapped = slices.map_batches(fn, fn_args=fn_args, batch_size=None, batch_format="numpy")
        yield from mapped.iter_batches(batch_size=None, batch_format="numpy")

    def top_k(self, recommender: HybridRecommender, k: int) -> TopK:
        """``recommender.top_k(None, k)`` with the users scored in slices on the workers (the model shipped once)."""
        import ray

        n = recommender.matrix_.shape[0]
        rows = np.arange(n)
        width = recommender.top_columns(rows[:0], k)[0].shape[1]  # the local call's checks and width, before any work
        cols, scores = np.full((n, width), -2, dtype=np.int64), np.zeros((n, width), dtype=np.float32)
        if n:
            for batch in self._over_rows(n, _top_rows, (ray.put(recommender), k)):
                cols[batch["id"]], scores[batch["id"]] = batch["cols"], batch["scores"]
        if (cols < -1).any():
            raise RuntimeError("the workers did not score every user")
        return recommender.as_top_k(rows, cols, scores)


class _Clock:
    """Seconds since the last call, added to ``stats[key]`` at each call (a stage's wall time)."""

    def __init__(self, stats: dict[str, float]) -> None:
        self.stats, self.last = stats, time.perf_counter()

    def __call__(self, key: str) -> None:
        now = time.perf_counter()
        self.stats[key] = self.stats.get(key, 0.0) + now - self.last
        self.last = now


def _write_events(events: pd.DataFrame, user_ids: np.ndarray, n_parts: int, path: Path) -> int:
    """``events`` with their row number and their user's partition, as a Parquet file the workers read, converted
    ``EVENT_CHUNK`` rows at a time; returns the bytes they take in Arrow (what the shuffle moves)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    codes = _user_codes(events, user_ids)
    partition = (_user_hash(user_ids) % n_parts)[codes].astype(np.int64)
    schema = pa.Schema.from_pandas(events.head(0), preserve_index=False)
    for i, name in enumerate(schema.names):  # object columns: strings (an empty frame says nothing of them)
        if events[name].dtype == object:
            schema = schema.set(i, pa.field(name, pa.string()))
    schema = schema.append(pa.field(_ROW, pa.int64())).append(pa.field(_PART, pa.int64()))
    total = 0
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(events), 1), EVENT_CHUNK):
            stop = min(start + EVENT_CHUNK, len(events))
            chunk = events.iloc[start:stop].assign(**{_ROW: np.arange(start, stop), _PART: partition[start:stop]})
            table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
            total += table.nbytes
            writer.write_table(table, row_group_size=max(1, min(EVENT_CHUNK, len(table))))
    return total


def _user_codes(events: pd.DataFrame, user_ids: np.ndarray) -> np.ndarray:
    """Each event's row in ``user_ids`` (the events' users in order of first appearance, ``pd.unique``'s order):
    ``pd.factorize`` numbers them in that order, on the string column as it is (``Index.get_indexer`` would
    first turn it into one Python string per event)."""
    codes, uniques = pd.factorize(events["user_id"])
    if len(uniques) != len(user_ids) or not np.array_equal(np.asarray(uniques, dtype=object), user_ids):
        raise RuntimeError("the users are not the events' users in order of first appearance")
    return codes


def _text_scale(parts: ProfileParts, population: np.ndarray | None, block_rows: int = 65_536) -> BlockScale:
    """The text block's :class:`BlockScale` over the ``population`` rows (None: all), read part by part and bit for
    bit what ``BlockScale.of`` gives on the gathered block: the float32 mean summed row after row in row order (as
    numpy reduces a block down its rows), then every row's squared distance to it and their mean."""
    pop = np.ones(len(parts.user_ids), dtype=bool) if population is None else np.asarray(population, dtype=bool)
    total, count = None, 0
    for start, text in parts.text_blocks(block_rows):
        rows = text[pop[start : start + len(text)]]
        if len(rows):
            total = np.add.reduce(rows if total is None else np.vstack([total[None, :], rows]), axis=0)
            count += len(rows)
    if total is None:
        raise RuntimeError("no user's text to scale the text block by")
    mean = (total / count)[None, :]
    norms, done = np.empty(count), 0
    for start, text in parts.text_blocks(block_rows):
        rows = text[pop[start : start + len(text)]]
        centred = (rows - mean).astype(np.float64)
        norms[done : done + len(rows)] = (centred * centred).sum(axis=1)
        done += len(rows)
    return BlockScale(mean, float(norms.mean()))


def _user_hash(user_ids: np.ndarray) -> np.ndarray:
    """A stable hash of each user id (the same in every process): which partition the user's events go to."""
    return pd.util.hash_pandas_object(pd.Series(user_ids, dtype=object), index=False).to_numpy()


def _spec(embedder: Embedder) -> tuple[str, str | None, str | None]:
    return embedder.name, getattr(embedder, "precision", None), getattr(embedder, "backend", None)


def _recipe_sample(user_ids: np.ndarray, population: np.ndarray | None, cap: int, seed: int) -> np.ndarray | None:
    """None when every user decides the recipe (as locally); else a seeded sample of ``cap`` population users."""
    if len(user_ids) <= cap:
        return None
    pool = user_ids if population is None else user_ids[population]
    rng = np.random.default_rng(seed)
    return pool[np.sort(rng.choice(len(pool), size=min(cap, len(pool)), replace=False))]


def _population_events(data: Dataset, user_ids: np.ndarray, population: np.ndarray | None) -> np.ndarray:
    """A mask over the events: those of the population's users."""
    if population is None:
        return np.ones(len(data.events), dtype=bool)
    return pd.Index(user_ids[population]).get_indexer(data.events["user_id"]) >= 0


def _whole_population(recipe: ProfileRecipe, data: Dataset, user_ids: np.ndarray, population: np.ndarray | None) -> ProfileRecipe:
    """``recipe`` with the end of the data and the top rating of the whole population, as the local engine has them."""
    pop_events = _population_events(data, user_ids, population)
    ev = data.events
    return replace(_ended(recipe, data, pop_events), rating_max=rating_max(ev[pop_events]) or rating_max(ev))


def _ended(recipe: ProfileRecipe, data: Dataset, pop_events: np.ndarray) -> ProfileRecipe:
    """``recipe`` whose feature layout ends where the events in ``pop_events`` end (every partition then measures
    recency and tenure from that one end, as the local engine does from the whole data's)."""
    if recipe.features is None:
        return recipe
    end = data_end(data.events["timestamp"].to_numpy(dtype=np.float64), pop_events)
    return replace(recipe, features=replace(recipe.features, end=end))


def _finish(data: Dataset, user_ids: np.ndarray, population: np.ndarray | None, decided: Profiles, recipe: ProfileRecipe,
            text: np.ndarray, raw: np.ndarray | None, misses_before: int, cache: EmbeddingCache, n_texts: int) -> Profiles:
    """The gathered rows scaled and fused as :func:`build_profiles` scales and fuses them (fitted on the population)."""
    features = None
    if decided.features is not None and raw is not None:
        specs = decided.features.specs
        features = BehaviourFeatures(user_ids, specs, raw, scale_features(raw, specs, population), data.currency)
    fitted = fit_recipe(data.events, user_ids, text, features, recipe.alpha, recipe.text_source, recipe.collaborative,
                        population)
    fused = fitted.fuse(text, None if features is None else features.scaled)
    return Profiles(
        user_ids=user_ids, text=text, features=features, fused=fused, alpha=decided.alpha,
        item_ids=decided.item_ids, item_vectors=decided.item_vectors,
        n_texts_embedded=cache.misses - misses_before, n_texts_total=n_texts,
        text_source=decided.text_source, recipe=fitted,
    )
