"""A small on-disk key/value cache with a time-to-live, in SQLite; shared by web search and page fetch.

Keys are hashed from their parts, values are JSON text. Calls run in a worker thread so the event
loop never waits on disk; each call opens its own connection (cheap, and safe across threads and
processes thanks to WAL mode and a busy timeout on every connection).

The file is set up (WAL mode, table) once per process and file, under a lock: parallel fetches that
opened the cache at once used to race on `PRAGMA journal_mode=WAL`, which SQLite answers with
"database is locked" without waiting (its busy handler does not cover a journal-mode change that
would deadlock). Other processes may set it up at the same moment, so setup retries for the busy
timeout. A cache is an optimisation: any error turns this cache off ("no cache"), never ends a run;
`degraded` says why and a warning is logged once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("deepsearch.cache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
)
"""
BUSY_TIMEOUT_S = 10.0
_SETUP_LOCK = threading.Lock()
_SET_UP: set[str] = set()  # resolved paths of the files this process has set up


def cache_key(*parts: Any) -> str:
    """A stable key for a tuple of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _busy(e: sqlite3.OperationalError) -> bool:
    return "locked" in str(e) or "busy" in str(e)


def _set_up(path: Path, busy_timeout_s: float) -> None:
    """WAL mode and the table, once per process and file; retries while another process holds the file."""
    name = str(path.resolve())
    with _SETUP_LOCK:
        if name in _SET_UP and path.exists():  # a file deleted since (`rm -r` of the cache dir) is set up again
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + busy_timeout_s
        pause = 0.005
        while True:
            try:
                conn = sqlite3.connect(path, timeout=busy_timeout_s)
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")  # persistent: later opens find it set
                    conn.execute(_SCHEMA)
                finally:
                    conn.close()
                break
            except sqlite3.OperationalError as e:
                if not _busy(e) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        _SET_UP.add(name)


class TTLCache:
    """`get` returns a value stored less than `ttl_s` seconds ago, else None; `put` replaces.

    `degraded` is None while the cache works; after any error it holds the reason (e.g. "sqlite3.OperationalError:
    database is locked") and the cache is off for this instance: gets miss, puts are dropped."""

    def __init__(
        self,
        path: Path,
        namespace: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ):
        self.path = path
        self.namespace = namespace
        self.ttl_s = ttl_s
        self.busy_timeout_s = busy_timeout_s
        self.degraded: str | None = None
        self._clock = clock

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        _set_up(self.path, self.busy_timeout_s)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s)  # timeout = SQLite's busy timeout
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a cache may lose its last writes
            with conn:  # commits, or rolls back on error
                yield conn
        finally:
            conn.close()

    def _degrade(self, e: Exception) -> None:
        if self.degraded is None:
            self.degraded = f"{type(e).__module__}.{type(e).__name__}: {e}".removeprefix("builtins.")
            log.warning("cache %s (%s) is off for this run: %s", self.path, self.namespace, self.degraded)

    @property
    def active(self) -> bool:
        return self.ttl_s > 0 and self.degraded is None

    def get_sync(self, key: str) -> str | None:
        if not self.active:
            return None
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT value, stored_at FROM entries WHERE namespace = ? AND key = ?", (self.namespace, key)
                ).fetchone()
        except (sqlite3.Error, OSError) as e:
            self._degrade(e)
            return None
        if row is None or self._clock() - row[1] > self.ttl_s:
            return None
        return row[0]

    def put_sync(self, key: str, value: str) -> None:
        if not self.active:
            return
        try:
            with self._connect() as conn:
                now = self._clock()
                conn.execute(
                    "INSERT OR REPLACE INTO entries (namespace, key, value, stored_at) VALUES (?, ?, ?, ?)",
                    (self.namespace, key, value, now),
                )
                # Expired rows of this namespace go when something new arrives, so the file stays bounded.
                conn.execute(
                    "DELETE FROM entries WHERE namespace = ? AND stored_at < ?", (self.namespace, now - self.ttl_s)
                )
        except (sqlite3.Error, OSError) as e:
            self._degrade(e)

    async def get(self, key: str) -> str | None:
        return await asyncio.to_thread(self.get_sync, key)

    async def put(self, key: str, value: str) -> None:
        await asyncio.to_thread(self.put_sync, key, value)
