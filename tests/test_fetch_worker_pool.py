"""The extraction worker pool: hard timeouts kill the worker, crashes are reported, the pool recovers, and
callers waiting for a worker hold no thread."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from deepsearch.tools.worker_pool import WorkerCrashed, WorkerPool, WorkerTimeout


@pytest.fixture(scope="module")
def pool():
    workers = WorkerPool(1)
    yield workers
    workers.close()


async def test_result_comes_back(pool):
    assert await pool.call(divmod, 17, 5, timeout_s=30) == (3, 2)


async def test_overrun_kills_the_worker_and_a_fresh_one_takes_over(pool):
    await pool.call(os.getpid, timeout_s=30)
    first = next(iter(pool._all)).process
    with pytest.raises(WorkerTimeout, match="no result within 0.3s"):
        await pool.call(time.sleep, 30, timeout_s=0.3)
    first.join(5)
    assert not first.is_alive()
    assert await pool.call(os.getpid, timeout_s=30) != first.pid


async def test_an_exception_in_the_call_keeps_the_worker(pool):
    pid = await pool.call(os.getpid, timeout_s=30)
    with pytest.raises(WorkerCrashed, match="ValueError: invalid literal"):
        await pool.call(int, "not a number", timeout_s=30)
    assert await pool.call(os.getpid, timeout_s=30) == pid


async def test_a_dying_worker_is_reported_and_replaced(pool):
    with pytest.raises(WorkerCrashed, match="worker process died"):
        await pool.call(os._exit, 3, timeout_s=30)
    assert await pool.call(divmod, 9, 2, timeout_s=30) == (4, 1)


# ---- waiting holds no thread (issue 13) --------------------------------------------------------------------------


def wait_for(gate: str, limit_s: float = 60.0) -> int:
    """Runs in a worker: blocks until the file `gate` exists (the test opens it), returns the worker's pid."""
    deadline = time.monotonic() + limit_s
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def executor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asyncio_")]


async def test_waiting_extractions_hold_no_thread_of_the_default_executor(tmp_path):
    gate = str(tmp_path / "gate")
    pool = WorkerPool(1)
    try:
        before = len(executor_threads())
        calls = [asyncio.create_task(pool.call(wait_for, gate, timeout_s=60)) for _ in range(64)]
        await asyncio.sleep(0.2)  # every call is in: one holds the worker, 63 wait for it
        # The old pool waited in to_thread: 6 threads here, all blocked behind the worker, so this never ran.
        probe = await asyncio.wait_for(asyncio.to_thread(threading.current_thread), timeout=30)
        assert not any(c.done() for c in calls)  # it ran while all 64 extractions were still pending
        assert probe.name.startswith("asyncio_") and len(executor_threads()) <= before + 1
        assert len(pool._threads._threads) == 1  # the one running call holds the pool's own thread, the rest none
        (tmp_path / "gate").touch()
        pids = await asyncio.gather(*calls)
        assert len(set(pids)) == 1
    finally:
        pool.close()


async def test_cancelled_callers_give_their_place_or_worker_back(tmp_path):
    gate = str(tmp_path / "gate")
    pool = WorkerPool(1)
    try:
        running = asyncio.create_task(pool.call(wait_for, gate, timeout_s=60))
        waiting = asyncio.create_task(pool.call(wait_for, gate, timeout_s=60))
        await asyncio.sleep(0.2)
        running.cancel()  # the call goes on in its worker; its slot comes back when it ends
        waiting.cancel()  # leaves the queue
        for task in (running, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
        (tmp_path / "gate").touch()
        assert await pool.call(divmod, 7, 2, timeout_s=60) == (3, 1)
        assert len(pool._slots._free) == 1 and not pool._slots._waiters
    finally:
        pool.close()


def test_sync_callers_and_several_event_loops_share_one_pool(tmp_path):
    gate = str(tmp_path / "gate")
    pool = WorkerPool(2)
    results: list[object] = []

    def in_own_loop() -> None:
        async def many() -> list[int]:
            return await asyncio.gather(*(pool.call(wait_for, gate, timeout_s=60) for _ in range(5)))

        results.extend(asyncio.run(many()))

    def sync_caller() -> None:
        results.append(pool.call_sync(wait_for, gate, timeout_s=60))

    threads = [threading.Thread(target=f) for f in (in_own_loop, in_own_loop, sync_caller, sync_caller)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        (tmp_path / "gate").touch()
        for t in threads:
            t.join(60)
        assert len(results) == 12 and len(set(results)) <= 2  # every call ran, on the pool's two workers
        assert len(pool._slots._free) == 2
    finally:
        pool.close()


async def test_a_closed_pool_starts_fresh_workers(tmp_path):
    pool = WorkerPool(1)
    first = await pool.call(os.getpid, timeout_s=60)
    pool.close()
    try:
        assert await pool.call(os.getpid, timeout_s=60) != first
    finally:
        pool.close()
