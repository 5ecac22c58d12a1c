"""The Ray worker: an actor that answers questions with its own backend, answerer and concurrency.

The class is plain Python (the driver wraps it with `ray.remote` when it starts the pool), so this
module imports without Ray. A worker answers through the local batch's own `BatchRunner.answer`:
the same timeout, scoring, judge, and the same split between a question's failure (an error row)
and a failure that would hit every question (returned as `fatal`; the driver stops the batch).
"""

from __future__ import annotations

import os
import shutil
import socket

from pydantic import BaseModel

from ..batch.answerers import build_answerer
from ..batch.inputs import BatchQuestion
from ..batch.judge import AnswerJudge
from ..batch.rows import BatchRow
from ..batch.runner import FATAL, BatchRunner
from ..config import Settings
from ..errors import DeepsearchError
from ..llm import build_backend
from .trajectories import make_scratch, stable_trace_id, take_trajectory


class WorkerInfo(BaseModel):
    node: str
    pid: int


class RemoteFailure(BaseModel):
    """A user-facing error raised on a worker, carried back as data (exception classes need not unpickle)."""

    kind: str
    message: str
    exit_code: int = 1

    @classmethod
    def of(cls, error: DeepsearchError) -> RemoteFailure:
        return cls(kind=type(error).__name__, message=str(error), exit_code=error.exit_code)

    def error(self) -> DeepsearchError:
        return DeepsearchError(self.message, self.exit_code)


class WorkDone(BaseModel):
    row: BatchRow | None = None
    trajectory: bytes | None = None
    fatal: RemoteFailure | None = None


class QuestionWorker:
    def __init__(
        self, settings: Settings, *, batch: str, closed_book: bool, timeout_s: float | None, judge: bool
    ) -> None:
        self.pid = os.getpid()
        self.batch = batch
        self.scratch = make_scratch()
        self.startup_error: RemoteFailure | None = None
        self.backend = self.answerer = self.runner = None
        settings = settings.model_copy(deep=True)
        settings.traces.dir = self.scratch
        try:
            self.backend = build_backend(settings.llm)
            self.answerer = build_answerer(
                settings, self.backend, closed_book=closed_book, batch=batch, trace_ids=self.trace_id
            )
        except DeepsearchError as e:  # a bad index or model: told to the driver by `info`, not as a dead actor
            self.startup_error = RemoteFailure.of(e)
            return
        judge_ = AnswerJudge(self.backend) if judge else None
        self.runner = BatchRunner(self.answerer, None, timeout_s=timeout_s, judge=judge_)

    def trace_id(self, question: BatchQuestion) -> str:
        return stable_trace_id(self.batch, question.id)

    def info(self) -> WorkerInfo | RemoteFailure:
        return self.startup_error or WorkerInfo(node=socket.gethostname(), pid=self.pid)

    async def answer(self, question: BatchQuestion) -> WorkDone:
        if self.runner is None:
            assert self.startup_error is not None
            return WorkDone(fatal=self.startup_error)
        try:
            row = await self.runner.answer(question)
        except FATAL as e:
            return WorkDone(fatal=RemoteFailure.of(e))
        trace_id = self.trace_id(question)
        trajectory = take_trajectory(self.scratch, trace_id)
        if trajectory is not None and row.trace_id is None:  # a failed run's log: the row points at it too
            row.trace_id = trace_id
        return WorkDone(row=row, trajectory=trajectory)

    async def close(self) -> None:
        if self.answerer is not None:
            self.answerer.close()
        if self.backend is not None:
            await self.backend.aclose()
        shutil.rmtree(self.scratch, ignore_errors=True)
