"""The vector store: the sample through the embedded Chroma folder and through a Chroma server (`--chroma-url`).

`segscope segment` on the sample (3,000 users) three times per store (seeds 7, 8, 9:
three runs, so three writes of the users and segments; the items once), in one
workspace each, the two stores taking turns, with a `chroma run` on loopback
started here. Then the same 600
queries (the items' vectors) against each store's users collection: latency per
query, recall@10 against exact cosine search, and how often the two stores give
the very same ten users.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.common import SEGSCOPE, median, run_command, save

CHROMA = SEGSCOPE.parent / "chroma"
SEEDS = (7, 8, 9)


def _start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("`chroma run` did not come up")


def _run_vectors(ws: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The live run's key, its users with a text vector (ids, unit vectors), and the items' unit vectors (the queries)."""
    key = (ws / ".segscope" / "current").read_text().strip()
    with np.load(ws / ".segscope" / "runs" / key / "profiles.npz") as p:
        text, ids, queries = p["text"], p["user_ids"].astype(str), p["item_vectors"]
    keep = (text != 0).any(axis=1)
    users = text[keep] / np.linalg.norm(text[keep], axis=1, keepdims=True)
    return key, ids[keep], users, (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def _searches(ws: Path, rebuilt: Path | None = None) -> dict:
    """Query the workspace's users collection (or, with ``rebuilt``, the same users written afresh into an embedded store there)."""
    from tools.search.locator import recorded_store
    from tools.search.store import VectorStore
    from tools.search.vectors import users_collection

    key, ids, users, queries = _run_vectors(ws)
    exact = np.argsort(-(queries @ users.T), axis=1)[:, :10]
    if rebuilt is None:
        store = VectorStore(recorded_store(ws))
    else:
        store = VectorStore(rebuilt)
        store.replace(users_collection(key), list(ids), users, [{"segment_id": 0}] * len(ids))
    col = store.collection(users_collection(key))
    found, seconds = [], []
    for q in queries:
        start = time.perf_counter()
        res = col.query(query_embeddings=q.reshape(1, -1), n_results=10, include=["distances", "metadatas"])
        seconds.append(time.perf_counter() - start)
        found.append(res["ids"][0])
    recall = float(np.mean([len(set(f) & set(ids[e])) / 10 for f, e in zip(found, exact)]))
    return {"queries": len(queries), "query_ms_median": round(1000 * median(seconds), 2),
            "query_ms_p95": round(1000 * float(np.percentile(seconds, 95)), 2), "recall_at_10": round(recall, 4), "found": found}  # fmt: skip


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="segscope-store-"))
    data = tmp / "shop"
    run_command([str(SEGSCOPE), "sample", "--out", str(data), "--seed", "7"])
    proc, url = _start_server(tmp)
    result: dict = {"users": 3000, "server_command": "chroma run on loopback (the chromadb package's CLI)"}
    stores = {"embedded": "local", "server": url}
    runs: dict[str, list[dict]] = {name: [] for name in stores}
    try:
        for seed in SEEDS:  # the two stores take turns, so a busier spell of the machine falls on both
            for name, where in stores.items():
                ws = tmp / f"ws-{name}"
                seg = run_command([str(SEGSCOPE), "segment", "--data", str(data), "--workspace", str(ws), "--seed", str(seed),
                                   "--chroma-url", where, "--json"])  # fmt: skip
                key = json.loads(seg["stdout"])["run_key"]
                timings = json.loads((ws / ".segscope" / "runs" / key / "timings.json").read_text())
                runs[name].append({"seed": seed, "wall_s": round(seg["wall_s"], 1), "store_s": round(timings["store_s"], 2)})
        for name in stores:
            result[name] = {"runs": runs[name], "store_s_median": median([r["store_s"] for r in runs[name]]), **_searches(tmp / f"ws-{name}")}
            print(name, {k: v for k, v in result[name].items() if k != "found"}, flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    a, b = result["embedded"].pop("found"), result["server"].pop("found")
    result["same_top10_share"] = round(float(np.mean([x == y for x, y in zip(a, b)])), 4)
    # HNSW builds are not deterministic: the same users written again into a new embedded store, for scale.
    again = _searches(tmp / "ws-embedded", rebuilt=tmp / "again")["found"]
    result["same_top10_share_two_embedded_builds"] = round(float(np.mean([x == y for x, y in zip(a, again)])), 4)
    save("store", result)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
