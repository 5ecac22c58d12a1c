"""A small on-disk key/value cache with a time-to-live, in SQLite; shared by web search and page fetch.

Keys are hashed from their parts, values are JSON text. Calls run in a worker thread so the event
loop never waits on disk; each call opens its own connection (cheap, and safe across threads and
processes thanks to WAL mode and a busy timeout).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
)
"""


def cache_key(*parts: Any) -> str:
    """A stable key for a tuple of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class TTLCache:
    """`get` returns a value stored less than `ttl_s` seconds ago, else None; `put` replaces."""

    def __init__(self, path: Path, namespace: str, ttl_s: float, clock: Callable[[], float] = time.time):
        self.path = path
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._clock = clock
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
                self._ready = True
            with conn:  # commits, or rolls back on error
                yield conn
        finally:
            conn.close()

    def get_sync(self, key: str) -> str | None:
        if self.ttl_s <= 0:
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT value, stored_at FROM entries WHERE namespace = ? AND key = ?", (self.namespace, key)
            ).fetchone()
        if row is None or self._clock() - row[1] > self.ttl_s:
            return None
        return row[0]

    def put_sync(self, key: str, value: str) -> None:
        if self.ttl_s <= 0:
            return
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO entries (namespace, key, value, stored_at) VALUES (?, ?, ?, ?)",
                (self.namespace, key, value, self._clock()),
            )
            # Expired rows of this namespace go when something new arrives, so the file stays bounded.
            conn.execute(
                "DELETE FROM entries WHERE namespace = ? AND stored_at < ?",
                (self.namespace, self._clock() - self.ttl_s),
            )

    async def get(self, key: str) -> str | None:
        return await asyncio.to_thread(self.get_sync, key)

    async def put(self, key: str, value: str) -> None:
        await asyncio.to_thread(self.put_sync, key, value)
