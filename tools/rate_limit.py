"""Process-wide request spacing and exponential backoff with jitter, for search engines that rate-limit.

One `RateLimiter` per engine is shared by every caller in the process (`shared_limiter`): the graph's
parallel sub-goals, the CLI and the langchain tools all queue behind the same clock. Slots are
reserved under a thread lock (held for microseconds) and waited for with `asyncio.sleep`, so the
limiter works across threads and across successive event loops without blocking any of them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """Guarantees at least `min_interval_s` between the starts of consecutive requests."""

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def reserve(self) -> float:
        """Claim the next free slot; returns how many seconds the caller must wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.min_interval_s
            return slot - now

    def push_back(self, seconds: float) -> None:
        """Keep every caller away for `seconds` from now (after the engine said "slow down")."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    async def wait(self, sleep: Sleep = asyncio.sleep) -> float:
        delay = self.reserve()
        if delay > 0:
            await sleep(delay)
        return delay


_shared: dict[str, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(name: str, min_interval_s: float) -> RateLimiter:
    """The process-wide limiter for `name`; the latest configured interval wins."""
    with _shared_lock:
        limiter = _shared.get(name)
        if limiter is None:
            limiter = _shared[name] = RateLimiter(min_interval_s)
        limiter.min_interval_s = min_interval_s
        return limiter


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (0-based): base·2^attempt capped at max_s, with "equal jitter".

    Half the delay is fixed so retries never hammer at once; the other half is random so parallel
    callers that failed together do not retry together.
    """
    ceiling = min(max_s, base_s * (2**attempt))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
