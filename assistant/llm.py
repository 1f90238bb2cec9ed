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
    def complete(self, system: str, prompt: str, max_tokens: int | None = None) -> str:
        """One completion as text, of at most ``max_tokens``; raises LLMError on failure."""

    def chat_model(self, max_tokens: int | None = None):  # pragma: no cover - overridden by tool-capable backends
        """A LangChain chat model for the agent, or None when the backend cannot call tools."""
        return None


class ExtractiveBackend(LLMBackend):
    info = BackendInfo(
        name="extractive",
        generative=False,
        supports_tools=False,
        detail="built in, deterministic, evidence only, no network",
    )

    def complete(self, system: str, prompt: str, max_tokens: int | None = None) -> str:
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
        self._chats: dict[int | None, object] = {}

    def _api_key(self) -> str:
        if self.settings.openai_api_key is not None:
            return self.settings.openai_api_key.get_secret_value()
        if self.settings.openai_base_url:
            return "not-needed"  # local servers (Ollama, llama.cpp) accept any key
        raise LLMError("OPENAI_API_KEY is not set", "export OPENAI_API_KEY, or set OPENAI_BASE_URL to a local server")

    def chat_model(self, max_tokens: int | None = None):
        """A streaming chat model whose every request carries ``max_tokens`` (the agent's answer budget by default)."""
        limit = max_tokens or self.settings.llm_answer_tokens
        if limit not in self._chats:
            from assistant.llm_compat import BoundedChatOpenAI

            self._chats[limit] = BoundedChatOpenAI(
                model=self.model,
                base_url=self.settings.openai_base_url,
                api_key=self._api_key(),
                timeout=self.settings.llm_timeout,
                max_retries=0,  # retries are BoundedChatOpenAI's, within the turn's budget
                retries=self.settings.llm_retries,
                max_tokens=limit,
                compat=bool(self.settings.openai_base_url),
                streaming=True,
                temperature=0,
            )
        return self._chats[limit]

    def complete(self, system: str, prompt: str, max_tokens: int | None = None) -> str:
        """Streamed, so a loop or an overrun budget stops it at once; a loop returns the text before it."""
        from langchain_core.messages import HumanMessage, SystemMessage

        from assistant.llm_bounds import RepetitionGuard, current_clock, llm_budget

        guard = RepetitionGuard()
        messages = [SystemMessage(mask_identifiers(system)), HumanMessage(mask_identifiers(prompt))]
        try:
            clock = current_clock()
            if clock is None or clock.agent_steps_only:  # a lone call, or one a tool makes in a turn: its own budget
                with llm_budget(self.settings.llm_batch_seconds, "generation"):
                    return self._read(messages, max_tokens, guard)
            return self._read(messages, max_tokens, guard)
        except SegscopeError:
            raise
        except Exception as exc:
            raise LLMError(f"LLM call to {self.info.detail} failed: {type(exc).__name__}: {exc}", "segscope falls back to the extractive backend") from exc

    def _read(self, messages: list, max_tokens: int | None, guard) -> str:
        stream = self.chat_model(max_tokens).stream(messages)
        try:
            for chunk in stream:
                content = chunk.content
                if isinstance(content, list):
                    content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
                if guard.feed(str(content)):
                    break  # a loop: what came before it may still hold a valid answer
        finally:
            stream.close()
        return guard.text


def make_backend(settings: Settings) -> LLMBackend:
    """The backend ``settings.llm`` names."""
    name, _, model = settings.llm.partition(":")
    if name == "extractive":
        return ExtractiveBackend()
    if name == "openai":
        return OpenAIBackend(model, settings)
    raise LLMError(f"unknown LLM backend {settings.llm!r}", "use 'extractive' or 'openai:MODEL'")
