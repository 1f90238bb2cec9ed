"""Searching a run's vectors: users filtered by behaviour, items of the run's own data, and data with no text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import dataset_from_frames, sample_workspace

from assistant.config import load_settings
from assistant.service import WorkspaceService
from assistant.toolbox import Toolbox
from tools.core.errors import SegscopeError
from tools.core.workspace import Workspace
from tools.embed.embedding import HashingEmbedder
from tools.pipeline import RunParams, segment_dataset
from tools.search.store import VectorStore
from tools.search.vectors import users_collection


def _toolbox(ws) -> Toolbox:
    return Toolbox(WorkspaceService(ws, load_settings(embedder="hashing-64"), embedder=HashingEmbedder()))


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory) -> Toolbox:
    return _toolbox(sample_workspace(tmp_path_factory.mktemp("search"), n_users=300, seed=6))


def test_find_users_filters_on_spend_and_recency(toolbox):
    run = toolbox.service.run
    raw = pd.DataFrame(run.feature_raw, columns=list(run.feature_names), index=run.user_ids.astype(str))
    spend, recent = float(raw["monetary"].median()), float(raw["recency_days"].quantile(0.75))
    found = toolbox.find_users("books and novels", min_spend=spend, active_within_days=recent, n=20)
    rows = found.artifact["users"]
    eligible = raw[(raw["monetary"] >= spend) & (raw["recency_days"] <= recent)]
    assert len(rows) == min(20, len(eligible)) > 0
    for row in rows:
        assert row["user_id"] in eligible.index
        assert row["monetary"] == pytest.approx(raw.loc[row["user_id"], "monetary"])


def test_find_items_searches_the_runs_own_items(toolbox):
    rows = toolbox.find_items("wireless headphones", n=5).artifact["items"]
    assert len(rows) == 5 and set(r["item_id"] for r in rows) <= set(toolbox.service.run.item_ids.astype(str))


def test_data_without_any_text_has_no_users_to_search(tmp_path):
    rng = np.random.default_rng(0)
    events = pd.DataFrame({
        "user_id": [f"u{u}" for u in range(60) for _ in range(6)],
        "item_id": [f"i{(u % 3) * 10 + rng.integers(0, 10)}" for u in range(60) for _ in range(6)],
        "event_type": "purchase",
        "timestamp": 1.7e9 + rng.integers(0, 10**7, 360),
    })
    ws = tmp_path / "ws"
    run = segment_dataset(dataset_from_frames(events), ws, RunParams(k=3, embedder="hashing-64"), embedder=HashingEmbedder())
    assert run.summary["parameters"]["text_source"] == "collaborative"
    store = VectorStore(Workspace(ws).chroma_dir)
    assert store.count(users_collection(run.key)) == 0, "collaborative vectors are not text: nothing to search users by"
    # Not an empty list that looks like "nobody matched": one line saying why nobody can be found.
    with pytest.raises(SegscopeError, match="no text vectors") as err:
        _toolbox(ws).find_users("anything")
    assert "\n" not in err.value.one_line()
