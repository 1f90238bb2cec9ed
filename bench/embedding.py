"""Embedding overhead and cache benefit (BENCHMARKS.md §4).

overhead = time to build profiles (empty cache) / time for a bare
SentenceTransformer.encode of the same distinct texts, same batch size, same
process, model already loaded. cache = a second `segment` run on unchanged data
/ the first (cold) run, both in this process.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import median, save, timed


def distinct_texts(data) -> list[str]:
    import pandas as pd

    from tools.profiles import item_texts

    texts = item_texts(data.items) if data.items is not None else pd.Series([], dtype=str)
    written = data.events["text"].dropna().astype(str)
    written = written[written.str.strip().str.len() > 0]
    return [t for t in texts.tolist() if t] + list(pd.unique(written.to_numpy()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tools.embed_cache import EmbeddingCache
    from tools.embedding import SentenceTransformerEmbedder
    from tools.ingest import load_dataset
    from tools.pipeline import RunParams, segment_dataset
    from tools.profiles import build_profiles
    from tools.sample import generate_sample

    tmp = Path(tempfile.mkdtemp(prefix="segscope-bench-"))
    generate_sample(tmp / "data", n_users=args.users, seed=11)
    data = load_dataset(tmp / "data")
    texts = distinct_texts(data)
    embedder = SentenceTransformerEmbedder()
    model = embedder.model  # load once, outside every timing
    model.encode(texts[:64], batch_size=embedder.batch_size)  # warm-up

    bare, ours = [], []
    for _ in range(args.repeats):
        t, _ = timed(model.encode, texts, batch_size=embedder.batch_size, normalize_embeddings=True, show_progress_bar=False)
        bare.append(t)
        t, _ = timed(build_profiles, data, embedder, EmbeddingCache(None, embedder.name))
        ours.append(t)
    overhead = median(ours) / median(bare)

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
            "overhead_ratio": round(overhead, 3),
            "cold_segment_s_median": round(median(cold), 3),
            "cached_segment_s_median": round(median(warm), 3),
            "cache_ratio": round(median(warm) / median(cold), 4),
            "changed_alpha_segment_s": round(t_alpha, 3),
            "repeats": args.repeats,
        },
    )


if __name__ == "__main__":
    main()
