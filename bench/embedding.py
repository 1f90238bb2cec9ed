"""Embedding overhead and cache benefit.

overhead = time to build profiles (empty cache) / time for a bare
SentenceTransformer.encode of the same distinct texts, same batch size, same
precision, same process, model already loaded. precision = bare fp32 encode time
/ bare bf16-autocast encode time, with the smallest cosine between a text's two
vectors (the bf16 path is what `auto` picks on CPUs with native bfloat16). cache = a second `segment` run on unchanged data
/ the first (cold) run, both in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from bench.common import median, save, timed


def distinct_texts(data) -> list[str]:
    import pandas as pd

    from tools.data.items import item_texts

    texts = item_texts(data.items) if data.items is not None else pd.Series([], dtype=str)
    written = data.events["text"].dropna().astype(str)
    written = written[written.str.strip().str.len() > 0]
    return [t for t in texts.tolist() if t] + list(pd.unique(written.to_numpy()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tools.data.ingest import load_dataset
    from tools.data.sample import generate_sample
    from tools.embed.cache import EmbeddingCache
    from tools.embed.embedding import SentenceTransformerEmbedder
    from tools.pipeline import RunParams, segment_dataset
    from tools.segment.profiles import build_profiles

    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-"))
    generate_sample(tmp / "data", n_users=args.users, seed=11)
    data = load_dataset(tmp / "data")
    texts = distinct_texts(data)
    import numpy as np
    import torch

    embedder = SentenceTransformerEmbedder()
    model = embedder.model  # load once, outside every timing

    def bare_encode(precision: str):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with ctx:
            return model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, show_progress_bar=False)

    model.encode(texts[:64], batch_size=embedder.batch_size)  # warm-up

    bare, ours, fp32, bf16 = [], [], [], []
    for _ in range(args.repeats):
        t, _ = timed(bare_encode, embedder.precision)
        bare.append(t)
        t, _ = timed(build_profiles, data, embedder, EmbeddingCache(None, embedder.name))
        ours.append(t)
        t, v32 = timed(bare_encode, "fp32")
        fp32.append(t)
        t, v16 = timed(bare_encode, "bf16")
        bf16.append(t)
    overhead = median(ours) / median(bare)
    v16 = np.asarray(v16, dtype=np.float32)
    v16 /= np.linalg.norm(v16, axis=1, keepdims=True)
    min_cosine = float((np.asarray(v32) * v16).sum(axis=1).min())

    cold, warm = [], []
    for i in range(args.repeats):
        ws = tmp / f"ws{i}"
        t, first = timed(segment_dataset, data, ws, RunParams(seed=7), embedder=embedder)
        cold.append(t)
        t, second = timed(segment_dataset, data, ws, RunParams(seed=7), embedder=embedder)
        assert second.cached and second.summary == first.summary
        warm.append(t)
    # A changed parameter re-clusters but re-embeds nothing.
    t_alpha, _ = timed(segment_dataset, data, tmp / "ws0", RunParams(seed=7, alpha=0.6), embedder=embedder)

    save(
        "embedding",
        {
            "users": args.users,
            "distinct_texts": len(texts),
            "bare_encode_s_median": round(median(bare), 3),
            "build_profiles_s_median": round(median(ours), 3),
            "precision": embedder.precision,
            "overhead_ratio": round(overhead, 3),
            "fp32_encode_s_median": round(median(fp32), 3),
            "bf16_encode_s_median": round(median(bf16), 3),
            "bf16_speedup": round(median(fp32) / median(bf16), 2),
            "bf16_min_cosine_to_fp32": round(min_cosine, 6),
            "cold_segment_s_median": round(median(cold), 3),
            "cached_segment_s_median": round(median(warm), 3),
            "cache_ratio": round(median(warm) / median(cold), 4),
            "changed_alpha_segment_s": round(t_alpha, 3),
            "repeats": args.repeats,
        },
    )


if __name__ == "__main__":
    main()
