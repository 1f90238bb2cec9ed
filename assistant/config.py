"""Settings from (highest first) flags, environment, a config file, and defaults.

Environment: SEGSCOPE_LLM, SEGSCOPE_LOCAL_ONLY, SEGSCOPE_EMBEDDER, ... and the
usual OPENAI_API_KEY / OPENAI_BASE_URL. Config file: $SEGSCOPE_CONFIG, else
$SEGSCOPE_HOME/config.toml, else $XDG_CONFIG_HOME/segscope/config.toml
(~/.config/segscope/config.toml), with the same keys in lower case:

    llm = "openai:gpt-4o-mini"
    llm_turn_seconds = 60
    local_only = false
    min_segment_size = 10
    chroma_url = "http://127.0.0.1:8000"   # a Chroma server for new runs' vectors ("local": the workspace's folder)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tools.core.errors import SegscopeError


def config_path() -> Path:
    if os.environ.get("SEGSCOPE_CONFIG"):
        return Path(os.environ["SEGSCOPE_CONFIG"])
    if os.environ.get("SEGSCOPE_HOME"):
        return Path(os.environ["SEGSCOPE_HOME"]) / "config.toml"
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "segscope" / "config.toml"


class Settings(BaseSettings):
    """Everything a user can configure; the active LLM backend is always shown to them."""

    model_config = SettingsConfigDict(env_prefix="SEGSCOPE_", extra="ignore", populate_by_name=True)

    llm: str = Field("extractive", description="'extractive' (built in, no network) or 'openai:MODEL'")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    llm_timeout: float = Field(30.0, gt=0, description="seconds before an LLM call is abandoned")
    llm_retries: int = Field(2, ge=0, le=10, description="retries with backoff for a failed LLM call")
    llm_turn_seconds: float = Field(60.0, gt=0, description="wall time one chat turn may wait for the model (tools' own time not counted)")
    llm_batch_seconds: float = Field(60.0, gt=0, description="wall time for one batch of LLM phrasings: a run's segment names, a list's or a report's explanations")
    llm_answer_tokens: int = Field(320, ge=16, le=8192, description="max_tokens of each agent step: a short answer with its key figures, or a tool call")
    local_only: bool = Field(False, description="refuse every remote call")
    embedder: str = "minilm"
    embed_backend: str = Field(
        "auto", description="what runs the embedding model: auto (int8 ONNX without AMX, else torch), torch, onnx or onnx-int8"
    )
    min_segment_size: int = Field(10, ge=1, description="segments smaller than this are never described member by member")
    chroma_url: str | None = Field(
        None,
        description="where new runs write their vectors: a Chroma server, http://HOST:PORT, or 'local' (the workspace's "
        "embedded store); unset: the store the workspace already uses, else the embedded one. Searches always read the "
        "store the live run was written to.",
    )

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, value: str | None) -> str | None:
        from tools.search.locator import LOCAL, parse_chroma_url

        if value is None or not value.strip():
            return None
        return LOCAL if value.strip().lower() == LOCAL else parse_chroma_url(value)

    @field_validator("llm")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        name = value.split(":", 1)[0]
        if name not in ("extractive", "openai"):
            raise ValueError(f"unknown LLM backend {value!r}: use 'extractive' or 'openai:MODEL'")
        if name == "openai" and not value.partition(":")[2]:
            raise ValueError("openai needs a model name, e.g. openai:gpt-4o-mini")
        return value

    @field_validator("embed_backend")
    @classmethod
    def _known_embed_backend(cls, value: str) -> str:
        from tools.embed.embedding import BACKENDS

        value = value.strip().lower()
        if value not in BACKENDS:
            raise ValueError(f"unknown embedding backend {value!r}: use one of {', '.join(BACKENDS)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings with command-line overrides (None means 'not given')."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
        # tools/embed reads the backend from the environment (so the segmentation child sees it too):
        # a config-file choice is passed on unless the variable already says otherwise.
        if settings.embed_backend != "auto":
            os.environ.setdefault("SEGSCOPE_EMBED_BACKEND", settings.embed_backend)
        return settings
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise SegscopeError(f"invalid setting {field}: {first.get('msg')}", f"check flags, SEGSCOPE_* variables and {config_path()}") from None
    except ValueError as exc:  # e.g. a malformed TOML file
        raise SegscopeError(f"cannot read settings: {exc}", f"fix {config_path()}") from None
