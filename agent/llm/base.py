"""The one interface every backend implements, and the per-run client that counts usage."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .types import LLMRequest, LLMResponse

if TYPE_CHECKING:
    from ..config import LLMSettings


class LLMBackend(abc.ABC):
    """A shared, long-lived connection to one model (server pool, loaded GGUF, or script)."""

    name: str = "base"

    @property
    @abc.abstractmethod
    def model(self) -> str: ...

    @property
    def supports_logprobs(self) -> bool:
        return True

    @property
    def guided_json(self) -> bool:
        """The backend constrains decoding to the requested JSON schema (so the prompt need not show it)."""
        return True

    @abc.abstractmethod
    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass


def chat_kwargs(request: LLMRequest, settings: LLMSettings) -> dict[str, Any]:
    """The OpenAI-style chat parameters both llama.cpp and OpenAI-compatible servers take (schema aside)."""
    kwargs: dict[str, Any] = {
        "messages": [m.model_dump() for m in request.messages],
        "max_tokens": request.max_tokens or settings.max_tokens,
        "temperature": settings.temperature if request.temperature is None else request.temperature,
    }
    seed = request.seed if request.seed is not None else settings.seed
    if seed is not None:
        kwargs["seed"] = seed
    if request.stop:
        kwargs["stop"] = request.stop
    if request.logprobs:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = request.top_logprobs or settings.top_logprobs
    return kwargs


class UsageTotals(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    llm_seconds: float = 0.0


CallObserver = Callable[[LLMRequest, LLMResponse | None, BaseException | None], None]


class LLMClient:
    """A per-run view of a shared backend: totals usage and tells observers (the recorder) of every call."""

    def __init__(self, backend: LLMBackend, observers: list[CallObserver] | None = None):
        self.backend = backend
        self.usage = UsageTotals()
        self.observers: list[CallObserver] = list(observers or [])
        self.gate: Callable[[], None] | None = None

    @property
    def model(self) -> str:
        return self.backend.model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        try:
            if self.gate is not None:
                self.gate()  # raises (an LLMError) when the run's budget forbids another call
            response = await self.backend.complete(request)
        except BaseException as e:
            for observe in self.observers:
                observe(request, None, e)
            raise
        u = self.usage
        u.llm_calls += 1
        u.prompt_tokens += response.usage.prompt_tokens
        u.completion_tokens += response.usage.completion_tokens
        u.retries += response.retries
        u.llm_seconds += response.latency_s
        for observe in self.observers:
            observe(request, response, None)
        return response
