"""Typed outputs from any backend: guided decoding → tolerant parse → one retry → typed fallback.

Nothing here raises on bad model output; every failure and repair is reported in the outcome so the
trajectory can record it. Backend failures (unreachable server) do propagate: they are not the
model's output and the caller decides the run's termination.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from .base import LLMClient
from .parsing import JSONParseError, parse_json_lenient
from .types import ChatMessage, LLMRequest, LLMResponse

T = TypeVar("T", bound=BaseModel)

RETRY_INSTRUCTION = (
    "Your previous reply could not be used: {error}\n"
    "Reply again with only one JSON object that matches the schema. No prose, no code fences."
)


class ParseFailure(BaseModel):
    attempt: int
    kind: Literal["no_json", "invalid_json", "schema", "repaired"]
    detail: str
    raw_excerpt: str


class StructuredOutcome(BaseModel, Generic[T]):
    value: T
    status: Literal["ok", "repaired", "retried", "fallback"]
    failures: list[ParseFailure] = Field(default_factory=list)
    responses: list[LLMResponse] = Field(default_factory=list)
    error: str | None = Field(None, description="why no call could be made or completed (a stop reason), if so")

    @property
    def used_fallback(self) -> bool:
        return self.status == "fallback"


@cache
def schema_for(model: type[BaseModel]) -> dict:
    return model.model_json_schema()


def _parse(model: type[T], text: str, attempt: int) -> tuple[T | None, list[ParseFailure]]:
    excerpt = text[:400]
    try:
        data, repaired = parse_json_lenient(text)
    except JSONParseError as e:
        kind = "no_json" if "no JSON" in str(e) else "invalid_json"
        return None, [ParseFailure(attempt=attempt, kind=kind, detail=str(e), raw_excerpt=excerpt)]
    notes = (
        [ParseFailure(attempt=attempt, kind="repaired", detail="json_repair", raw_excerpt=excerpt)] if repaired else []
    )
    try:
        return model.model_validate(data), notes
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, x['loc'])) or '(root)'}: {x['msg']}" for x in e.errors()[:5])
        return None, [*notes, ParseFailure(attempt=attempt, kind="schema", detail=detail, raw_excerpt=excerpt)]


async def generate_structured(
    client: LLMClient,
    messages: list[ChatMessage],
    model: type[T],
    *,
    role: str,
    fallback: T | Callable[[], T],
    max_tokens: int | None = None,
    temperature: float | None = None,
    logprobs: bool = False,
    top_logprobs: int = 5,
    schema_in_prompt: bool | None = None,
    seed: int | None = None,
) -> StructuredOutcome[T]:
    schema = schema_for(model)
    if schema_in_prompt is None:
        # Under guided decoding the grammar enforces the shape, and a small model shown the schema copies
        # its descriptions into the values. Without guidance the model needs to see it.
        schema_in_prompt = not client.backend.guided_json
    if schema_in_prompt:
        hint = "\n\nReply with one JSON object matching this JSON schema:\n" + json.dumps(schema, separators=(",", ":"))
        messages = [*messages[:-1], ChatMessage(role=messages[-1].role, content=messages[-1].content + hint)]
    request = LLMRequest(
        messages=messages,
        role=role,
        json_schema=schema,
        schema_name=model.__name__,
        max_tokens=max_tokens,
        temperature=temperature,
        logprobs=logprobs,
        top_logprobs=top_logprobs if logprobs else 0,
        seed=seed,
    )
    failures: list[ParseFailure] = []
    responses: list[LLMResponse] = []
    for attempt in (1, 2):
        response = await client.complete(request)
        responses.append(response)
        value, notes = _parse(model, response.text, attempt)
        failures += notes
        if value is not None:
            status = "ok" if attempt == 1 and not notes else ("repaired" if attempt == 1 else "retried")
            return StructuredOutcome(value=value, status=status, failures=failures, responses=responses)
        retry_messages = [
            *request.messages,
            ChatMessage(role="assistant", content=response.raw_text[:2000]),
            ChatMessage(role="user", content=RETRY_INSTRUCTION.format(error=notes[-1].detail)),
        ]
        request = request.model_copy(update={"messages": retry_messages})
    value = fallback() if callable(fallback) else fallback
    return StructuredOutcome(value=value, status="fallback", failures=failures, responses=responses)
