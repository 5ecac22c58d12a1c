"""fetch_page on local pages: fetch + extract time per page (median), its parts, and concurrent throughput.

python -m bench.fetch_extract [--pages DIR] [--limit N] [--rounds R] [--workers W]

Pages are served from DIR by a local HTTP server on 127.0.0.1 (default: the test fixtures; a larger
real set is the HTML of Debian's python3.11-doc: --pages /usr/share/doc/python3.11/html/library).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deepsearch.agent.config import FetchSettings
from deepsearch.tools.extract import extract_document
from deepsearch.tools.fetch_page import PageFetcher
from deepsearch.tools.worker_pool import WorkerPool

from bench.stats import print_table, summary

DEFAULT_PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "web"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(directory: Path) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


async def _measure(base: str, names: list[str], rounds: int, workers: int) -> dict:
    pool = WorkerPool(workers)
    settings = FetchSettings(allow_hosts=["127.0.0.1"], use_cache=False, extract_workers=workers)
    fetcher = PageFetcher(settings, Path(tempfile.mkdtemp(prefix="bench-fetch-")), pool=pool)
    urls = [f"{base}/{name}" for name in names]
    try:
        # Warm-up, not timed: start every worker; trafilatura's lazy imports happen here and in each worker.
        await asyncio.gather(*(fetcher.fetch(urls[i % len(urls)]) for i in range(workers * 2)))
        for url in urls[:10]:
            raw = await fetcher.http.get(url)
            await pool.call(extract_document, raw.body, "html", raw.charset, url, "markdown", timeout_s=60)
            extract_document(raw.body, "html", raw.charset, url, "markdown")
        end_to_end, fetch_only, in_worker, in_process, sizes, statuses = [], [], [], [], [], {}
        for _ in range(rounds):
            for url in urls:
                t = time.perf_counter()
                page = await fetcher.fetch(url)
                end_to_end.append(time.perf_counter() - t)
                statuses[page.status] = statuses.get(page.status, 0) + 1
                t = time.perf_counter()
                raw = await fetcher.http.get(url)
                fetch_only.append(time.perf_counter() - t)
                sizes.append(len(raw.body))
                args = (raw.body, "html", raw.charset, url, "markdown")
                t = time.perf_counter()
                await pool.call(extract_document, *args, timeout_s=60)
                in_worker.append(time.perf_counter() - t)
                t = time.perf_counter()
                extract_document(*args)
                in_process.append(time.perf_counter() - t)
        # Throughput with every worker busy: the graph fetches a sub-goal's pages concurrently.
        limit = asyncio.Semaphore(workers * 2)

        async def one(url: str) -> None:
            async with limit:
                await fetcher.fetch(url)

        t = time.perf_counter()
        await asyncio.gather(*(one(url) for url in urls * rounds))
        concurrent_s = time.perf_counter() - t
    finally:
        pool.close()
    return {
        "pages": len(urls),
        "rounds": rounds,
        "workers": workers,
        "median_page_kb": summary(sizes)["median"] / 1024,
        "statuses": statuses,
        "fetch_extract_ms": summary([s * 1000 for s in end_to_end]),
        "fetch_only_ms": summary([s * 1000 for s in fetch_only]),
        "extract_in_worker_ms": summary([s * 1000 for s in in_worker]),
        "extract_in_process_ms": summary([s * 1000 for s in in_process]),
        "sequential_pages_per_s": len(end_to_end) / sum(end_to_end),
        "concurrent_pages_per_s": len(urls) * rounds / concurrent_s,
    }


def run(pages: str | Path = DEFAULT_PAGES, limit: int = 0, rounds: int = 3, workers: int = 2) -> dict:
    directory = Path(pages)
    names = sorted(str(p.relative_to(directory)) for p in directory.rglob("*.html"))
    if limit:
        names = names[:limit]
    if not names:
        raise SystemExit(f"no .html pages under {directory}")
    server = _serve(directory)
    try:
        return asyncio.run(_measure(f"http://127.0.0.1:{server.server_address[1]}", names, rounds, workers))
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default=str(DEFAULT_PAGES), help="folder of .html files (searched recursively)")
    parser.add_argument("--limit", type=int, default=0, help="use the first N pages (0 = all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="extraction worker processes")
    args = parser.parse_args()
    f = run(args.pages, args.limit, args.rounds, args.workers)

    def ms(s: dict) -> str:
        return f"median {s['median']:.1f} ms (min {s['min']:.1f}, max {s['max']:.1f}, n={s['n']})"

    overhead = f["extract_in_worker_ms"]["median"] / f["extract_in_process_ms"]["median"]
    print_table(
        f"fetch_page on {f['pages']} local pages (median {f['median_page_kb']:.0f} KB) x {f['rounds']} rounds, "
        f"{f['workers']} workers; outcomes {f['statuses']}",
        [
            ("fetch + extract per page", ms(f["fetch_extract_ms"])),
            ("  fetch only (HTTP, guard)", ms(f["fetch_only_ms"])),
            ("  extract in worker", ms(f["extract_in_worker_ms"])),
            ("  extract in process", ms(f["extract_in_process_ms"])),
            ("worker / in-process ratio", f"{overhead:.2f}x"),
            ("sequential throughput", f"{f['sequential_pages_per_s']:.1f} pages/s"),
            ("concurrent throughput", f"{f['concurrent_pages_per_s']:.1f} pages/s"),
            ("concurrent / sequential", f"{f['concurrent_pages_per_s'] / f['sequential_pages_per_s']:.2f}x"),
        ],
    )


if __name__ == "__main__":
    main()
