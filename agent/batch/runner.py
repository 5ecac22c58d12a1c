"""Answer questions concurrently and append each row as soon as its question is done.

A question's own failure (a server error, a timeout, a bug in one run) becomes a row with `error`
and an `error_<kind>` termination, and the batch goes on. A failure that would hit every question
(the LLM endpoint unreachable, the traces or output directory unwritable, bad configuration) stops
the batch instead of writing a thousand error rows: what is written stays, `--resume` continues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from ...traces.recorder import TraceWriteError, termination_for
from ...traces.scoring import is_abstention, score_result
from ..errors import ConfigError, UsageError
from ..llm.errors import EmbeddedModelMissing, LLMError, LLMUnavailable
from .answerers import Answerer
from .inputs import BatchQuestion
from .judge import AnswerJudge
from .output import OutputWriter
from .rows import BatchRow, failed_row

FATAL = (LLMUnavailable, EmbeddedModelMissing, TraceWriteError, ConfigError, UsageError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"[:500]


class BatchRunner:
    def __init__(
        self,
        answerer: Answerer,
        writer: OutputWriter | None,  # None when only `answer` is used (a Ray worker: its driver writes the rows)
        *,
        concurrency: int = 8,
        timeout_s: float | None = None,
        judge: AnswerJudge | None = None,
        on_done: Callable[[BatchRow], None] | None = None,
    ):
        self.answerer, self.writer = answerer, writer
        self.concurrency, self.timeout_s = max(1, concurrency), timeout_s
        self.judge, self.on_done = judge, on_done
        self.rows: list[BatchRow] = []

    async def run(self, questions: Iterable[BatchQuestion]) -> list[BatchRow]:
        """Answer every question; returns the rows written by this run, in finishing order."""
        pending = iter(questions)  # shared by the workers: each takes the next question when it is free
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(self._worker(pending))
        except BaseExceptionGroup as failures:
            raise failures.exceptions[0] from None
        return self.rows

    async def _worker(self, pending: Iterable[BatchQuestion]) -> None:
        for question in pending:
            row = await self.answer(question)
            self.writer.append(row)
            self.rows.append(row)
            if self.on_done is not None:
                self.on_done(row)

    async def answer(self, q: BatchQuestion) -> BatchRow:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s) as deadline:
                result = await self.answerer(q)
        except LLMUnavailable as e:
            if await self._endpoint_gone():
                raise
            # The server answers now: this question lost its connection (resets, timeouts) through every retry.
            return self._failed(q, termination=termination_for(e), error=_one_line(e),
                                seconds=time.perf_counter() - started)  # fmt: skip
        except FATAL:
            raise
        except Exception as e:  # noqa: BLE001 - one question's failure is its row, not the batch's end
            timed_out = isinstance(e, TimeoutError) and deadline.expired()
            return self._failed(
                q,
                termination="error_timeout" if timed_out else termination_for(e),
                error=f"no answer within {self.timeout_s:g} s" if timed_out else _one_line(e),
                seconds=time.perf_counter() - started,
            )
        row = BatchRow(id=q.id, **result.model_dump(), gold=q.answers, meta=q.meta)
        if q.answers:
            # An abstention scores 0 (its explanatory text must not earn F1) and is not sent to the judge.
            row.scores = score_result(result.short_answer or result.answer, result.termination, q.answers)
            if self.judge is not None and not is_abstention(result.termination, result.short_answer or result.answer):
                row.scores.judge = await self.judge.grade(q.question, result.short_answer or result.answer, q.answers)
        return row

    async def _endpoint_gone(self, probes: int = 5, pause_s: float = 0.2) -> bool:
        """Whether the LLM endpoint is down for every question (it refuses the model listing `probes` times)."""
        list_models = getattr(getattr(self.answerer, "backend", None), "list_models", None)
        if list_models is None:
            return True
        for attempt in range(probes):
            try:
                await list_models()
                return False
            except LLMError:
                if attempt + 1 < probes:
                    await asyncio.sleep(pause_s)
        return True

    def _failed(self, q: BatchQuestion, *, termination: str, error: str, seconds: float) -> BatchRow:
        backend = getattr(self.answerer, "backend", None)
        row = failed_row(
            q.id, q.question, mode=self.answerer.mode, termination=termination, error=error, gold=q.answers,
            backend=getattr(backend, "name", ""), model=getattr(backend, "model", ""),
        )  # fmt: skip
        row.usage.seconds = round(seconds, 3)
        row.meta = q.meta
        return row
