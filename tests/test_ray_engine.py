"""`segment --engine ray`: the sample through the local engine and through a real Ray cluster gives the same
segments (ARI >= 0.99, the same names), profiles built per partition equal to the local ones; texts are embedded by
the actor pool through the workspace's cache; an unreachable address is one line, exit 2, nothing written; and
`segscope` without --engine ray never imports Ray.

The cluster is CI's (``SEGSCOPE_TEST_RAY_ADDRESS``, a head .ci/run starts with `ray start --head` on loopback).
Without it these tests skip, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.chroma_server import free_port
from tools.data.ingest import load_dataset
from tools.data.sample import generate_sample
from tools.pipeline import RunParams, segment_dataset
from tools.segment.profiles import profile_texts

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "segscope"
PARAMS = RunParams(seed=11, embedder="hashing")
USERS = 500


def _needed(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Ray engine tests: {reason}")
    pytest.skip(reason)


def _ray_installed() -> None:
    # Looked up, not imported: the engine sets Ray's loopback switch before the first import (tools/distributed/cluster.py).
    if importlib.util.find_spec("ray") is None:
        _needed("Ray is not installed (pip install -e '.[cluster]')")


@pytest.fixture(scope="module")
def ray_address() -> str:
    _ray_installed()
    address = os.environ.get("SEGSCOPE_TEST_RAY_ADDRESS")
    if not address:
        _needed("no Ray head: set SEGSCOPE_TEST_RAY_ADDRESS=HOST:PORT (`ray start --head`, see README)")
    return address


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray-data") / "data"
    generate_sample(root, n_users=USERS, seed=11)
    return root


@pytest.fixture(scope="module")
def local_ws(data, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("local") / "ws"
    segment_dataset(load_dataset(data), ws, PARAMS, write_store=False)
    return ws


@pytest.fixture(scope="module")
def ray_run(data, ray_address, tmp_path_factory):
    """The sample through the Ray engine, in this process (so the engine can be looked at afterwards)."""
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    ws = tmp_path_factory.mktemp("ray") / "ws"
    engine = RayEngine(seed=PARAMS.seed)
    with ray_session(ray_address):
        run = segment_dataset(load_dataset(data), ws, PARAMS, write_store=False, engine=engine)
        again, second = RayEngine(seed=PARAMS.seed), tmp_path_factory.mktemp("ray-again") / "ws"
        shutil.copytree(ws / ".segscope" / "cache", second / ".segscope" / "cache")  # the first run's cache: nothing to embed
        segment_dataset(load_dataset(data), second, PARAMS, write_store=False, engine=again)
    return ws, run, engine, again


def _assignments(ws: Path) -> pd.DataFrame:
    return pd.read_csv(ws / "assignments.csv", dtype=str, keep_default_na=False)


def _run_dir(ws: Path) -> Path:
    return ws / ".segscope" / "runs" / (ws / ".segscope" / "current").read_text().strip()


def _names(ws: Path) -> list[tuple[int, str]]:
    return [(s["id"], s["name"]) for s in json.loads((ws / "segments.json").read_text())["segments"]]


def test_the_sample_through_ray_gives_the_local_segments_and_names(local_ws, ray_run):
    ray_ws, run, _, _ = ray_run
    local, remote = _assignments(local_ws), _assignments(ray_ws)
    assert list(remote["user_id"]) == list(local["user_id"]), "the same users, in the same order"
    assert len(local) >= USERS * 0.9
    assert adjusted_rand_score(local["segment_id"], remote["segment_id"]) >= 0.99
    assert adjusted_rand_score(local["top_segment_id"], remote["top_segment_id"]) >= 0.99
    assert list(remote["outlier"]) == list(local["outlier"])
    assert _names(ray_ws) == _names(local_ws)
    assert len(_names(local_ws)) >= 3
    assert run.summary["run_key"] == json.loads((local_ws / "segments.json").read_text())["run_key"]


def test_profiles_built_per_partition_are_the_local_profiles(local_ws, ray_run):
    a, b = np.load(_run_dir(local_ws) / "profiles.npz"), np.load(_run_dir(ray_run[0]) / "profiles.npz")
    assert list(a["feature_names"]) == list(b["feature_names"]) and len(a["feature_names"]) > 5
    np.testing.assert_array_equal(a["feature_raw"], b["feature_raw"])  # recency to the population's end, in every part
    np.testing.assert_allclose(b["text"], a["text"], atol=1e-6)
    np.testing.assert_allclose(b["fused"], a["fused"], atol=1e-5)


def test_the_run_records_the_ray_stages_and_the_bytes_shuffled(data, ray_run):
    timings = json.loads((_run_dir(ray_run[0]) / "timings.json").read_text())
    stages = [timings[k] for k in ("ray_embed_s", "ray_recipe_s", "ray_partitions_s", "ray_scaling_s")]
    assert all(t >= 0 for t in stages) and 0 < sum(stages) <= timings["profiles_s"]
    events = load_dataset(data).events
    assert len(events) * 8 < timings["ray_shuffled_bytes"] < events.memory_usage(deep=True).sum() * 4


def test_texts_are_embedded_by_the_pool_through_the_workspace_cache(data, ray_run):
    from tools.embed.cache import EmbeddingCache

    ray_ws, _, engine, again = ray_run
    assert engine.pool is not None and engine.pool.calls >= 1, "the first run embedded through the actor pool"
    assert again.pool is not None and again.pool.calls == 0, "the second run found every text in the cache"
    cache = EmbeddingCache(ray_ws / ".segscope" / "cache", engine.pool.cache_name)
    texts = profile_texts(load_dataset(data))
    assert len(texts) > 100 and len(cache) >= len(set(texts))
    before = cache.misses
    cache.embed(texts, engine.pool.local)
    assert cache.misses == before, "every text the profiles needed is in the cache, under the local model's name"


def test_the_cli_runs_the_ray_engine(data, local_ws, ray_address, tmp_path):
    ws = tmp_path / "ws"
    done = _cli("segment", "--data", str(data), "--workspace", str(ws), "--embedder", "hashing", "--seed", str(PARAMS.seed),
                "--engine", "ray", "--ray-address", ray_address)
    assert done.returncode == 0, done.stderr
    assert (ws / "segments.json").is_file()
    assert adjusted_rand_score(_assignments(local_ws)["segment_id"], _assignments(ws)["segment_id"]) >= 0.99
    assert _names(ws) == _names(local_ws)


def test_assign_through_ray_places_users_as_the_local_assign_does(data, local_ws, ray_address, tmp_path):
    """The fit's own users (which reproduce assignments.csv exactly) and a later slice continuing their histories."""
    from tools.segment.assign import load_fitted_run

    events = pd.read_csv(data / "events.csv", dtype=str, keep_default_na=False)
    later = tmp_path / "later"
    later.mkdir()
    events.iloc[len(events) // 2 :].to_csv(later / "events.csv", index=False)
    shutil.copy(data / "items.csv", later / "items.csv")
    fitted = load_fitted_run(local_ws)
    for source, extra in ((data, ()), (later, ("--append",))):
        local_out, ray_out = tmp_path / f"local-{source.name}.csv", tmp_path / f"ray-{source.name}.csv"
        done = _cli("assign", "--data", str(source), "--workspace", str(local_ws), "--out", str(local_out), *extra)
        assert done.returncode == 0, done.stderr
        done = _cli("assign", "--data", str(source), "--workspace", str(local_ws), "--out", str(ray_out), *extra,
                    "--engine", "ray", "--ray-address", ray_address)
        assert done.returncode == 0, done.stderr
        mine, theirs = pd.read_csv(ray_out, dtype=str, keep_default_na=False), pd.read_csv(local_out, dtype=str, keep_default_na=False)
        assert len(mine) == len(load_dataset(source).events["user_id"].unique()) > 0
        pd.testing.assert_frame_equal(mine, theirs)
    own = pd.read_csv(tmp_path / f"ray-{data.name}.csv", dtype=str, keep_default_na=False).set_index("user_id")
    run = _assignments(local_ws).set_index("user_id")
    assert (own.loc[run.index, "segment_id"] == run["segment_id"]).all() and fitted.fit_agreement == 1


def test_assign_with_an_unreachable_ray_address_is_one_line_and_writes_nothing(data, local_ws, tmp_path):
    _ray_installed()
    out = tmp_path / "out.csv"
    done = _cli("assign", "--data", str(data), "--workspace", str(local_ws), "--out", str(out), "--engine", "ray",
                "--ray-address", f"127.0.0.1:{free_port()}", timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "ray start" in done.stderr
    assert not out.exists()


def test_recommend_all_users_through_ray_is_the_local_batch_line_for_line(local_ws, ray_address):
    """Every user scored in slices on the workers gives the local batch exactly (same items, same order)."""
    local = _cli("recommend", "--all-users", "--workspace", str(local_ws), "--k", "7", "--format", "jsonl")
    assert local.returncode == 0, local.stderr
    remote = _cli("recommend", "--all-users", "--workspace", str(local_ws), "--k", "7", "--format", "jsonl",
                  "--engine", "ray", "--ray-address", ray_address)
    assert remote.returncode == 0, remote.stderr
    lines = remote.stdout.splitlines()
    assert lines == local.stdout.splitlines()
    assert len(lines) == len(_assignments(local_ws)) and all(len(json.loads(line)["items"]) == 7 for line in lines)


def test_recommend_through_ray_is_refused_for_one_user_and_for_an_unreachable_address(local_ws):
    _ray_installed()
    done = _cli("recommend", "--user", "u00042", "--workspace", str(local_ws), "--engine", "ray")
    assert done.returncode == 2 and "--all-users" in done.stderr and not done.stdout
    done = _cli("recommend", "--all-users", "--workspace", str(local_ws), "--engine", "ray",
                "--ray-address", f"127.0.0.1:{free_port()}", timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "ray start" in done.stderr
    assert not done.stdout


def test_an_unreachable_ray_address_is_one_line_and_writes_nothing(data, tmp_path):
    _ray_installed()
    address = f"127.0.0.1:{free_port()}"
    ws = tmp_path / "ws"
    done = _cli("segment", "--data", str(data), "--workspace", str(ws), "--embedder", "hashing", "--engine", "ray",
                "--ray-address", address, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert address in lines[0] and "ray start --head" in lines[0]
    assert not ws.exists()


def test_a_ray_address_without_the_ray_engine_is_refused(data, tmp_path):
    done = _cli("segment", "--data", str(data), "--workspace", str(tmp_path / "ws"), "--ray-address", "127.0.0.1:1")
    assert done.returncode == 2 and "--engine ray" in done.stderr
    assert not (tmp_path / "ws").exists()


def test_segscope_without_the_ray_engine_never_imports_ray():
    code = ("import sys, assistant.cli, tools.pipeline, tools.segment.engine, assistant.cli_segment; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    helped = subprocess.run([str(BIN), "segment", "--help"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert helped.returncode == 0 and "--engine" in helped.stdout and "--ray-address" in helped.stdout


# -- a worker killed mid-run -----------------------------------------------------------------------

KILL_USERS = 1500


def _worker_running(title: str) -> int | None:
    """The pid of a Ray worker process whose title (``ray::TASK``) contains ``title``, if one runs now."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if args.startswith("ray::") and title in args:
            return int(proc.name)
    return None


def test_a_worker_killed_while_profiling_a_partition_is_retried_and_the_run_is_the_same(ray_address, tmp_path):
    import signal
    import threading
    import time

    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    generate_sample(tmp_path / "data", n_users=KILL_USERS, seed=4)
    data = load_dataset(tmp_path / "data")
    segment_dataset(data, tmp_path / "local", PARAMS, write_store=False)
    killed: list[int] = []
    done = threading.Event()

    def kill_one() -> None:  # the partitions are profiled in the reduce half of the shuffle
        while not done.is_set() and not killed:
            pid = _worker_running("HashShuffleReduce")
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one, daemon=True)
    with ray_session(ray_address):
        watcher.start()
        try:
            segment_dataset(data, tmp_path / "ray", PARAMS, write_store=False, engine=RayEngine(seed=PARAMS.seed))
        finally:
            done.set()
            watcher.join(5)
    assert killed, "no worker was profiling a partition while the run went on: nothing was killed"
    local, remote = _assignments(tmp_path / "local"), _assignments(tmp_path / "ray")
    assert list(remote["user_id"]) == list(local["user_id"])
    assert adjusted_rand_score(local["segment_id"], remote["segment_id"]) >= 0.99
    assert _names(tmp_path / "ray") == _names(tmp_path / "local")
    a, b = np.load(_run_dir(tmp_path / "local") / "profiles.npz"), np.load(_run_dir(tmp_path / "ray") / "profiles.npz")
    np.testing.assert_array_equal(a["feature_raw"], b["feature_raw"])


def test_past_the_fit_cap_the_workers_place_the_rest_as_this_process_would(data, ray_address, tmp_path):
    """Fitted on a seeded sample of 300 users, the other users are placed by the workers with the saved model:
    the same segments as the local engine with the same cap places them."""
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine
    from tools.segment.engine import LocalEngine

    capped = LocalEngine()
    capped.fit_users = 300
    dataset = load_dataset(data)
    segment_dataset(dataset, tmp_path / "local", PARAMS, write_store=False, engine=capped)
    with ray_session(ray_address):
        segment_dataset(dataset, tmp_path / "ray", PARAMS, write_store=False, engine=RayEngine(seed=PARAMS.seed, fit_users=300))
    local, remote = _assignments(tmp_path / "local"), _assignments(tmp_path / "ray")
    assert len(local) > 300 and list(remote["user_id"]) == list(local["user_id"])
    assert list(remote["segment_id"]) == list(local["segment_id"])
    assert list(remote["top_segment_id"]) == list(local["top_segment_id"])
    assert _names(tmp_path / "ray") == _names(tmp_path / "local")


def _store_counts(ws: Path) -> dict[str, int]:
    from tools.search.locator import choose_store
    from tools.search.store import VectorStore

    store = VectorStore(choose_store(ws, None))
    return {name.split("-")[0]: store.count(name) for name in store.collection_names()}


def _leftover_parts(ws: Path) -> list[Path]:
    return sorted((ws / ".segscope").glob(".parts.*"))


def test_past_the_gather_cap_profiles_stay_in_parts_and_the_run_is_the_gathered_one(data, ray_address, tmp_path):
    """Profiles kept in part files on the workers (gather_users=100 of 500 users), the model fitted on the same
    seeded 300 users: the same users in the same order, the same segments and names as the engine that gathers
    every profile here; profiles.npz holds the same rows bit for bit, the store the same users, and no part file
    is left."""
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    dataset = load_dataset(data)
    parted = RayEngine(seed=PARAMS.seed, fit_users=300, gather_users=100)
    with ray_session(ray_address):
        segment_dataset(dataset, tmp_path / "gathered", PARAMS, engine=RayEngine(seed=PARAMS.seed, fit_users=300))
        segment_dataset(dataset, tmp_path / "parted", PARAMS, engine=parted)
    assert parted.stats["ray_place_s"] > 0 and parted.stats["ray_shuffled_bytes"] > 0
    a, b = _assignments(tmp_path / "gathered"), _assignments(tmp_path / "parted")
    assert len(a) > 300 and list(b["user_id"]) == list(a["user_id"])
    assert list(b["segment_id"]) == list(a["segment_id"])  # the same profiles, bit for bit: the same fit
    assert list(b["top_segment_id"]) == list(a["top_segment_id"])
    assert list(b["outlier"]) == list(a["outlier"])
    assert _names(tmp_path / "parted") == _names(tmp_path / "gathered")
    x, y = np.load(_run_dir(tmp_path / "gathered") / "profiles.npz"), np.load(_run_dir(tmp_path / "parted") / "profiles.npz")
    assert set(x.files) == set(y.files)
    np.testing.assert_array_equal(x["text"], y["text"])
    np.testing.assert_array_equal(x["feature_raw"], y["feature_raw"])
    np.testing.assert_array_equal(y["fused"], x["fused"])  # the text block's scaling summed part by part, in row order
    assert _store_counts(tmp_path / "parted") == _store_counts(tmp_path / "gathered")
    assert _store_counts(tmp_path / "parted")["users"] > 300
    assert not _leftover_parts(tmp_path / "parted")


def test_a_relative_workspace_is_where_the_workers_read_and_write(data, ray_address, tmp_path, monkeypatch):
    """The workers' working folder is not the driver's: the cache they read and the parts they write are the
    workspace's, named absolutely, so a run into ``--workspace ws`` gives the run an absolute one gives."""
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine

    dataset = load_dataset(data)
    monkeypatch.chdir(tmp_path)
    with ray_session(ray_address):
        segment_dataset(dataset, tmp_path / "absolute", PARAMS, write_store=False,
                        engine=RayEngine(seed=PARAMS.seed, fit_users=300, gather_users=100))
        segment_dataset(dataset, "relative", PARAMS, write_store=False,
                        engine=RayEngine(seed=PARAMS.seed, fit_users=300, gather_users=100))
    assert list(_assignments(tmp_path / "relative")["segment_id"]) == list(_assignments(tmp_path / "absolute")["segment_id"])
    assert not _leftover_parts(tmp_path / "relative")


def test_a_run_in_parts_that_fails_leaves_the_workspace_as_it_was_and_no_parts(data, ray_address, tmp_path, monkeypatch):
    from tools.distributed.cluster import ray_session
    from tools.distributed.engine import RayEngine
    import tools.pipeline

    dataset = load_dataset(data)
    ws = tmp_path / "ws"
    segment_dataset(dataset, ws, RunParams(seed=3, embedder="hashing", k=3), write_store=False)
    before = {p.relative_to(ws): p.read_bytes() for p in ws.rglob("*") if p.is_file() and "cache" not in p.parts}

    def broken(*args, **kwargs):
        assert list((ws / ".segscope").glob(".parts.*/part-*.text.npy")), "the profiles were in parts when it failed"
        raise RuntimeError("summary failed")

    monkeypatch.setattr(tools.pipeline, "summarise_segments", broken)
    with ray_session(ray_address), pytest.raises(RuntimeError, match="summary failed"):
        segment_dataset(dataset, ws, PARAMS, write_store=False, engine=RayEngine(seed=PARAMS.seed, fit_users=300, gather_users=100))
    after = {p.relative_to(ws): p.read_bytes() for p in ws.rglob("*") if p.is_file() and "cache" not in p.parts}
    assert after.keys() == before.keys() and after == before
    assert not _leftover_parts(ws)


# -- the real model through the pool ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_each_group_of_the_batch_plan_encoded_alone_gives_one_big_calls_vectors(data, backend):
    """int8 activations are quantized per model call, so a vector depends on its batch-mates; the plan's groups keep them."""
    from tools.embed.embedding import make_embedder

    texts = profile_texts(load_dataset(data))
    model = make_embedder("minilm", backend=backend)
    whole = model.encode(texts)
    plan = model.batch_plan(texts)
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(texts))) and len(plan) > 1
    alone = np.zeros_like(whole)
    for rows in plan:
        alone[rows] = model.encode([texts[i] for i in rows])
    np.testing.assert_array_equal(alone, whole)


@pytest.mark.slow
def test_the_actor_pool_gives_the_local_models_vectors_bit_for_bit(data, ray_address):
    from tools.distributed.cluster import ray_session
    from tools.distributed.embed import PoolEmbedder
    from tools.embed.embedding import make_embedder

    texts = profile_texts(load_dataset(data))
    model = make_embedder("minilm")
    with ray_session(ray_address):
        pooled = PoolEmbedder(model, actors=2).encode(texts)
    np.testing.assert_array_equal(pooled, model.encode(texts))
