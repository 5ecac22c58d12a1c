"""Build the configured backend."""

from __future__ import annotations

from ..config import LLMSettings
from ..errors import ConfigError
from .base import LLMBackend


def build_backend(settings: LLMSettings) -> LLMBackend:
    backend = settings.resolved_backend()
    if backend == "openai":
        if not settings.base_url:
            raise ConfigError("llm.backend = openai needs llm.base_url (--llm-base-url or DEEPSEARCH_LLM_BASE_URL)")
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    if backend == "llamacpp":
        from .llamacpp_backend import LlamaCppBackend

        return LlamaCppBackend(settings)
    raise ConfigError(f"llm.backend = {backend} is for tests only; use llamacpp or openai")
