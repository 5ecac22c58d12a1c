"""The driver's view of its Ray workers: start them, hand out free slots, follow deaths and restarts.

Ray restarts a worker whose process dies (up to WORKER_RESTARTS times); its questions in flight fail
on the driver, which sends them to work again. Meanwhile the worker is `recovering`: it gets no new
questions until a probe reaches the restarted actor (`up`) or Ray gives up on it (`dead`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table

from ..config import Settings
from ..errors import DeepsearchError
from .worker import QuestionWorker, RemoteFailure, WorkerInfo

WORKER_RESTARTS = 3  # per worker; a worker that keeps dying (out of memory, a crashing library) is let go
PROBE_TIMEOUT_S = 300.0  # a restart that takes longer (a node lost, no room elsewhere) counts as dead
CLOSE_TIMEOUT_S = 30.0


def ref_future(ref: Any) -> asyncio.Future:
    """A Ray ObjectRef as an asyncio future of this loop (awaitable with asyncio.wait)."""
    return asyncio.wrap_future(ref.future())


@dataclass
class Worker:
    index: int
    handle: Any
    slots: int
    node: str = ""
    pids: list[int] = field(default_factory=list)
    state: Literal["up", "recovering", "dead"] = "up"
    outstanding: int = 0
    answered: int = 0
    failed: int = 0
    lost: int = 0
    restarts: int = 0

    @property
    def free(self) -> int:
        return self.slots - self.outstanding if self.state == "up" else 0


class WorkerPool:
    def __init__(self, workers: list[Worker]):
        self.workers = workers

    @classmethod
    async def start(
        cls, settings: Settings, *, count: int, slots: int, batch: str, closed_book: bool,
        timeout_s: float | None, judge: bool,
    ) -> WorkerPool:  # fmt: skip
        """Start `count` workers answering `slots` questions each; raises the first one's startup error."""
        import ray

        actor = ray.remote(QuestionWorker).options(
            num_cpus=settings.ray.worker_cpus,
            max_concurrency=slots + 2,  # room for `info` and `close` beside a full load
            max_restarts=WORKER_RESTARTS,
            max_task_retries=0,  # the driver retries, counting attempts per question
        )
        options = {"batch": batch, "closed_book": closed_book, "timeout_s": timeout_s, "judge": judge}
        pool = cls([Worker(i, actor.remote(settings, **options), slots) for i in range(count)])
        probes = [ref_future(w.handle.info.remote()) for w in pool.workers]
        infos = await asyncio.gather(*probes, return_exceptions=True)
        for worker, info in zip(pool.workers, infos, strict=True):
            problem = _startup_problem(info)
            if problem is not None:
                pool.kill()
                raise problem
            worker.node, worker.pids = info.node, [info.pid]
        return pool

    def free_worker(self) -> Worker | None:
        """The worker with the most free slots (None when all are full, recovering or dead)."""
        best = max(self.workers, key=lambda w: w.free)
        return best if best.free > 0 else None

    async def recover(self, worker: Worker, pause_s: float = 0.2) -> None:
        """Wait until Ray has restarted `worker` (`up`, its new pid noted) or has given up on it (`dead`)."""
        import ray

        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                info = await ref_future(worker.handle.info.remote())
            except ray.exceptions.ActorDiedError:
                break
            except ray.exceptions.RayActorError:  # restarting: unavailable for a moment
                await asyncio.sleep(pause_s)
                continue
            if isinstance(info, WorkerInfo):
                worker.state, worker.restarts = "up", worker.restarts + 1
                worker.node = info.node
                worker.pids.append(info.pid)
                return
            break
        worker.state = "dead"
        ray.kill(worker.handle, no_restart=True)

    async def stop(self) -> None:
        """Let live workers close their backends and scratch folders, then end every actor."""
        live = [w for w in self.workers if w.state == "up"]
        if live:
            closing = [ref_future(w.handle.close.remote()) for w in live]
            await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_S)
        self.kill()

    def kill(self) -> None:
        import ray

        for worker in self.workers:
            ray.kill(worker.handle, no_restart=True)

    def table(self, title: str = "Ray workers") -> Table:
        table = Table(title=title, title_justify="left")
        for column in ("worker", "node", "pid", "answered", "failed", "lost", "restarts", "state"):
            table.add_column(column, justify="right" if column not in ("node", "state") else "left")
        for w in self.workers:
            pids = ",".join(str(p) for p in w.pids)
            table.add_row(str(w.index), w.node, pids, str(w.answered), str(w.failed), str(w.lost), str(w.restarts),
                          w.state)  # fmt: skip
        return table


def _startup_problem(info: Any) -> DeepsearchError | None:
    if isinstance(info, WorkerInfo):
        return None
    if isinstance(info, RemoteFailure):
        return info.error()
    text = " ".join(str(info).split())[:300]
    return DeepsearchError(f"a Ray worker could not start: {type(info).__name__}: {text}")
