"""The SQLite TTL cache under concurrency: many threads and processes open one new cache file at once (the
race that failed tests/test_security_ssrf_agent.py about 1 run in 4), and any cache error means "no cache"."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import threading
from pathlib import Path

from deepsearch.tools.ttl_cache import TTLCache

THREADS = 24
THREAD_TRIALS = 25
PROCESSES = 6
PROCESS_TRIALS = 8


def hammer(cache_cls: type, path: Path, workers: int) -> list[str]:
    """`workers` threads, each with its own cache object on `path` (as parallel fetchers have), start together and
    put then get one key; returns the failures (exceptions raised, values not read back, degraded caches)."""
    barrier = threading.Barrier(workers)
    failures: list[str] = []

    def one(i: int) -> None:
        cache = cache_cls(path, "ns", ttl_s=60)
        barrier.wait()
        try:
            cache.put_sync(f"k{i}", f"v{i}")
            got = cache.get_sync(f"k{i}")
        except Exception as e:  # noqa: BLE001 - counted, this is what the test looks for
            failures.append(f"{type(e).__name__}: {e}")
            return
        if got != f"v{i}" or getattr(cache, "degraded", None):
            failures.append(f"k{i}: read {got!r}, degraded {getattr(cache, 'degraded', None)!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def test_many_threads_open_one_new_cache_file_at_once(tmp_path):
    failures = [f for trial in range(THREAD_TRIALS) for f in hammer(TTLCache, tmp_path / f"t{trial}.sqlite", THREADS)]
    assert failures == []
    with sqlite3.connect(tmp_path / "t0.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == THREADS


def _process(barrier, paths: list[str], results) -> None:
    for n, path in enumerate(paths):
        barrier.wait()
        failures = hammer(TTLCache, Path(path), 4)
        results.put((n, failures))


def test_many_processes_open_one_new_cache_file_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    paths = [str(tmp_path / f"p{trial}.sqlite") for trial in range(PROCESS_TRIALS)]
    procs = [ctx.Process(target=_process, args=(barrier, paths, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * PROCESS_TRIALS)]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    assert [f for _, failures in outcomes for f in failures] == []
    with sqlite3.connect(paths[-1]) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 4  # every process wrote k0..k3


def test_setup_waits_out_another_connection_still_writing_the_new_file(tmp_path):
    """The race, with its window held open: while another connection writes the new file's first page (rollback
    mode, before WAL is set), `PRAGMA journal_mode=WAL` fails at once with "database is locked" (SQLite skips its
    busy handler there). The old code let that error end the run; setup now retries until the writer is done."""
    path = tmp_path / "c.sqlite"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, creator.execute, args=("ROLLBACK",))
    release.start()
    try:
        cache = TTLCache(path, "ns", ttl_s=60)
        cache.put_sync("k", "v")
        assert cache.get_sync("k") == "v" and cache.degraded is None
    finally:
        release.join()
        creator.close()


def test_an_unusable_cache_degrades_to_no_cache_with_a_reason(tmp_path, caplog):
    (tmp_path / "file").write_text("x")
    not_a_db = tmp_path / "garbage.sqlite"
    not_a_db.write_bytes(b"this is not a database file, it is garbage" * 100)
    for path, why in ((tmp_path / "file" / "c.sqlite", "FileExistsError"), (not_a_db, "not a database")):
        cache = TTLCache(path, "ns", ttl_s=60)
        with caplog.at_level(logging.WARNING, logger="deepsearch.cache"):
            cache.put_sync("k", "v")  # no exception
            assert cache.get_sync("k") is None
        assert cache.degraded and why in cache.degraded and not cache.active
        assert why in caplog.text


def test_a_locked_cache_degrades_instead_of_failing(tmp_path):
    path = tmp_path / "c.sqlite"
    TTLCache(path, "ns", ttl_s=60).put_sync("k", "v")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing and never letting go
    try:
        cache = TTLCache(path, "ns", ttl_s=60, busy_timeout_s=0.2)
        cache.put_sync("k2", "v2")
        assert cache.degraded and "locked" in cache.degraded
        assert cache.get_sync("k") is None  # off for the rest of the run: no more waits on the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert TTLCache(path, "ns", ttl_s=60).get_sync("k") == "v"  # the file itself is fine


def test_a_deleted_cache_file_is_set_up_again(tmp_path):
    path = tmp_path / "c.sqlite"
    TTLCache(path, "ns", ttl_s=60).put_sync("k", "v")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    cache = TTLCache(path, "ns", ttl_s=60)
    cache.put_sync("k", "v2")
    assert cache.get_sync("k") == "v2" and cache.degraded is None
