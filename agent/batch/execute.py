"""One batch from start to end: resume bookkeeping, the shared backend, progress, the runner, the rows.

Used by `deepsearch batch` and by `deepsearch eval` (which builds its questions from a data set).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from pathlib import Path

from ...traces.redact import Redactor
from ..config import Settings
from ..errors import UsageError
from .answerers import build_answerer
from .inputs import BatchQuestion
from .output import OutputWriter, scan_output
from .progress import BatchProgress
from .runner import BatchRunner


class BatchJob:
    def __init__(
        self,
        settings: Settings,
        output: Path,
        *,
        closed_book: bool = False,
        concurrency: int = 8,
        timeout_s: float | None = None,
        judge: bool = False,
        resume: bool = False,
        retry_errors: bool = False,
        quiet: bool = False,
        warn: Callable[[str], None] = lambda message: None,
    ):
        self.settings, self.output = settings, output
        self.closed_book, self.concurrency, self.timeout_s, self.judge = closed_book, concurrency, timeout_s, judge
        self.resume, self.retry_errors, self.quiet, self.warn = resume, retry_errors, quiet, warn
        self.skipped_done = 0

    def _open(self, questions: list[BatchQuestion]) -> tuple[list[BatchQuestion], OutputWriter]:
        existing = scan_output(self.output)
        has_content = existing.rows or existing.bad_lines or existing.torn_bytes
        if has_content and not self.resume:
            raise UsageError(
                f"{self.output} already holds {len(existing.rows)} row(s); add --resume to continue that batch "
                "or choose another -o"
            )
        for n in existing.bad_lines:
            self.warn(f"{self.output} line {n} is not an output row; left as it is, its question (if any) is redone")
        if existing.torn_bytes:
            self.warn(f"{self.output} ends in a cut-off line ({existing.torn_bytes} bytes): removed, question redone")
        done = existing.done_ids
        keep_rows = None
        if self.retry_errors:
            failed = {str(r["id"]) for r in existing.rows if r.get("error")}
            keep_rows = [r for r in existing.rows if str(r["id"]) not in failed]
            done -= failed
        todo = [q for q in questions if q.id not in done]
        self.skipped_done = len(questions) - len(todo)
        return todo, OutputWriter.open(self.output, existing, keep_rows=keep_rows, fsync=self.settings.traces.fsync,
                                        redactor=Redactor.from_settings(self.settings))

    async def run(self, questions: list[BatchQuestion]) -> list[dict]:
        """Answer what is not yet in the output; returns the output rows of `questions` (earlier runs' too)."""
        todo, writer = self._open(questions)
        try:
            if todo:
                with batch_gc():
                    await self._answer(todo, writer)
        finally:
            writer.close()
        wanted = {q.id for q in questions}
        return [r for r in scan_output(self.output).rows if str(r["id"]) in wanted]

    async def _answer(self, todo: list[BatchQuestion], writer: OutputWriter) -> None:
        from ..llm import build_backend
        from .judge import AnswerJudge

        backend = build_backend(self.settings.llm)
        answerer = None
        try:
            answerer = build_answerer(self.settings, backend, closed_book=self.closed_book, batch=self.output)
            with BatchProgress(len(todo), quiet=self.quiet) as progress:
                runner = BatchRunner(
                    answerer, writer, concurrency=self.concurrency, timeout_s=self.timeout_s,
                    judge=AnswerJudge(backend) if self.judge else None, on_done=progress.advance,
                )  # fmt: skip
                await runner.run(todo)
        finally:
            if answerer is not None:
                answerer.close()
            await backend.aclose()


# A batch's runs allocate many short-lived objects (graph states, trajectories, parsed replies); at the default
# generation-0 threshold the collector runs every few hundred allocations and its older generations re-walk every
# long-lived object (modules, the index, settings, memoised redactions) again and again: at concurrency 32 about a
# fifth of the client's CPU. During a batch: what exists before it is frozen (never walked), and generation 0 waits
# for BATCH_GC_GEN0 allocations. Both are restored afterwards.
BATCH_GC_GEN0 = 20_000


@contextlib.contextmanager
def batch_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(BATCH_GC_GEN0, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
