"""Versioned prompt templates shipped with the package.

A template file is ``NAME.vN.md``. A released version is never edited: a change
is a new version. Rendering quotes the evidence as JSON inside <data> tags, so
text from the data (reviews, titles) reaches the model as data, not instructions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.md$")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    def render(self, evidence: object, **values: str) -> str:
        """Fill ``{evidence}`` with the fenced JSON evidence and other ``{key}`` slots with values."""
        payload = json.dumps(evidence, indent=2, ensure_ascii=False, default=str)
        # A closing tag inside the data must not end the fence early.
        payload = payload.replace("</data>", "<\\/data>")
        fenced = f"<data>\n{payload}\n</data>"
        out = self.text.replace("{evidence}", fenced)
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out


def available() -> dict[str, list[int]]:
    """Template names and their versions."""
    found: dict[str, list[int]] = {}
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in found.items()}


def load_prompt(name: str, version: int | None = None) -> PromptTemplate:
    """A template by name; the latest version unless one is asked for."""
    versions = available().get(name)
    if not versions:
        raise KeyError(f"no prompt template named {name!r}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise KeyError(f"prompt {name!r} has no version {chosen} (has {versions})")
    text = resources.files(__name__).joinpath(f"{name}.v{chosen}.md").read_text(encoding="utf-8")
    return PromptTemplate(name, chosen, text)
