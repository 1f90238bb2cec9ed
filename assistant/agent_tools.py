"""LangChain tools over the toolbox: validated inputs, a short text for the model, the artifact for the UI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from assistant.toolbox import Toolbox
from tools.core.errors import SegscopeError


class LoadDataInput(BaseModel):
    path: str | None = Field(None, description="A data file or folder; omit to use the workspace's data.")


class SegmentInput(BaseModel):
    k: int | Literal["auto"] | None = Field(None, description="Number of segments, or 'auto' to choose by silhouette; omit to keep the current run's.")
    algorithm: Literal["kmeans", "hdbscan", "agglomerative"] | None = Field(None, description="Omit to keep the current run's.")
    alpha: float | None = Field(None, ge=0.0, le=1.0, description="Weight of text (vs behaviour) in user profiles; omit to keep the current run's.")


class NoInput(BaseModel):
    pass


class SegmentRef(BaseModel):
    segment_id: int | Literal["biggest", "largest", "smallest"] = Field(description="A segment id, or 'biggest' / 'smallest'.")


class CompareInput(BaseModel):
    segment_a: int | Literal["biggest", "largest", "smallest"]
    segment_b: int | Literal["biggest", "largest", "smallest"]


class UserRef(BaseModel):
    user_id: str = Field(description="A user id exactly as in the data.")


class FindUsersInput(BaseModel):
    description: str = Field(min_length=2, description="What the users are like, in words.")
    segment_id: int | None = Field(None, description="Only users of this segment.")
    active_within_days: float | None = Field(None, gt=0, description="Only users active within this many days.")
    min_spend: float | None = Field(None, ge=0, description="Only users who spent at least this much.")
    n: int = Field(10, ge=1, le=50)


class FindItemsInput(BaseModel):
    description: str = Field(min_length=2, description="What the items are like, in words.")
    n: int = Field(10, ge=1, le=50)


class RecommendInput(BaseModel):
    user_id: str = Field(description="A user id exactly as in the data.")
    k: int = Field(10, ge=1, le=50)
    explain: bool = Field(False, description="Add a verified explanation to each item.")


class ExplainInput(BaseModel):
    user_id: str
    item_id: str


class ReportInput(BaseModel):
    fmt: Literal["html", "md"] = "html"
    segment_id: int | None = Field(None, description="Only this segment's card.")


TOOL_SPECS: list[tuple[str, type[BaseModel], str]] = [
    ("load_data", LoadDataInput, "Load a dataset and summarise it (users, items, events, event types). Use when the user asks what data is loaded or points to a file."),
    ("segment_users", SegmentInput, "Split users into segments (clusters) from their behaviour and texts. Use when asked to segment, group, cluster or split users/customers, or to re-run with another k, algorithm or alpha."),
    ("list_segments", NoInput, "List the current segments with their names, sizes and top trait. Use for 'what segments are there', 'show the groups'."),
    ("describe_segment", SegmentRef, "Describe one segment in depth: traits with lift, keywords, typical items, representatives. Use for 'what is special about segment N / the biggest segment'."),
    ("compare_segments", CompareInput, "Compare two segments: the traits that differ most. Use for 'compare 1 and 4', 'how does A differ from B'."),
    ("explain_user_segment", UserRef, "Explain why a user is in their segment: their values of the segment's defining traits and the next closest segment."),
    ("find_users", FindUsersInput, "Find users matching a description (semantic search), optionally within a segment, recently active, or above a spend."),
    ("find_items", FindItemsInput, "Find items matching a description (semantic search over item texts)."),
    ("recommend_items", RecommendInput, "Recommend items for a user with the segment-aware hybrid recommender; set explain=true when the user asks why."),
    ("explain_recommendation", ExplainInput, "Explain why an item is recommended to a user, with evidence checked against the data."),
    ("write_report", ReportInput, "Write a shareable report (HTML or Markdown) of the segments into the workspace's reports folder."),
]


def make_langchain_tools(toolbox: Toolbox) -> list:
    """StructuredTools returning (summary, artifact); a SegscopeError becomes a tool error the model can read."""
    from langchain_core.tools import StructuredTool, ToolException

    tools = []
    for name, schema, description in TOOL_SPECS:

        def call(_name=name, **kwargs):
            try:
                result = getattr(toolbox, _name)(**kwargs)
            except SegscopeError as exc:
                raise ToolException(exc.one_line()) from exc
            return result.summary, result.artifact

        tools.append(
            StructuredTool.from_function(
                func=call,
                name=name,
                description=description,
                args_schema=schema,
                response_format="content_and_artifact",
                handle_tool_error=lambda exc: f"Tool error: {exc}",
            )
        )
    return tools
