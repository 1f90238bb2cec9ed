"""The assistant's tools as plain methods: a short text for the model, the full artifact for the UI.

The LangChain wrappers (assistant/agent_tools.py) and the deterministic router
both call these, so the agent and the router do exactly the same things.
Text that comes from the data is fenced as data in every summary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.service import WorkspaceService
from tools.core.errors import ParameterError, SegscopeError, WorkspaceError
from tools.explain.wording import fmt_compact, fmt_lift, fmt_pct
from tools.segment.tree import tree_order

if TYPE_CHECKING:
    from tools.explain.resolve import Resolver

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ToolResult:
    summary: str  # what the model reads
    artifact: dict[str, Any] = field(default_factory=dict)  # what the UI shows


def data_text(text: str, limit: int = 200) -> str:
    """Quote text from the data so a model reads it as data, never as an instruction."""
    clean = " ".join(str(text).split())[:limit].replace("</data>", "<\\/data>")
    return f"<data>{clean}</data>"


def _amount(value: float, unit: str) -> str:
    """Counts as whole numbers ("24 events"), everything else as the tables show it."""
    return f"{round(value):,}" if unit == "count" and float(value).is_integer() else fmt_compact(value, unit)


def _trait_line(t: dict) -> str:
    value = fmt_compact(t["segment_value"], t["unit"])
    overall = fmt_compact(t["population_value"], t["unit"])
    lift = "" if t.get("lift") is None else f", {fmt_lift(t['lift'])} overall"
    return f"{t['label']}: {value} vs {overall}{lift}"


CHECK_HERE_BYTES = 32 * 1024 * 1024  # data up to this size is checked for a finished run without a child


class Toolbox:
    """Every capability the assistant can call, over one workspace."""

    def __init__(self, service: WorkspaceService, data_path: Path | None = None, progress: ProgressFn | None = None) -> None:
        self.service = service
        self.data_path = data_path
        self.progress = progress or (lambda stage, done, total: None)
        # Segmentation runs in a child process (assistant.jobs): the interface keeps
        # the GIL, and a cancel (stop_requested) kills the work at once.
        self.stop_requested: Callable[[], bool] = lambda: False
        self._resolver: tuple[Path, Resolver] | None = None

    @property
    def resolver(self) -> Resolver:
        """Ids, titles and segments of the current run as people name them (rebuilt when the run changes)."""
        from tools.core.workspace import Workspace
        from tools.explain.resolve import Resolver, WorkspaceIndex

        run_dir = Workspace(self.service.workspace).require_run()
        if self._resolver is None or self._resolver[0] != run_dir:
            self._resolver = (run_dir, Resolver(WorkspaceIndex.load(run_dir)))
        return self._resolver[1]

    # -- data & segmentation ------------------------------------------------------
    def _data_source(self, path: str | None) -> Path:
        if path:
            return Path(path).expanduser()
        if self.data_path is not None:
            return self.data_path
        if self.service.has_run():
            return Path(self.service.summary()["data"]["source"])
        raise WorkspaceError("no data loaded yet", "give a data path, e.g. /segment with --data, or start segscope with --data PATH")

    def load_data(self, path: str | None = None) -> ToolResult:
        from tools.data.ingest import load_dataset

        source = self._data_source(path)
        data = load_dataset(source)
        self.data_path = source
        ev = data.events
        art = {
            "source": str(source),
            "kind": data.kind,
            "users": data.n_users,
            "items": data.n_items,
            "events": len(ev),
            "event_types": ev["event_type"].value_counts().head(8).to_dict(),
            "warnings": list(data.warnings),
        }
        kinds = ", ".join(f"{k} {v:,}" for k, v in art["event_types"].items())
        summary = f"{source}: {data.kind} data, {art['users']:,} users, {art['items']:,} items, {art['events']:,} events ({kinds})."
        return ToolResult(summary, art)

    def segment_users(self, k: int | str | None = None, algorithm: str | None = None, alpha: float | None = None,
                      data_path: str | None = None, seed: int | None = None) -> ToolResult:
        """Parameters not given keep the current run's (so "segment again with k=4" changes only k)."""
        from tools.pipeline import RunParams

        source = self._data_source(data_path)
        current = self.service.summary()["parameters"] if self.service.has_run() else {}
        params = RunParams(
            algorithm=algorithm or current.get("algorithm", "kmeans"),
            k=k if k is not None else ("auto" if algorithm or alpha is not None else current.get("k", "auto")),
            alpha=alpha if alpha is not None else current.get("alpha", 0.5),
            seed=seed if seed is not None else current.get("seed", 0),
            embedder=current.get("embedder", self.service.settings.embedder),
            keep_outliers=bool(current.get("keep_outliers", False)),
        )
        algorithm, alpha = params.algorithm, params.alpha
        from assistant.jobs import run_segment_job
        from tools.search.locator import choose_store

        store = choose_store(self.service.workspace, self.service.settings.chroma_url)
        run = self._finished_run(source, params, store) or run_segment_job(
            source, self.service.workspace, params.as_dict(), self.progress, self.stop_requested, store=store.record()
        )
        self.data_path = source
        self.service.reload()
        summary = run.summary
        subs = sum(1 for s in summary["segments"] if s.get("parent") is not None)
        count = f"{summary.get('k_top', summary['k'])} segments and {subs} sub-segments" if subs else f"{summary['k']} segments"
        lines = [*run.notices, f"Segmented {summary['data']['n_users']:,} users into {count} ({algorithm}, alpha {alpha})."]
        if summary.get("k_selection"):
            lines.append(summary["k_selection"]["reason"])
        m = summary["metrics"]
        if m.get("silhouette") is not None:
            lines.append(f"Silhouette {m['silhouette']:.3f}, Calinski–Harabasz {m['calinski_harabasz']:.1f}, Davies–Bouldin {m['davies_bouldin']:.3f}.")
        lines += [f"{'  ' * depth}- segment {s['id']} {data_text(s['name'], 80)}: {s['size']:,} users ({fmt_pct(s['share'], 1)})"
                  for s, depth, _ in tree_order(summary["segments"])]
        from tools.data.outliers import outliers_line

        note = outliers_line(summary["data"].get("outliers"))
        if note:
            lines.append(note)
        return ToolResult("\n".join(lines), {"summary": summary, "cached": run.cached})

    def _finished_run(self, source: Path, params, store):
        """The workspace's finished run for this data and these parameters, when the data is small enough to check here.

        Starting a child costs a second or two; a finished run is answered at once.
        Large data goes straight to the child, which checks the same thing there.
        """
        from tools.core.workspace import Workspace
        from tools.data.ingest import load_dataset
        from tools.embed.embedding import make_embedder, vectors_name
        from tools.pipeline import run_key, segment_dataset

        files = [p for p in (source.iterdir() if source.is_dir() else [source]) if p.is_file()] if source.exists() else []
        if not files or sum(p.stat().st_size for p in files) > CHECK_HERE_BYTES:
            return None
        data = load_dataset(source)
        vectors = vectors_name(make_embedder(params.embedder))  # lazy: loads no model
        if not Workspace(self.service.workspace).has_run(run_key(data, params, vectors)):
            return None
        return segment_dataset(data, self.service.workspace, params, progress=self.progress, store=store)

    # -- reading segments ---------------------------------------------------------
    def list_segments(self) -> ToolResult:
        run = self.service.run
        segs = run.summary["segments"]
        tops = sum(1 for s in segs if s.get("parent") is None)
        head = f"{tops} segments ({len(segs) - tops} sub-segments)" if tops < len(segs) else f"{run.k} segments"
        lines = [f"{head} of {run.summary['data']['n_users']:,} users:"]
        for s, depth, _ in tree_order(segs):
            traits = (s.get("traits_vs_parent") or s["traits"]) if depth else s["traits"]
            # Names and keywords are made from the data's words: fenced like any data text.
            top = _trait_line(traits[0]) if traits else "keywords " + data_text(", ".join(s["keywords"][:4]))
            lines.append(f"{'  ' * depth}- {s['id']} {data_text(s['name'], 80)}: {s['size']:,} users ({fmt_pct(s['share'], 1)}); {top}")
        return ToolResult("\n".join(lines), {"segments": segs})

    def _segment_id(self, segment_id: int | str) -> int:
        """A segment from an id, a rank ("biggest", "second smallest") or words of its name ("the book reviewers")."""
        return self.resolver.segment(segment_id)

    def describe_segment(self, segment_id: int | str) -> ToolResult:
        from tools.explain.describe import describe_segment

        sid = self._segment_id(segment_id)
        desc = describe_segment(self.service.run, sid, min_segment_size=self.service.settings.min_segment_size)
        # The narrative quotes names, keywords and titles from the data: the whole line is data to the model.
        lines = [data_text(desc.narrative, 1000), "Defining traits:"]
        lines += [f"- {_trait_line(t.as_dict())}" for t in desc.traits]
        if desc.keywords:
            lines.append("Keywords (from the data): " + data_text(", ".join(desc.keywords)))
        if desc.representative_texts:
            lines.append("Representative texts: " + " ".join(data_text(t, 120) for t in desc.representative_texts[:3]))
        if desc.note:
            lines.append(desc.note)
        return ToolResult("\n".join(lines), {"description": desc.as_dict()})

    def compare_segments(self, segment_a: int | str, segment_b: int | str) -> ToolResult:
        from tools.explain.describe import compare_segments

        a, b = self._segment_id(segment_a), self._segment_id(segment_b)
        if a == b:
            raise ParameterError("compare needs two different segments", "e.g. compare 1 and 4")
        cmp = compare_segments(self.service.run, a, b)
        lines = [data_text(cmp.narrative, 1000)]
        for d in cmp.differences:
            ratio = "" if d.ratio is None else f" ({fmt_lift(d.ratio)})"
            lines.append(f"- {d.label}: {fmt_compact(d.value_a, d.unit)} vs {fmt_compact(d.value_b, d.unit)}{ratio}")
        return ToolResult("\n".join(lines), {"comparison": cmp.as_dict()})

    def explain_user_segment(self, user_id: str) -> ToolResult:
        user_id = self.resolver.user(user_id)
        run = self.service.run
        row = run.row_of(str(user_id))
        sid = int(run.labels[row])
        seg = run.segment(sid)
        leaves = run.leaf_ids
        centres = np.vstack([run.fused[run.labels == c].mean(axis=0) for c in leaves])
        gaps = np.sqrt(((centres - run.fused[row]) ** 2).sum(axis=1))
        dist = dict(zip(leaves, gaps.tolist()))  # by leaf segment id (sub-segment ids run past the count of leaves)
        others = [leaves[i] for i in np.argsort(gaps) if leaves[i] != sid]
        runner_up = int(others[0]) if others else None
        names = list(run.feature_names)
        matches = []
        for t in seg["traits"]:
            if t["feature"] in names:
                value = float(run.feature_raw[row, names.index(t["feature"])])
                if np.isfinite(value):
                    matches.append({**t, "user_value": value})
        top = sid if run.top_labels is None else int(run.top_labels[row])
        parent = run.segment(top)
        within = "" if top == sid else f", a sub-segment of segment {top} “{data_text(parent['name'], 80)}” ({parent['size']:,} users)"
        lines = [f"User {user_id} is in segment {sid} “{data_text(seg['name'], 80)}” ({seg['size']:,} users){within}."]
        if runner_up is not None:
            lines.append(
                f"Their profile is {dist[sid]:.2f} from that segment's centre; the next closest is segment {runner_up} "
                f"“{data_text(run.segment(runner_up)['name'], 80)}” at {dist[runner_up]:.2f}."
            )
        for m in matches:
            u, s, p = (fmt_compact(m[key], m["unit"]) for key in ("user_value", "segment_value", "population_value"))
            lines.append(f"- {m['label']}: this user {u}, segment {s}, everyone {p}")
        art = {"user_id": str(user_id), "segment_id": sid, "segment_name": seg["name"], "top_segment_id": top,
               "top_segment_name": parent["name"], "distance": float(dist[sid]),
               "runner_up": runner_up, "runner_up_distance": None if runner_up is None else float(dist[runner_up]), "traits": matches}
        return ToolResult("\n".join(lines), art)

    # -- search ------------------------------------------------------------------
    def find_users(self, description: str, segment_id: int | None = None, active_within_days: float | None = None,
                   min_spend: float | None = None, n: int = 10) -> ToolResult:
        if not description.strip():
            raise ParameterError("describe the users to find", "e.g. find users who love gardening")
        vector = self.service.embedder.encode([description])[0]
        clauses: list[dict] = []
        if segment_id is not None:
            clauses.append({"segment_id": self._segment_id(segment_id)})
        if active_within_days is not None:
            clauses.append({"recency_days": {"$lte": float(active_within_days)}})
        if min_spend is not None:
            clauses.append({"monetary": {"$gte": float(min_spend)}})
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        from tools.search.vectors import search_run, users_collection

        summary = self.service.summary()
        hits, notice = search_run(self.service.store, self.service.workspace, summary, users_collection(summary["run_key"]), vector, n=n, where=where)
        rows = [{"user_id": uid, "similarity": round(1 - d, 3), **meta} for uid, d, meta in hits]
        lines = [notice] if notice else []
        lines.append(f"{len(rows)} users closest to {data_text(description, 120)}" + (f" with filters {where}" if where else "") + ":")
        lines += [f"- user {r['user_id']} (segment {r['segment_id']}, similarity {r['similarity']})" for r in rows]
        return ToolResult("\n".join(lines), {"users": rows, "where": where, "notice": notice})

    def find_items(self, description: str, n: int = 10) -> ToolResult:
        if not description.strip():
            raise ParameterError("describe the items to find", "e.g. find items like wireless headphones")
        vector = self.service.embedder.encode([description])[0]
        from tools.search.vectors import items_collection, search_run

        summary = self.service.summary()
        hits, notice = search_run(self.service.store, self.service.workspace, summary, items_collection(summary["data"]["fingerprint"]), vector, n=n)
        rows = [{"item_id": iid, "similarity": round(1 - d, 3), "title": meta.get("title", ""), "category": meta.get("category", "")} for iid, d, meta in hits]
        lines = [notice] if notice else []
        lines.append(f"{len(rows)} items closest to {data_text(description, 120)}:")
        lines += [f"- {r['item_id']} {data_text(r['title'], 80)} (similarity {r['similarity']})" for r in rows]
        return ToolResult("\n".join(lines), {"items": rows, "notice": notice})

    # -- behaviour ------------------------------------------------------------------
    def rank_users(self, by: str | None = None, order: str | None = None, filters: list | None = None,
                   segment_id: int | str | None = None, n: int = 10) -> ToolResult:
        """Rank or count users by behaviour (churn risk, recency, spend, activity, tenure), citing the values ranked by."""
        from tools.explain.describe import _feature_meta
        from tools.segment.rank import Filter, rank_users

        run = self.service.run
        sid = None if segment_id is None else self._segment_id(segment_id)
        conditions = [Filter(**(f.model_dump() if hasattr(f, "model_dump") else dict(f))) for f in filters or []]
        names, raw = list(run.feature_names), run.feature_raw
        wanted = {str(by or "").lower(), *(c.feature for c in conditions)}
        if wanted & {"churn_risk", "churn", "risk", "active_days"} and "active_days" not in names and "recency_days" in names:
            names, raw = names + ["active_days"], np.column_stack([raw, self._active_days(run)])
        # The segment's members as RunState counts them (a top-level segment: all of its sub-segments').
        labels = run.labels if sid is None else np.where(run.members(sid), sid, -1)
        r = rank_users(run.user_ids, labels, names, raw, by, order, conditions, sid, n, meta=_feature_meta(run))
        scope = "users" if sid is None else f"users of segment {sid} “{run.segment(sid)['name']}”"
        where = "; ".join(f"{r.labels[f.feature][0]} {f.op} {_amount(f.value, r.labels[f.feature][1])}" for f in r.filters)
        if where:
            lines = [f"{r.n_matching:,} of {r.n_considered:,} {scope} match {where}."]
        else:
            lines = [f"Ranking {r.n_matching:,} of {r.n_considered:,} {scope}."]
        if r.n_excluded:
            why = "too few visits for a usual gap" if r.by == "churn_risk" else f"no {r.label}"
            lines.append(f"{r.n_excluded:,} have {why} and are left out.")
        lines.append(r.method)
        for u in r.users:
            v = u.values
            if r.by == "churn_risk":  # said as an analyst would: away this long, against how often they came
                visits = next(c for c in v if c not in ("churn_risk", "recency_days", "typical_gap_days"))
                cited = [f"last active {_amount(v['recency_days'], 'days')} days ago, usually every {_amount(v['typical_gap_days'], 'days')} days "
                         f"({_amount(v[visits], 'count')} {r.labels[visits][0]}): {v['churn_risk']:,.1f}× their usual gap"]
                cited += [f"{r.labels[c][0]} {_amount(x, r.labels[c][1])}" for c, x in v.items() if c not in ("churn_risk", "recency_days", "typical_gap_days", visits)]
            else:
                cited = [f"{r.labels[c][0]} {_amount(x, r.labels[c][1])}" for c, x in v.items()]
            lines.append(f"- {u.user_id} (segment {u.segment_id}): " + "; ".join(cited))
        return ToolResult("\n".join(lines), {"ranking": r.as_dict(), "users": [{"user_id": u.user_id, "segment_id": u.segment_id, **u.values} for u in r.users]})

    def _active_days(self, run) -> np.ndarray:
        """Distinct days each user was active, from two columns of the run's events (read once per run)."""
        if getattr(self, "_days", None) is None or self._days[0] != run.run_dir:
            import pyarrow.parquet as pq

            from tools.segment.rank import active_days

            table = pq.ParquetFile(run.run_dir / "events.parquet").read(columns=["user_id", "timestamp"])
            days = active_days(table.column("user_id").to_numpy(zero_copy_only=False), table.column("timestamp").to_numpy(zero_copy_only=False), run.user_ids)
            self._days = (run.run_dir, days)
        return self._days[1]

    # -- recommendations --------------------------------------------------------
    def recommend_items(self, user_id: str, k: int = 10, explain: bool = False) -> ToolResult:
        user_id = self.resolver.user(user_id)
        recs = self.service.recommend(str(user_id), k=k, explain=explain)
        run = self.service.run
        seg = run.segment(int(run.labels[run.row_of(str(user_id))]))
        lines = [f"Top {len(recs)} items for user {user_id} (segment {seg['id']} “{seg['name']}”):"]
        for i, r in enumerate(recs, 1):
            lines.append(f"{i}. {r.item_id} {data_text(r.title, 80)}")
            if r.explanation:
                lines.append(f"   why ({'verified' if r.verified else 'NOT verified'}): {data_text(r.explanation, 400)}")
        return ToolResult("\n".join(lines), {"user_id": str(user_id), "segment": {"id": seg["id"], "name": seg["name"]}, "items": [r.as_dict() for r in recs]})

    def explain_recommendation(self, user_id: str, item_id: str) -> ToolResult:
        user_id, item_id = self.resolver.user(user_id), self.resolver.item(item_id)
        result = self.service.explain(str(user_id), str(item_id))
        status = "verified against the data" if result["verified"] else "NOT verified: " + "; ".join(result["problems"])
        summary = f"Why {item_id} {data_text(result['title'], 80)} for user {user_id} ({status}): {data_text(result['explanation'], 500)}"
        return ToolResult(summary, result)

    # -- change over time ------------------------------------------------------------
    def segment_drift(self, window_days: float | None = None, since_run: str | None = None, from_segment: int | str | None = None,
                      to_segment: int | str | None = None, n: int = 10) -> ToolResult:
        from assistant.drift_tool import segment_drift

        return segment_drift(self, window_days, since_run, from_segment, to_segment, n)

    # -- fairness -------------------------------------------------------------------
    def audit_segments(self, sensitive: list[str] | None = None, level: str = "leaf", recommendations: bool = True) -> ToolResult:
        """Fairness audit of the current run (reused when this run was audited the same way before)."""
        from tools.explain.audit import saved_or_new_audit
        from tools.explain.audit_text import audit_lines

        result, reused = saved_or_new_audit(self.service.run, sensitive or None, level=level, recommendations=recommendations,
                                            progress=self.progress)  # fmt: skip
        # Segment names and attribute values come from the data: fenced like any data text.
        lines = audit_lines(result, quote=lambda text: data_text(text, 80), detail=False)
        return ToolResult("\n".join(lines), {"audit": result, "reused": reused})

    # -- cohorts out ------------------------------------------------------------------
    def export_segment(self, segment_id: int | str | None = None, fmt: str = "csv", changed_since: str | None = None) -> ToolResult:
        """A segment's members (every user when no segment) as a file in the workspace's exports folder.

        The model never chooses where the file goes: tools/report/export.py names it in WORKSPACE/exports/.
        """
        from tools.core.workspace import Workspace
        from tools.report.export import check_format, export_members, run_keys

        check_format(fmt)
        run = self.service.run
        sid = None if segment_id is None or str(segment_id).strip().lower() == "all" else self._segment_id(segment_id)
        since = changed_since
        if since is not None and since.strip().lower() in ("previous", "last", "last run", "the previous run"):
            earlier = [k for k in run_keys(Workspace(self.service.workspace)) if k != run.summary["run_key"]]
            if not earlier:
                raise ParameterError("this workspace has no earlier run to compare with",
                                     "segment again (new data or parameters) to have one, or export all members")
            since = earlier[-1]
        result = export_members(run, segment="all" if sid is None else str(sid), fmt=fmt, changed_since=since)
        where = f"to {result.path} ({fmt})"
        if sid is None:
            what = (f"{result.rows:,} users who entered, left or moved segment since run {result.since_run[:12]}" if result.since_run
                    else f"{result.rows:,} users with their segments")
        else:
            name = f"segment {sid} “{data_text(run.segment(sid)['name'], 60)}”"
            what = (f"{result.rows:,} users who entered or left {name} since run {result.since_run[:12]}" if result.since_run
                    else f"{result.rows:,} members of {name}")
        return ToolResult(f"Wrote {what} {where}.", result.as_dict())

    # -- counterfactuals ------------------------------------------------------------
    def what_would_move(self, user_id: str, segment_id: int | str, max_changes: int = 10) -> ToolResult:
        """The smallest change in the user's own behaviour that the saved model assigns to the segment (tools/segment/whatif.py)."""
        from tools.segment.assign import load_fitted_run
        from tools.segment.whatif_text import what_would_move

        user_id, sid = self.resolver.user(user_id), self._segment_id(segment_id)
        result = what_would_move(load_fitted_run(self.service.workspace), str(user_id), sid, max_changes)
        return ToolResult("\n".join(result.lines(quote=data_text)), result.as_dict())

    # -- reports ------------------------------------------------------------------
    def write_report(self, fmt: str = "html", segment_id: int | None = None, filename: str | None = None) -> ToolResult:
        from assistant.reporting import build_report

        if fmt not in ("html", "md"):
            raise ParameterError(f"report format must be html or md, got {fmt!r}")
        name = filename or f"report-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        # A model never chooses where files go: only a plain file name inside the workspace's reports folder.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", name) or ".." in name:
            raise ParameterError(f"report file name {name!r} is not allowed", "use a plain name like report.html; reports are written inside the workspace")
        out = self.service.workspace / "reports" / name
        sid = None if segment_id is None else self._segment_id(segment_id)
        result = build_report(self.service, out, fmt=fmt, segment_id=sid)
        summary = f"Wrote {result['path']} ({result['n_explanations']} example explanations, {fmt_pct(result['pass_rate'], 0)} verified)."
        return ToolResult(summary, result)


def run_tool(toolbox: Toolbox, name: str, args: dict[str, Any]) -> ToolResult:
    """Call a tool of the registry by name with validated arguments; SegscopeError propagates for the caller to report."""
    from assistant.registry import TOOL_NAMES, validate_args

    if name not in TOOL_NAMES:
        raise SegscopeError(f"unknown tool {name!r}", "tools: " + ", ".join(TOOL_NAMES))
    return getattr(toolbox, name)(**validate_args(name, args))
