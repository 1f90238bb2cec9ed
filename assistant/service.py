"""One workspace's capabilities behind one object: what the CLI, the agent's tools and the router call.

It holds what is expensive to rebuild (the loaded run, the fitted recommender,
the explanation lookups, the embedder) and hands back frozen results. No UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.config import Settings, load_settings
from assistant.llm import LLMBackend, make_backend
from tools.core.errors import ParameterError, WorkspaceError

@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    title: str
    score: float
    explanation: str | None = None
    verified: bool | None = None
    explanation_source: str | None = None
    evidence: dict | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class WorkspaceService:
    """Capabilities over one workspace, created once per CLI call or per TUI session."""

    def __init__(self, workspace: str | Path, settings: Settings | None = None, backend: LLMBackend | None = None, embedder=None) -> None:
        self.workspace = Path(workspace)
        self.settings = settings or load_settings()
        self.backend = backend or make_backend(self.settings)
        self._embedder = embedder
        self._run = None
        self._ctx = None
        self._recommender = None
        self._store = None

    # -- shared state ----------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from tools.embed.embedding import make_embedder

            name = self.summary()["parameters"].get("embedder", self.settings.embedder) if self.has_run() else self.settings.embedder
            self._embedder = make_embedder(name)
        return self._embedder

    def has_run(self) -> bool:
        from tools.core.workspace import Workspace

        return Workspace(self.workspace).current_run() is not None

    @property
    def run(self):
        if self._run is None:
            from tools.core.run_state import load_run

            self._run = load_run(self.workspace)
        return self._run

    def reload(self) -> None:
        """Forget cached state after the workspace changed (a new segmentation)."""
        self._run = self._ctx = self._recommender = self._store = None

    @property
    def store(self):
        """The vector store the live run was written to (the workspace's folder, or the Chroma server it records)."""
        from tools.search.locator import recorded_store
        from tools.search.store import VectorStore

        spec = recorded_store(self.workspace)
        if self._store is None or self._store.spec != spec:  # another process may have re-segmented into another store
            self._store = VectorStore(spec)
        return self._store

    @property
    def explanations(self):
        if self._ctx is None:
            from tools.explain.evidence import ExplanationContext

            self._ctx = ExplanationContext(self.run)
        return self._ctx

    # -- recommendations -------------------------------------------------------
    @property
    def recommender(self):
        if self._recommender is None:
            from tools.recommend.hybrid import HybridRecommender

            run = self.run
            events = run.data.events
            if run.summary["data"]["kind"] == "text":
                raise WorkspaceError("this workspace holds text-only data: there are no items to recommend", "segment behaviour data (events with items)")
            import pandas as pd

            item_vectors = None
            if len(run.item_ids):
                item_vectors = pd.DataFrame(run.item_vectors, index=pd.Index(run.item_ids.astype(str)))

            users = pd.Index(run.user_ids.astype(str))
            self._recommender = HybridRecommender(k=10).fit(
                events,
                user_vectors=pd.DataFrame(run.text, index=users),
                item_vectors=item_vectors,
                segment_labels=pd.Series(run.labels, index=users),
            )
        return self._recommender

    def recommend(self, user_id: str, k: int = 10, explain: bool = False) -> list[RecommendedItem]:
        _check_k(k)
        self.run.row_of(user_id)  # a clear error for an unknown user
        recs = self.recommender.recommend(str(user_id), k=k)
        out = []
        with self.llm_batch("explanations"):
            for rec in recs:
                title = self.explanations.title(rec.item_id)
                if explain:
                    exp = self.explain(user_id, rec.item_id)
                    out.append(RecommendedItem(rec.item_id, title, round(rec.score, 4), exp["explanation"], exp["verified"], exp["source"], exp["evidence"]))
                else:
                    out.append(RecommendedItem(rec.item_id, title, round(rec.score, 4)))
        return out

    def llm_batch(self, what: str):
        """One wall-time budget shared by a batch of LLM phrasings; past it, the extractive writer answers."""
        from assistant.llm_bounds import llm_budget

        return llm_budget(self.settings.llm_batch_seconds, what)

    def recommend_all(self, k: int = 10, engine=None):
        """Batched top-k for every user: yields (user_id, [item ids]); ``engine`` (tools/segment/engine.py) scores
        them, this process (its LOCAL engine) by default."""
        from tools.segment.engine import LOCAL  # the engines' module pulls in scikit-learn: not at import time

        _check_k(k)
        top = (engine or LOCAL).top_k(self.recommender, k)
        for user, items in zip(top.user_ids, top.item_ids):
            yield str(user), [str(i) for i in items if i is not None]

    def explain(self, user_id: str, item_id: str) -> dict:
        """Evidence for (user, item), phrased by the backend, verified; the extractive text when it fails."""
        from assistant.explaining import explain_pair

        return explain_pair(self.explanations, self.backend, str(user_id), str(item_id))

    # -- segments ------------------------------------------------------------------
    def summary(self) -> dict:
        """The current run's segments.json, without loading its profiles and events (a large run's take seconds)."""
        if self._run is not None:
            return self._run.summary
        import json

        from tools.core.workspace import Workspace

        return json.loads((Workspace(self.workspace).require_run() / "segments.json").read_text())

    def segments(self) -> list[dict]:
        return self.summary()["segments"]


def _check_k(k: int) -> None:
    if not 1 <= k <= 100:
        raise ParameterError(f"k must be between 1 and 100, got {k}", "ask for e.g. 10 recommendations")
