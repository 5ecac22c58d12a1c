"""Run CPU-bound calls in worker processes with a hard timeout: a call that overruns has its worker killed.

trafilatura's own timeout does not apply to library calls and extraction can run away on
pathological HTML, so a timeout here means SIGKILL and a fresh worker, never a stuck thread.
Workers are long-lived (import costs are paid once) and use the "spawn" start method, which is
safe in a process that runs threads and an event loop.

The pool is shared across event loops and threads. Waiting for a free worker holds no thread: an
async caller waits on a future of its own loop, handed the worker when one is released (a sync caller
waits on an event). Only a call that holds a worker occupies a thread, one of the pool's own `size`
threads, so many pages waiting for extraction never starve the default executor that cache reads,
searches and `asyncio.to_thread` share.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


Slot = _Worker | None  # a live worker, or None: start one on demand


class _SyncWaiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.slot: Slot = None

    def deliver(self, slot: Slot) -> bool:
        self.slot = slot
        self.event.set()
        return True


class _AsyncWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop, slots: _Slots):
        self.loop, self.slots = loop, slots
        self.future: asyncio.Future[Slot] = loop.create_future()

    def deliver(self, slot: Slot) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._resolve, slot)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            return False
        return True

    def _resolve(self, slot: Slot) -> None:
        if self.future.cancelled():
            self.slots.release(slot)  # cancelled after it was chosen: the next waiter gets the worker
        else:
            self.future.set_result(slot)


class _Slots:
    """`size` slots handed out first come, first served to sync and async callers alike."""

    def __init__(self, size: int):
        self._lock = threading.Lock()
        self._free: deque[Slot] = deque([None] * size)
        self._waiters: deque[_SyncWaiter | _AsyncWaiter] = deque()

    def acquire_sync(self) -> Slot:
        with self._lock:
            if self._free and not self._waiters:
                return self._free.popleft()
            waiter = _SyncWaiter()
            self._waiters.append(waiter)
        waiter.event.wait()
        return waiter.slot

    async def acquire(self) -> Slot:
        with self._lock:
            if self._free and not self._waiters:
                return self._free.popleft()
            waiter = _AsyncWaiter(asyncio.get_running_loop(), self)
            self._waiters.append(waiter)
        try:
            return await waiter.future
        except BaseException:
            with self._lock:
                queued = waiter in self._waiters
                if queued:
                    self._waiters.remove(waiter)
            if not queued and waiter.future.done() and not waiter.future.cancelled():
                self.release(waiter.future.result())  # handed over just as we were cancelled
            raise

    def release(self, slot: Slot) -> None:
        while True:
            with self._lock:
                if not self._waiters:
                    self._free.append(slot)
                    return
                waiter = self._waiters.popleft()
            if waiter.deliver(slot):
                return


class WorkerPool:
    def __init__(self, size: int):
        self.size = size
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = _Slots(size)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None  # one per slot: a running call never waits for a thread

    def call_sync(self, fn: Callable[..., Any], *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in a worker; raises WorkerTimeout or WorkerCrashed."""
        return self._run(self._slots.acquire_sync(), fn, args, kwargs, timeout_s)

    async def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        """The same from async code: waits for a worker without holding a thread, then runs on the pool's own."""
        slot = await self._slots.acquire()
        try:
            threads = self._executor()
            future = asyncio.get_running_loop().run_in_executor(threads, self._run, slot, fn, args, kwargs, timeout_s)
        except BaseException:
            self._slots.release(slot)
            raise
        # Cancelling the caller does not stop the call (shielded: `_run` always runs and frees the slot); the
        # worker finishes or hits its hard timeout. The result of an abandoned call is then dropped quietly.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(future)

    def _run(self, slot: Slot, fn: Callable[..., Any], args: tuple, kwargs: dict, timeout_s: float) -> Any:
        worker = slot
        try:
            with self._lock:
                stale = worker is not None and worker not in self._all  # killed by close()
            if worker is None or stale:
                worker = self._start()
            return worker.call(fn, args, kwargs, timeout_s)
        finally:
            if worker is not None and worker.broken:
                self._discard(worker)
                worker = None
            self._slots.release(worker)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="deepsearch-extract")
            return self._threads

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
            threads, self._threads = self._threads, None
        for worker in workers:
            worker.kill()
        if threads is not None:
            threads.shutdown(wait=False)


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
