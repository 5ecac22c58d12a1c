"""The closed-book baseline: the model answers from its own knowledge, no search."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..prompts import load_prompt
from .llm import ChatMessage, LLMClient, generate_structured
from .result import AskResult, RunUsage

if TYPE_CHECKING:
    from ..traces.recorder import TraceRecorder


class ShortAnswer(BaseModel):
    answer: str = Field(description="the shortest complete answer, or 'unknown'", max_length=300)


def _messages(question: str) -> list[ChatMessage]:
    return [ChatMessage(**m) for m in load_prompt("closed_book").render(question=question)]


async def answer_closed_book(client: LLMClient, question: str, recorder: TraceRecorder | None = None) -> AskResult:
    """Answer from the model alone. With a recorder (observing `client`), parse outcomes are recorded too."""
    started = time.perf_counter()
    outcome = await generate_structured(
        client,
        _messages(question),
        ShortAnswer,
        role="answerer",
        fallback=lambda: ShortAnswer(answer=""),
        max_tokens=96,
    )
    if recorder is not None:
        recorder.structured(outcome)
    answer = outcome.value.answer.strip()
    abstained = outcome.used_fallback or not answer or answer.lower() == "unknown"
    u = client.usage
    return AskResult(
        question=question,
        answer=answer,
        short_answer=answer,
        mode="closed_book",
        termination="abstained" if abstained else "answered",
        usage=RunUsage(
            llm_calls=u.llm_calls,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            seconds=round(time.perf_counter() - started, 3),
        ),
        backend=client.backend.name,
        model=client.model,
    )
