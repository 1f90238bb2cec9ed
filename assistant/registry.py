"""The one list of the assistant's tools: name, input schema, description, slash command.

The toolbox dispatches by it, the LangChain tools are built from it, the router
routes to it and checks required arguments with it, and the routing benchmark
normalises expected arguments through it. A new tool is one entry here plus one
Toolbox method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tools.core.errors import ParameterError

SegmentRefValue = int | str
SEGMENT_REF = "A segment id, a rank ('biggest', 'second smallest') or words of its name ('the book reviewers')."
USER_REF = "A user id as written in the data (e.g. u00042); 'user 42' and '#42' are understood."
ITEM_REF = "An item id (e.g. i00042), or its title ('Toy Story', 'the Aquara vitamin C serum')."


class LoadDataInput(BaseModel):
    path: str | None = Field(None, description="A data file or folder; omit to use the workspace's data.")


class SegmentInput(BaseModel):
    k: int | Literal["auto"] | None = Field(None, description="Number of segments, or 'auto' to choose by silhouette; omit to keep the current run's.")
    algorithm: Literal["kmeans", "hdbscan", "agglomerative"] | None = Field(None, description="Omit to keep the current run's.")
    alpha: float | None = Field(None, ge=0.0, le=1.0, description="Weight of text (vs behaviour) in user profiles: 0 = behaviour only, 1 = text only; omit to keep the current run's.")


class NoInput(BaseModel):
    pass


class SegmentRef(BaseModel):
    segment_id: SegmentRefValue = Field(description=SEGMENT_REF)


class CompareInput(BaseModel):
    segment_a: SegmentRefValue = Field(description=SEGMENT_REF)
    segment_b: SegmentRefValue = Field(description=SEGMENT_REF)


class UserRef(BaseModel):
    user_id: str = Field(description=USER_REF)


class FindUsersInput(BaseModel):
    description: str = Field(min_length=2, description="What the users are like or like, in words (tastes, interests).")
    segment_id: SegmentRefValue | None = Field(None, description="Only users of this segment. " + SEGMENT_REF)
    active_within_days: float | None = Field(None, gt=0, description="Only users active within this many days.")
    min_spend: float | None = Field(None, ge=0, description="Only users who spent at least this much.")
    n: int = Field(10, ge=1, le=50)


class FindItemsInput(BaseModel):
    description: str = Field(min_length=2, description="What the items are like, in words.")
    n: int = Field(10, ge=1, le=50)


class RecommendInput(BaseModel):
    user_id: str = Field(description=USER_REF)
    k: int = Field(10, ge=1, le=50)
    explain: bool = Field(False, description="Add a verified explanation to each item (set it when the user asks why).")


class ExplainInput(BaseModel):
    user_id: str = Field(description=USER_REF)
    item_id: str = Field(description=ITEM_REF)


class ReportInput(BaseModel):
    fmt: Literal["html", "md"] = "html"
    segment_id: SegmentRefValue | None = Field(None, description="Only this segment's card. " + SEGMENT_REF)


class FilterInput(BaseModel):
    feature: str = Field(description="A measure: recency_days, frequency, monetary, purchases, avg_price, rating_mean, first_seen_days, or another feature of the run.")
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float


class RankUsersInput(BaseModel):
    by: str | None = Field(None, description=(
        "What to rank by: churn_risk (overdue against their own rhythm), recency_days (lapsed: days since last active), "
        "monetary (spend, value), frequency (activity), first_seen_days (new customers), purchases, avg_price, rating_mean, "
        "or another feature. Omit to rank by the first filter's measure."))
    order: Literal["asc", "desc"] | None = Field(None, description="desc = highest first; omit for the measure's natural order (newest first for first_seen_days).")
    filters: list[FilterInput] = Field(default_factory=list, description="Conditions every user must meet, e.g. recency_days > 90.")
    segment_id: SegmentRefValue | None = Field(None, description="Only users of this segment. " + SEGMENT_REF)
    n: int = Field(10, ge=1, le=200, description="How many users to list (the answer always gives how many match).")


class DriftInput(BaseModel):
    window_days: float | None = Field(None, gt=0, description="Compare the data's last N days with before: 30 for 'since last month', 90 for 'this quarter'. Omit with since_run.")
    since_run: str | None = Field(None, description="Compare with an earlier run of the workspace: a run key, or 'previous' ('since the last segmentation').")
    from_segment: SegmentRefValue | None = Field(None, description="Only users who were in this segment before. " + SEGMENT_REF)
    to_segment: SegmentRefValue | None = Field(None, description="Only users who are in this segment now. " + SEGMENT_REF)
    n: int = Field(10, ge=1, le=100, description="How many movers to name.")


class AuditInput(BaseModel):
    sensitive: list[str] | None = Field(None, description="User attributes to audit, e.g. ['gender', 'age']; omit for every attribute the data has.")
    level: Literal["leaf", "top"] = Field("leaf", description="leaf: the segments users are in; top: the top level of a two-level run.")
    recommendations: bool = Field(True, description="Also audit recommendation quality (HR@10, NDCG@10) and popular-item exposure per group.")


class ExportInput(BaseModel):
    segment_id: SegmentRefValue | None = Field(None, description="The segment whose members to export; omit for every user. " + SEGMENT_REF)
    fmt: Literal["csv", "parquet", "jsonl"] = Field("csv", description="File format of the member list.")
    changed_since: str | None = Field(None, description=(
        "Only users who entered, left or moved since an earlier run of this workspace, for syncing: 'previous' "
        "(the run before this one) or a run key."))


class WhatIfInput(BaseModel):
    user_id: str = Field(description=USER_REF)
    segment_id: SegmentRefValue = Field(description="The segment to move the user into. " + SEGMENT_REF)
    max_changes: int = Field(10, ge=1, le=50, description="At most this many unit changes (events or orders added, a new visit).")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    schema: type[BaseModel]
    description: str  # what the model reads: when to use the tool
    slash: str | None = None  # the router's command
    verb: str = ""  # "describe a segment": how the router asks "do you want me to … or to …?"
    missing: tuple[str, str] | None = None  # (argument, question) when a required argument is not given
    for_agent: bool = True
    router_extras: tuple[str, ...] = ()  # arguments only the router's slash commands pass


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("load_data", LoadDataInput, "Load a dataset and summarise it (users, items, events, event types). Use when the user asks what data is loaded or points to a file.",
             "/data", "summarise the data"),
    ToolSpec("segment_users", SegmentInput, "Split users into segments (clusters) from their behaviour and texts. Use when asked to segment, group, cluster or split users/customers, or to re-run with another k, algorithm or alpha.",
             "/segment", "segment the users", router_extras=("data_path",)),
    ToolSpec("list_segments", NoInput, "List the current segments with their names, sizes and top trait. Use for 'what segments are there', 'show the groups'.",
             "/segments", "list the segments"),
    ToolSpec("describe_segment", SegmentRef, "Describe one segment in depth: traits with lift, keywords, typical items, representatives. Use for 'what is special about segment N / the biggest segment / the book reviewers'.",
             "/describe", "describe a segment", ("segment_id", "Which segment? Give its id, a rank or its name, e.g. “describe segment 2” or “describe the biggest segment”.")),
    ToolSpec("compare_segments", CompareInput, "Compare two segments: the traits that differ most. Use for 'compare 1 and 4', 'how does A differ from B', 'the two largest'.",
             "/compare", "compare two segments", ("segment_b", "Which two segments? e.g. “compare 1 and 4” or “compare the biggest and the smallest”.")),
    ToolSpec("explain_user_segment", UserRef, "Explain why a user is in their segment: their values of the segment's defining traits and the next closest segment.",
             "/why-user", "explain a user's segment", ("user_id", "Which user? Give their id, e.g. “why is u00042 in their segment”.")),
    ToolSpec("find_users", FindUsersInput, "Find users whose tastes match a description (semantic search over what they did and wrote), optionally within a segment, recently active, or above a spend. Not for ranking by behaviour: use rank_users.",
             "/find", "find users by taste"),
    ToolSpec("find_items", FindItemsInput, "Find items matching a description (semantic search over item texts).", "/find-items", "find items"),
    ToolSpec("recommend_items", RecommendInput, "Recommend items for a user with the segment-aware hybrid recommender; set explain=true when the user asks why.",
             "/recommend", "recommend items", ("user_id", "For which user? Give their id, e.g. “recommend something for u00042”.")),
    ToolSpec("explain_recommendation", ExplainInput, "Explain why an item is recommended to a user, with evidence checked against the data.",
             "/explain", "explain a recommendation", ("item_id", "Which user and item? e.g. “why recommend i00012 to u00042”.")),
    ToolSpec("rank_users", RankUsersInput, (
        "Rank or count users by behaviour: churn risk, lapsed (recency), most valuable (spend), most active, new customers, "
        "'how many users …', 'top 20 spenders in segment 2'. Cites the values ranked by. Use this, not find_users, for behaviour."),
             "/rank", "rank users by behaviour"),
    ToolSpec("segment_drift", DriftInput, (
        "How segments changed over time: who moved from one segment to another (named), size changes, trait shifts with "
        "confidence intervals, users who fit no segment. Use for 'who moved from the loyal segment to lapsed since last "
        "month', 'how did the segments change this quarter', 'what changed since the last run'."),
             "/drift", "show how segments changed"),
    ToolSpec("audit_segments", AuditInput, (
        "Fairness audit against user attributes (gender, age, occupation…): Cramér's V of the segments with each attribute "
        "and its p-value, each segment's composition, which segment is in effect a proxy for an attribute and which features "
        "carry it, and recommendation quality (HR@10, NDCG@10) and popular-item exposure per group. Use for 'is any segment "
        "a proxy for gender', 'audit the segments for fairness', 'are recommendations worse for women'."),
             "/audit", "audit the segments for fairness"),
    ToolSpec("export_segment", ExportInput, (
        "Export a segment's members (user_id, segment_id, stable segment key, their behaviour features) as a CSV, Parquet or "
        "JSON-lines file in the workspace's exports folder, for a CRM, ad or e-mail tool; changed_since='previous' writes "
        "only who entered or left since the last run. Use for 'export the lapsed buyers to csv', 'a list of segment 3's user ids'."),
             "/export", "export a segment's members"),
    ToolSpec("what_would_move", WhatIfInput, (
        "What would move a user into another segment: the smallest feasible change in their own behaviour (more purchases "
        "in a category, a new visit, new interests, with the items named), in their units, verified by re-assigning the "
        "changed profile with the saved model; or why no change within the bound gets there. Use for 'what would move "
        "u00042 into segment 3', 'what would it take for this user to become a book reviewer'."),
             "/whatif", "say what would move a user into a segment", ("segment_id", "Into which segment? e.g. “what would move u00042 into segment 3”.")),
    ToolSpec("write_report", ReportInput, "Write a shareable report (HTML or Markdown) of the segments into the workspace's reports folder.",
             "/report", "write a report"),
    ToolSpec("help", NoInput, "What the assistant can do.", "/help", "show help", for_agent=False),
)

BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}
TOOL_NAMES: tuple[str, ...] = tuple(t.name for t in TOOLS if t.for_agent)
SLASH: dict[str, str] = {t.slash: t.name for t in TOOLS if t.slash}


def validate_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` checked against the tool's schema: the arguments given, with their types fixed; ParameterError when invalid."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise ParameterError(f"unknown tool {name!r}", "tools: " + ", ".join(TOOL_NAMES))
    extras = {k: v for k, v in args.items() if k in spec.router_extras}
    given = {k: v for k, v in args.items() if k not in spec.router_extras}
    unknown = set(given) - set(spec.schema.model_fields)
    if unknown:
        raise ParameterError(f"{name} has no argument {', '.join(sorted(unknown))}", "arguments: " + ", ".join(spec.schema.model_fields))
    try:
        model = spec.schema.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParameterError(f"{name}: {where}: {first['msg']}") from exc
    return {**model.model_dump(exclude_unset=True), **extras}


def full_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Every argument with its default filled in: what the benchmark compares."""
    spec = BY_NAME[name]
    extras = {k: v for k, v in args.items() if k in spec.router_extras}
    model = spec.schema.model_validate({k: v for k, v in args.items() if k not in spec.router_extras})
    return {**model.model_dump(), **extras}
