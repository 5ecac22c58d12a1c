"""The closed-book baseline: the model answers from its own knowledge, no search."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ..prompts import load_prompt
from .config import Settings
from .llm import ChatMessage, LLMBackend, LLMClient, generate_structured
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


async def arecord_closed_book(
    settings: Settings,
    question: str,
    backend: LLMBackend,
    *,
    traces_dir: Path | None = None,
    gold: list[str] | None = None,
    meta: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> AskResult:
    """A recorded closed-book run on a (possibly shared) backend; a failure is recorded as error_<kind>."""
    from ..traces.session import start_run_recording

    with start_run_recording(
        settings, question, mode="closed_book", backend=backend, traces_dir=traces_dir, gold=gold, meta=meta,
        trace_id=trace_id,
    ) as recorder:
        client = LLMClient(backend, observers=[recorder.observer()])
        result = await answer_closed_book(client, question, recorder)
        recorder.finish(result.answer, termination=result.termination, usage=result.usage, gold=gold)
    return result.model_copy(update={"trace_id": recorder.id})
