"""`deepsearch batch --ray ADDRESS`: the local batch's job with the answering spread over Ray workers.

The driver keeps everything that makes a batch resumable: it reads the input, skips the ids already
in the output (BatchJob), and is the only writer of rows and trajectories. Each worker holds a few
questions at a time; as each one comes back the driver stores its trajectory, then appends its row
with one write, and hands that worker the next question. A question whose worker dies goes back to
the queue, up to `ray.max_attempts` tries, then becomes an `error_worker_lost` row. A failure that
would hit every question (the LLM gone, bad configuration) stops the batch, as in local mode.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from ..batch.execute import BatchJob
from ..batch.inputs import BatchQuestion
from ..batch.output import OutputWriter
from ..batch.progress import BatchProgress
from ..batch.rows import BatchRow, failed_row
from ..batch.runner import _one_line
from ..errors import DeepsearchError
from .cluster import connect, plan_workers, worker_settings
from .pool import Worker, WorkerPool, ref_future
from .trajectories import store_trajectory
from .worker import WorkDone


class RayBatchJob(BatchJob):
    def __init__(self, *args, address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address
        self.pool: WorkerPool | None = None  # set while answering: tests and callers may look at the workers
        self.startup_s = self.answering_s = 0.0  # joining the cluster and starting the workers; then answering

    async def _answer(self, todo: list[BatchQuestion], writer: OutputWriter) -> None:
        started = time.perf_counter()
        cpus = connect(self.address)
        plan = plan_workers(self.settings, cluster_cpus=cpus, concurrency=self.concurrency, questions=len(todo))
        self.pool = await WorkerPool.start(
            worker_settings(self.settings, plan, self.concurrency), count=plan.workers, slots=plan.slots,
            batch=str(self.output), closed_book=self.closed_book, timeout_s=self.timeout_s, judge=self.judge,
        )  # fmt: skip
        self.startup_s = time.perf_counter() - started
        try:
            with BatchProgress(len(todo), quiet=self.quiet) as progress:
                dispatcher = Dispatcher(self, writer, on_done=progress.advance)
                await dispatcher.run(todo)
        finally:
            self.answering_s = time.perf_counter() - started - self.startup_s
            await self.pool.stop()
            if not self.quiet:
                title = f"Ray workers (started in {self.startup_s:.1f} s, answered in {self.answering_s:.1f} s)"
                Console(stderr=True, highlight=False).print(self.pool.table(title))


class Dispatcher:
    """Keeps every live worker's slots full and turns each result into a stored trajectory and a row."""

    def __init__(self, job: RayBatchJob, writer: OutputWriter, on_done: Callable[[BatchRow], None]):
        assert job.pool is not None
        self.job, self.pool, self.writer, self.on_done = job, job.pool, writer, on_done
        self.traces_dir = Path(job.settings.traces.dir)
        self.attempts: Counter[str] = Counter()
        self.started: dict[str, float] = {}

    async def run(self, todo: list[BatchQuestion]) -> None:
        queue = deque(todo)
        pending: dict[asyncio.Future, tuple[BatchQuestion, Worker]] = {}
        probes: set[asyncio.Task] = set()
        try:
            while queue or pending or probes:
                self._fill(queue, pending)
                if not pending and not probes:
                    raise DeepsearchError(
                        f"every Ray worker died; {len(queue)} question(s) left unanswered (the rows written are kept: "
                        "run again with --resume)"
                    )
                done, _ = await asyncio.wait([*pending, *probes], return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    if future in probes:
                        probes.discard(future)  # type: ignore[arg-type]
                        future.result()
                        continue
                    question, worker = pending.pop(future)
                    worker.outstanding -= 1
                    if (probe := self._settle(future, question, worker, queue)) is not None:
                        probes.add(probe)
        finally:
            for probe in probes:
                probe.cancel()

    def _fill(self, queue: deque[BatchQuestion], pending: dict) -> None:
        while queue and (worker := self.pool.free_worker()) is not None:
            question = queue.popleft()
            self.started.setdefault(question.id, time.perf_counter())
            pending[ref_future(worker.handle.answer.remote(question))] = (question, worker)
            worker.outstanding += 1

    def _settle(
        self, future: asyncio.Future, question: BatchQuestion, worker: Worker, queue: deque[BatchQuestion]
    ) -> asyncio.Task | None:
        """Write the question's outcome, or requeue it when its worker died; returns a probe of a dead worker."""
        import ray

        try:
            done: WorkDone = future.result()
        except ray.exceptions.RayTaskError as e:  # raised inside `answer` past the runner: a bug, this question's
            self._write(self._failed(question, "error_worker", _one_line(e.cause or e)), None, worker)
            return None
        except ray.exceptions.RayError as e:  # the worker process (or its node) is gone
            worker.lost += 1
            self.attempts[question.id] += 1
            if self.attempts[question.id] >= self.job.settings.ray.max_attempts:
                error = f"its Ray worker died {self.attempts[question.id]} time(s); last: {_one_line(e)}"
                self._write(self._failed(question, "error_worker_lost", error), None, worker)
            else:
                queue.appendleft(question)
            if worker.state != "up":
                return None  # already being probed (or dead)
            worker.state = "recovering"  # no new questions until Ray has restarted it
            return asyncio.create_task(self.pool.recover(worker))
        if done.fatal is not None:
            raise done.fatal.error()
        assert done.row is not None
        self._write(done.row, done.trajectory, worker)
        return None

    def _write(self, row: BatchRow, trajectory: bytes | None, worker: Worker) -> None:
        if trajectory is not None and row.trace_id:
            store_trajectory(self.traces_dir, row.trace_id, trajectory, fsync=self.job.settings.traces.fsync)
        self.writer.append(row)  # after its trajectory: a written row always points at a stored log
        worker.answered += 1
        worker.failed += row.error is not None
        self.on_done(row)

    def _failed(self, question: BatchQuestion, termination: str, error: str) -> BatchRow:
        llm = self.job.settings.llm
        row = failed_row(
            question.id, question.question, mode="closed_book" if self.job.closed_book else "research",
            termination=termination, error=error, backend=llm.resolved_backend(), model=llm.model,
            gold=question.answers,
        )  # fmt: skip
        row.usage.seconds = round(time.perf_counter() - self.started.get(question.id, time.perf_counter()), 3)
        row.meta = question.meta
        return row
