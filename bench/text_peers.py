"""BERTopic on segscope's own text vectors: the strongest open peer for text-only segments.

Needs the `bench` extra (`pip install -e '.[bench]'`: bertopic, umap-learn, hdbscan).
Nothing is downloaded: BERTopic gets the precomputed embeddings and no embedding
model, and its topic representation is its default c-TF-IDF, which needs none.

Two pipelines, each seeded:
- ``bertopic_umap_kmeans``: BERTopic's default UMAP (15 neighbours, 5 components,
  min_dist 0, cosine) then KMeans with the true k (n_init=10);
- ``bertopic_default``: the same UMAP then BERTopic's default HDBSCAN
  (min_topic_size 10). It chooses k itself and leaves outliers (topic -1),
  which count as one more cluster in NMI and ARI, as BERTopic reports them.
"""

from __future__ import annotations

import time

import numpy as np

PEERS = ("bertopic_umap_kmeans", "bertopic_default")


def missing() -> str | None:
    """Why the peers cannot run here, or None."""
    try:
        import bertopic  # noqa: F401
        import umap  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed: pip install -e '.[bench]'"
    return None


def bertopic_labels(docs: list[str], vectors: np.ndarray, seed: int, k: int | None) -> tuple[np.ndarray, float]:
    """Topic per document (-1 = outlier) and the seconds fit_transform took."""
    import warnings

    from bertopic import BERTopic
    from sklearn.cluster import KMeans
    from umap import UMAP

    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    if k is None:
        model = BERTopic(umap_model=umap)
    else:
        model = BERTopic(umap_model=umap, hdbscan_model=KMeans(n_clusters=k, n_init=10, random_state=seed))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UMAP warns that a random_state disables its parallelism
        topics, _ = model.fit_transform(docs, embeddings=np.asarray(vectors, dtype=np.float32))
    return np.asarray(topics), time.perf_counter() - start
