"""LLM backends: a small registry with capability flags.

- ``extractive``: built in, no network. It does not generate free text: the
  phrasing layer uses the deterministic, evidence-only writers in ``tools``.
- ``openai:MODEL``: any OpenAI-compatible endpoint through langchain-openai
  (OpenAI, Ollama, vLLM, llama.cpp server) via OPENAI_BASE_URL / OPENAI_API_KEY,
  with timeouts and retries. Everything sent is masked for personal identifiers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlparse

from assistant.config import Settings
from tools.core.errors import SegscopeError
from tools.core.privacy import mask_identifiers

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class LLMError(SegscopeError):
    """An LLM call failed (timeout, HTTP error, refused by --local-only)."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    generative: bool  # writes free text from prompts
    supports_tools: bool  # can drive the agent's tool calls
    detail: str

    def label(self) -> str:
        return f"{self.name} ({self.detail})"


class LLMBackend(ABC):
    info: BackendInfo

    @abstractmethod
    def complete(self, system: str, prompt: str) -> str:
        """One completion as text; raises LLMError on failure."""

    def chat_model(self):  # pragma: no cover - overridden by tool-capable backends
        """A LangChain chat model for the agent, or None when the backend cannot call tools."""
        return None


class ExtractiveBackend(LLMBackend):
    info = BackendInfo(
        name="extractive",
        generative=False,
        supports_tools=False,
        detail="built in, deterministic, evidence only, no network",
    )

    def complete(self, system: str, prompt: str) -> str:
        raise LLMError("the extractive backend does not generate free text", "use the deterministic writers instead")


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class OpenAIBackend(LLMBackend):
    def __init__(self, model: str, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        base = settings.openai_base_url
        if settings.local_only and not is_loopback(base):
            raise LLMError(
                f"--local-only is set: refusing the remote LLM endpoint {base or 'api.openai.com'}",
                "use --llm extractive, or an endpoint on this machine (OPENAI_BASE_URL=http://127.0.0.1:PORT/v1)",
            )
        self.info = BackendInfo(
            name=f"openai:{model}",
            generative=True,
            supports_tools=True,
            detail=base or "api.openai.com",
        )
        self._chat = None

    def _api_key(self) -> str:
        if self.settings.openai_api_key is not None:
            return self.settings.openai_api_key.get_secret_value()
        if self.settings.openai_base_url:
            return "not-needed"  # local servers (Ollama, llama.cpp) accept any key
        raise LLMError("OPENAI_API_KEY is not set", "export OPENAI_API_KEY, or set OPENAI_BASE_URL to a local server")

    def chat_model(self):
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            self._chat = ChatOpenAI(
                model=self.model,
                base_url=self.settings.openai_base_url,
                api_key=self._api_key(),
                timeout=self.settings.llm_timeout,
                max_retries=self.settings.llm_retries,
                temperature=0,
            )
        return self._chat

    def complete(self, system: str, prompt: str) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        try:
            reply = self.chat_model().invoke([SystemMessage(mask_identifiers(system)), HumanMessage(mask_identifiers(prompt))])
        except SegscopeError:
            raise
        except Exception as exc:
            raise LLMError(f"LLM call to {self.info.detail} failed: {type(exc).__name__}: {exc}", "segscope falls back to the extractive backend") from exc
        content = reply.content
        if isinstance(content, list):
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
        return str(content)


def make_backend(settings: Settings) -> LLMBackend:
    """The backend ``settings.llm`` names."""
    name, _, model = settings.llm.partition(":")
    if name == "extractive":
        return ExtractiveBackend()
    if name == "openai":
        return OpenAIBackend(model, settings)
    raise LLMError(f"unknown LLM backend {settings.llm!r}", "use 'extractive' or 'openai:MODEL'")
