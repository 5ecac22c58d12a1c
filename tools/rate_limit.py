"""Process-wide request spacing and exponential backoff with jitter, for search engines that rate-limit.

One `RateLimiter` per engine is shared by every caller in the process (`shared_limiter`): the graph's
parallel sub-goals, the CLI and the langchain tools all queue behind the same clock. Slots are
reserved under a thread lock (held for microseconds) and waited for with `asyncio.sleep`, so the
limiter works across threads and across successive event loops without blocking any of them.

A limiter also keeps the engine's standing: each failure in a row that says "not now" (a rate limit,
a block, an empty answer that may be one) backs it off for longer, with jitter, until one request succeeds.
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
        self._strikes = 0  # failures in a row since the last success
        self._backed_off_until = 0.0
        self.backoff_cause: Exception | None = None

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

    def back_off(self, cause: Exception, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
        """Keep every caller away after `cause`, for longer after each failure in a row; returns the delay."""
        with self._lock:
            delay = backoff_delay(self._strikes, base_s, max_s, rng)
            self._strikes += 1
            until = self._clock() + delay
            self._next_slot = max(self._next_slot, until)
            self._backed_off_until = max(self._backed_off_until, until)
            self.backoff_cause = cause
        return delay

    def backed_off_for(self) -> float:
        """Seconds left of the current back-off; 0 when the engine is in good standing."""
        with self._lock:
            return max(0.0, self._backed_off_until - self._clock())

    def recovered(self) -> None:
        """A request succeeded: the next failure starts the back-off from the bottom again."""
        with self._lock:
            self._strikes, self._backed_off_until, self.backoff_cause = 0, 0.0, None

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
