"""LangChain tools over the toolbox, built from the one registry: validated inputs, a short text for the model, the artifact for the UI."""

from __future__ import annotations

from assistant.registry import TOOLS
from assistant.toolbox import Toolbox
from tools.core.errors import SegscopeError


def make_langchain_tools(toolbox: Toolbox) -> list:
    """StructuredTools returning (summary, artifact); a SegscopeError becomes a tool error the model can read.

    Arguments go through the same resolver as the router's, so a model that passes
    "the book reviewers" as a segment or "Toy Story" as an item is understood.
    """
    from langchain_core.tools import StructuredTool, ToolException

    tools = []
    for spec in TOOLS:
        if not spec.for_agent:
            continue

        def call(_name=spec.name, **kwargs):
            try:
                result = getattr(toolbox, _name)(**kwargs)
            except SegscopeError as exc:
                raise ToolException(exc.one_line()) from exc
            return result.summary, result.artifact

        tools.append(
            StructuredTool.from_function(
                func=call,
                name=spec.name,
                description=spec.description,
                args_schema=spec.schema,
                response_format="content_and_artifact",
                handle_tool_error=lambda exc: f"Tool error: {exc}",
            )
        )
    return tools
