"""Client-side balancing over several LLM servers (one vLLM replica per GPU or node).

Each request goes to the live endpoint with the fewest requests outstanding from this process; equal
loads take turns, so an idle pool is plain round-robin. An endpoint that fails (connection refused,
timeout, 429/5xx, a broken body) leaves the rotation for a cooldown that doubles with each failure in
a row, up to a cap; once the cooldown is over it gets requests again, and one success restores it.
When every endpoint is cooling down, the one that comes back first is tried rather than waiting:
the caller's retries with backoff pace those attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class EndpointState:
    outstanding: int = 0
    failures: int = 0  # in a row
    down_until: float = 0.0
    requests: int = 0


class EndpointPool(Generic[T]):
    """Least-outstanding-requests choice among live endpoints; thread-safe (one pool per backend)."""

    def __init__(
        self,
        endpoints: list[T],
        *,
        cooldown_s: float = 5.0,
        max_cooldown_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.states = [EndpointState() for _ in endpoints]
        self.cooldown_s, self.max_cooldown_s, self._clock = cooldown_s, max_cooldown_s, clock
        self._turn = 0  # where the search for the least-loaded endpoint starts: ties rotate
        self._lock = threading.Lock()

    def _choose(self) -> int:
        now = self._clock()
        n = len(self.endpoints)
        order = [(self._turn + k) % n for k in range(n)]
        live = [i for i in order if self.states[i].down_until <= now]
        if live:
            best = min(live, key=lambda i: self.states[i].outstanding)  # min keeps the first of equals
        else:
            best = min(order, key=lambda i: self.states[i].down_until)
        self._turn = (best + 1) % n
        return best

    def acquire(self) -> int:
        """The index of the endpoint for the next request, counted as outstanding until `release`."""
        with self._lock:
            i = self._choose()
            self.states[i].outstanding += 1
            self.states[i].requests += 1
            return i

    def release(self, index: int, ok: bool | None) -> None:
        """`ok`: True = it answered, False = it failed (out of rotation for a while), None = no verdict."""
        with self._lock:
            state = self.states[index]
            state.outstanding -= 1
            if ok is True:
                state.failures, state.down_until = 0, 0.0
            elif ok is False:
                state.failures += 1
                delay = min(self.max_cooldown_s, self.cooldown_s * 2 ** (state.failures - 1))
                state.down_until = self._clock() + delay

    @contextmanager
    def lease(self) -> Iterator[Lease[T]]:
        """`with pool.lease() as lease:` use `lease.endpoint`, set `lease.ok`; an exception counts as no verdict."""
        lease = Lease(self.endpoints[(index := self.acquire())])
        try:
            yield lease
        finally:
            self.release(index, lease.ok)

    def by_preference(self) -> list[T]:
        """Every endpoint, those in rotation first, then by when they come back."""
        with self._lock:
            ranked = sorted(range(len(self.endpoints)), key=lambda i: self.states[i].down_until)
        return [self.endpoints[i] for i in ranked]


@dataclass
class Lease(Generic[T]):
    endpoint: T
    ok: bool | None = None
