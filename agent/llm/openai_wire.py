"""The chat-completion reply as the backend reads it: only the fields it uses, parsed and validated in one pass.

The openai SDK's `chat.completions.create` transforms every request recursively and builds its own models of the
whole reply, then the backend copied those into its own: at high concurrency, with top-k logprobs on every token,
that was most of the client's CPU. Here the request is a plain dict posted as JSON and the reply's bytes go
straight into these models with pydantic-core (JSON → TokenLogprob, no intermediate dicts or SDK objects).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .types import TokenLogprob


class WireMessage(BaseModel):
    content: str | None = None
    reasoning_content: str | None = None  # vLLM's reasoning parser
    reasoning: str | None = None  # newer vLLM / other servers


class WireLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class WireChoice(BaseModel):
    message: WireMessage = Field(default_factory=WireMessage)
    logprobs: WireLogprobs | None = None
    finish_reason: str | None = None


class WireUsage(BaseModel):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0


class WireCompletion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    choices: list[WireChoice] = Field(default_factory=list)
    usage: WireUsage | None = None
    model: str | None = None


COMPLETION = TypeAdapter(WireCompletion)


def parse_completion(body: bytes) -> WireCompletion:
    """The reply of /chat/completions; raises pydantic.ValidationError on bytes that are not such a reply."""
    return COMPLETION.validate_json(body)
