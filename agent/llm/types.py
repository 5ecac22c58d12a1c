"""Request/response models shared by every LLM backend."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class LLMRequest(BaseModel):
    messages: list[ChatMessage]
    role: str = Field("generic", description="who is asking: planner, judge, answerer, …")
    max_tokens: int | None = None
    temperature: float | None = None
    json_schema: dict[str, Any] | None = Field(None, description="constrain the output to this schema")
    schema_name: str = "output"
    logprobs: bool = False
    top_logprobs: int = 0
    stop: list[str] | None = None
    seed: int | None = None

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters, as recorded in a trajectory."""
        return self.model_dump(include={"max_tokens", "temperature", "logprobs", "top_logprobs", "stop", "seed"})


class TopLogprob(BaseModel):
    token: str
    logprob: float


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    # `top_logprobs` is the OpenAI wire name (openai_wire.py validates replies straight into this model); null is [].
    top: Annotated[list[TopLogprob], BeforeValidator(lambda v: v or [])] = Field(
        default_factory=list, validation_alias=AliasChoices("top", "top_logprobs")
    )


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMResponse(BaseModel):
    text: str = Field(description="content with inline <think> blocks removed")
    raw_text: str = Field(description="content exactly as the backend returned it")
    reasoning: str | None = Field(None, description="reasoning_content, or the inline <think> text")
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    retries: int = 0
    backend: str = ""
    model: str = ""
    endpoint: str | None = None
    guided: bool = Field(False, description="the backend enforced json_schema while decoding")

    def logprob_summary(self) -> dict[str, float] | None:
        """Mean token log-probability and mean top-k entropy (nats) of the whole completion."""
        if not self.logprobs:
            return None
        n = len(self.logprobs)
        mean_lp = sum(t.logprob for t in self.logprobs) / n
        entropies = [_entropy(t.top) for t in self.logprobs if t.top]
        return {
            "tokens": n,
            "mean_logprob": mean_lp,
            "mean_entropy": sum(entropies) / len(entropies) if entropies else 0.0,
        }


def _entropy(top: list[TopLogprob]) -> float:
    """Entropy over the top-k alternatives, renormalised (a lower bound on the true entropy's support)."""
    probs = [math.exp(t.logprob) for t in top]
    total = sum(probs)
    if total <= 0:
        return 0.0
    return -sum(p / total * math.log(p / total) for p in probs if p > 0)
