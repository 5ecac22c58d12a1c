"""Unrelated `asyncio.to_thread` work beside 64 pages waiting for extraction: its latency, old wait vs new.

`thread_wait` is how the pool used to wait (each waiting call parked in `asyncio.to_thread`, holding one of
the default executor's min(32, cpus + 4) threads); `asyncio_slot` is `WorkerPool.call` now (waiting holds no
thread). Meanwhile a probe calls `asyncio.to_thread` with a trivial function every 10 ms while at least half
the pages are unfinished, standing for cache reads, ddgs calls and local searches; its latency is what they
would wait. Medians over every probe of every round; the modes alternate round by round.

    .venv/bin/python -m bench.extract_pool [--pages 64] [--workers 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from deepsearch.tools.extract import extract_document
from deepsearch.tools.worker_pool import WorkerPool

from bench.stats import print_table

PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "web"
PROBE_EVERY_S = 0.01  # the old wait gives one probe per round (it waits for the queue to drain): repeat rounds


def _noop() -> None:
    pass


async def _probe(in_flight: Callable[[], int], floor: int, latencies: list[float]) -> None:
    """A trivial to_thread call every 10 ms, issued while at least `floor` extractions are unfinished."""
    await asyncio.sleep(PROBE_EVERY_S)  # every extraction has been submitted by then
    while in_flight() >= floor:
        started = time.perf_counter()
        await asyncio.to_thread(_noop)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_EVERY_S)


async def _round(pool: WorkerPool, bodies: list[bytes], pages: int, mode: str) -> tuple[list[float], float]:
    done = 0

    async def extract(i: int) -> None:
        nonlocal done
        args = (bodies[i % len(bodies)], "html", "utf-8", f"https://example.org/{i}", "markdown")
        if mode == "thread_wait":
            await asyncio.to_thread(pool.call_sync, extract_document, *args, timeout_s=60)
        else:
            await pool.call(extract_document, *args, timeout_s=60)
        done += 1

    latencies: list[float] = []
    probe = asyncio.create_task(_probe(lambda: pages - done, pages // 2, latencies))
    started = time.perf_counter()
    await asyncio.gather(*(extract(i) for i in range(pages)))
    wall = time.perf_counter() - started
    await probe
    return latencies, wall


async def _measure(pages: int, workers: int, repeats: int) -> dict:
    bodies = [p.read_bytes() for p in sorted(PAGES.glob("*.html"))]
    pool = WorkerPool(workers)
    try:
        # Warm-up, not measured: every worker started and its imports paid.
        warm = (bodies[0], "html", "utf-8", "https://example.org/", "markdown")
        await asyncio.gather(*(pool.call(extract_document, *warm, timeout_s=60) for _ in range(workers * 2)))
        samples: dict[str, list[float]] = {"thread_wait": [], "asyncio_slot": []}
        walls: dict[str, list[float]] = {"thread_wait": [], "asyncio_slot": []}
        for _ in range(repeats):
            for mode in samples:  # interleaved, so drift on a shared machine hits both alike
                latencies, wall = await _round(pool, bodies, pages, mode)
                samples[mode] += latencies
                walls[mode].append(wall)
    finally:
        pool.close()
    before = statistics.median(samples["thread_wait"]) * 1000
    after = statistics.median(samples["asyncio_slot"]) * 1000
    return {
        "to_thread_latency_ms_thread_wait": round(before, 3),
        "to_thread_latency_ms_asyncio_slot": round(after, 3),
        "to_thread_latency_ratio": round(before / after, 1) if after else float("inf"),
        "probes_thread_wait": len(samples["thread_wait"]),
        "probes_asyncio_slot": len(samples["asyncio_slot"]),
        "extraction_wall_s_thread_wait": round(statistics.median(walls["thread_wait"]), 3),
        "extraction_wall_s_asyncio_slot": round(statistics.median(walls["asyncio_slot"]), 3),
        "default_executor_threads": min(32, (os.cpu_count() or 1) + 4),
    }


def run(pages: int = 64, workers: int = 2, repeats: int = 5) -> dict:
    return asyncio.run(_measure(pages, workers, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    figures = run(args.pages, args.workers, args.repeats)
    rows = [(name, str(value)) for name, value in figures.items()]
    print_table(f"{args.pages} extractions in flight, {args.workers} workers", rows)


if __name__ == "__main__":
    main()
