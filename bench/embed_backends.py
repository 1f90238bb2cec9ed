"""Embedding backends side by side: speed, closeness to fp32, and what clustering makes of them.

Every backend (torch fp32, torch bf16 autocast, ONNX fp32, ONNX int8) embeds the
same texts in the same process, in interleaved rounds so that a neighbour's load
falls on all of them alike: 2,000 Banking77 messages and 2,000 distinct texts of
the generated shop data (item descriptions and reviews, longer). Reported per
backend: texts/s (median wall time), CPU seconds per 1,000 texts (median; the
figure least moved by other processes), both as ratios to torch bf16 (what `auto`
chose on CPUs with AVX512-BF16 before), and the smallest and median cosine of each
vector to the torch fp32 one. Then quality in the same run: Banking77 (3,080 texts)
NMI and ARI with k = 77 and k auto over three seeds, and the planted-segment ARI of
the sample (α = 0.5, three seeds), each backend's vectors through the full pipeline.

    python -m bench.embed_backends [--backends torch-bf16,onnx-int8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from bench.common import median, save, shared_data

ALL = ("torch-fp32", "torch-bf16", "onnx", "onnx-int8")


def make(backend: str):
    from tools.embed.embedding import SentenceTransformerEmbedder, make_embedder

    if backend.startswith("torch-"):
        return SentenceTransformerEmbedder(precision=backend.split("-", 1)[1])
    return make_embedder(backend=backend)


def cpu_features() -> str:
    from tools.embed.embedding import cpu_flags

    flags = cpu_flags()
    named = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8") if f in flags]
    return " ".join(named) + ("" if "amx_bf16" in flags else " (no AMX)")


def texts_to_time(n: int) -> dict[str, list[str]]:
    import tempfile
    from pathlib import Path

    from bench.embedding import distinct_texts
    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample

    out = {}
    root = shared_data()
    if root is not None:
        out["banking77"] = pd.read_csv(root / "banking77" / "test.csv")["text"].astype(str).tolist()[:n]
    tmp = Path(tempfile.mkdtemp(prefix="segscope-backends-"))
    generate_sample(tmp / "data", n_users=6000, seed=11)
    texts = list(dict.fromkeys(distinct_texts(load_dataset(tmp / "data"))))
    pick = np.random.default_rng(0).choice(len(texts), min(n, len(texts)), replace=False)
    out["sample"] = [texts[i] for i in pick]
    return out


def speed(backends: list[str], sets: dict[str, list[str]], rounds: int) -> dict:
    embedders = {b: make(b) for b in backends}
    for emb in embedders.values():
        emb.encode(["warm up the model and build its export once"] * 8)
    wall: dict = {(b, s): [] for b in backends for s in sets}
    cpu: dict = {(b, s): [] for b in backends for s in sets}
    vectors: dict = {}
    loads = []
    for _ in range(rounds):
        for s, texts in sets.items():
            for b, emb in embedders.items():
                t, c = time.perf_counter(), time.process_time()
                vectors[b, s] = emb.encode(texts)
                wall[b, s].append(time.perf_counter() - t)
                cpu[b, s].append(time.process_time() - c)
        loads.append(round(os.getloadavg()[0], 1))
    out: dict = {"load_avg_1min_per_round": loads}
    for s, texts in sets.items():
        ref = vectors.get(("torch-fp32", s))
        base_w, base_c = median(wall.get(("torch-bf16", s), [np.nan])), median(cpu.get(("torch-bf16", s), [np.nan]))
        rows = {}
        for b in backends:
            w, c = median(wall[b, s]), median(cpu[b, s])
            row = {
                "texts_per_s": round(len(texts) / w, 1),
                "cpu_s_per_1000": round(1000 * c / len(texts), 2),
                "speedup_wall_vs_torch_bf16": round(base_w / w, 2),
                "speedup_cpu_vs_torch_bf16": round(base_c / c, 2),
            }
            if ref is not None:
                cos = (vectors[b, s] * ref).sum(axis=1)
                row.update(cosine_min=round(float(cos.min()), 5), cosine_median=round(float(np.median(cos)), 5))
            rows[b] = row
        out[s] = {"n_texts": len(texts), **rows}
    return out


def quality(backends: list[str], seeds=(0, 1, 2)) -> dict:
    from bench.segments import planted, text_set

    out: dict = {}
    root = shared_data()
    for b in backends:
        emb = make(b)
        row: dict = {}
        if root is not None:
            t = text_set(root / "banking77" / "test.csv", emb, seeds=seeds, peers=False)
            row["banking77_k77"] = {k: t["k=77"][k] for k in ("nmi_median", "nmi_min", "ari_median")}
            row["banking77_auto"] = {k: t["k=auto"][k] for k in ("nmi_median", "ari_median", "k_chosen")}
        p = planted(emb, seeds=(7, 8, 9), alphas=(0.5,))["alpha"]["0.5"]
        row["sample_ari_alpha_0.5"] = {k: p[k] for k in ("ari_median", "ari_min")}
        out[b] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default=",".join(ALL))
    parser.add_argument("--quality", default="torch-bf16,onnx-int8", help="backends run through the clustering checks")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    result = {"cpu_features": cpu_features(), "cores": len(os.sched_getaffinity(0))}
    result["speed"] = speed(backends, texts_to_time(args.texts), args.rounds)
    result["quality"] = quality([b for b in args.quality.split(",") if b])
    save("embed_backends", result)


if __name__ == "__main__":
    main()
