"""Run CPU-bound calls in worker processes with a hard timeout: a call that overruns has its worker killed.

trafilatura's own timeout does not apply to library calls and extraction can run away on
pathological HTML, so a timeout here means SIGKILL and a fresh worker, never a stuck thread.
Workers are long-lived (import costs are paid once) and use the "spawn" start method, which is
safe in a process that runs threads and an event loop. The pool is shared across event loops:
callers wait for a free worker in a thread, so the loop itself never blocks.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class WorkerTimeout(Exception):
    """The call did not finish within its hard timeout; its worker was killed."""


class WorkerCrashed(Exception):
    """The call raised, or its worker process died."""


def _serve(conn: Connection) -> None:
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, fn(*args, **kwargs)))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which decides
            conn.send((False, f"{type(e).__name__}: {e}"))


class _Worker:
    def __init__(self, ctx: Any):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True, name="deepsearch-extract")
        self.process.start()
        child.close()
        self.broken = False  # timed out or died: must be killed and replaced

    def call(self, fn: Callable[..., Any], args: tuple, kwargs: dict, timeout_s: float) -> Any:
        try:
            self.conn.send((fn, args, kwargs))
            if not self.conn.poll(timeout_s):
                self.broken = True
                raise WorkerTimeout(f"no result within {timeout_s:g}s")
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            self.broken = True
            raise WorkerCrashed(f"worker process died (exit code {self.process.exitcode})") from None
        if not ok:
            raise WorkerCrashed(value)
        return value

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class WorkerPool:
    def __init__(self, size: int):
        self.size = size
        self._ctx = multiprocessing.get_context("spawn")
        # Slots hold a live worker or None (start one on demand); the queue hands them out one caller at a time.
        self._slots: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(size):
            self._slots.put(None)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()

    def call_sync(self, fn: Callable[..., Any], *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in a worker; raises WorkerTimeout or WorkerCrashed."""
        worker = self._slots.get()
        try:
            if worker is None:
                worker = self._start()
            return worker.call(fn, args, kwargs, timeout_s)
        finally:
            if worker is not None and worker.broken:
                self._discard(worker)
                worker = None
            self._slots.put(worker)

    async def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.call_sync, fn, *args, timeout_s=timeout_s, **kwargs)

    def _start(self) -> _Worker:
        worker = _Worker(self._ctx)
        with self._lock:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.kill()


_shared: dict[int, WorkerPool] = {}
_shared_lock = threading.Lock()


def shared_pool(size: int) -> WorkerPool:
    """The process-wide pool of `size` workers (started lazily, stopped at exit)."""
    with _shared_lock:
        pool = _shared.get(size)
        if pool is None:
            pool = _shared[size] = WorkerPool(size)
            atexit.register(pool.close)
        return pool
