"""The extraction worker pool: hard timeouts kill the worker, crashes are reported, the pool recovers."""

from __future__ import annotations

import os
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
