"""robots.txt, per RFC 9309: fetched once per origin (through the same SSRF guard), parsed with protego.

Outcomes follow the RFC: a 4xx robots.txt means everything is allowed; a 5xx or an unreachable
one means nothing is (the site may be overloaded). The caller can switch the policy off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from protego import Protego

from .http_fetch import FetchError, GuardedHttp

_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
_CACHE_SECONDS = 24 * 3600  # the RFC's upper bound for caching


class _Verdict:
    """Parsed rules, or a blanket allow/deny with the reason."""

    def __init__(self, rules: Protego | None = None, allow_all: bool = True, reason: str = ""):
        self.rules, self.allow_all, self.reason = rules, allow_all, reason

    def allows(self, url: str, user_agent: str) -> bool:
        return self.rules.can_fetch(url, user_agent) if self.rules is not None else self.allow_all


class RobotsPolicy:
    def __init__(self, http: GuardedHttp, user_agent: str, clock: Callable[[], float] = time.monotonic):
        self.http = http
        self.user_agent = user_agent
        self._clock = clock
        self._verdicts: dict[str, tuple[_Verdict, float]] = {}

    async def check(self, url: str) -> None:
        """Raises FetchError("robots_disallowed") when robots.txt forbids `url` to our user agent."""
        origin = httpx.URL(url).copy_with(path="/robots.txt", query=None, fragment=None)
        key = str(origin)
        cached = self._verdicts.get(key)
        if cached is None or cached[1] < self._clock():
            cached = (await self._load(key), self._clock() + _CACHE_SECONDS)
            self._verdicts[key] = cached
        verdict = cached[0]
        if not verdict.allows(url, self.user_agent):
            why = verdict.reason or f"{key} disallows it for {self.user_agent}"
            raise FetchError("robots_disallowed", f"robots.txt: {why} (fetch.respect_robots = false to ignore)")

    async def _load(self, robots_url: str) -> _Verdict:
        try:
            response = await self.http.get(robots_url, max_bytes=_ROBOTS_MAX_BYTES)
        except FetchError as e:
            if e.kind == "blocked":
                raise
            if e.kind in ("timeout", "network_error"):
                return _Verdict(allow_all=False, reason=f"{robots_url} unreachable ({e})")
            return _Verdict(allow_all=True)  # redirect trouble or odd encoding: the RFC treats it as unavailable
        if response.status_code >= 500:
            return _Verdict(allow_all=False, reason=f"{robots_url} answered HTTP {response.status_code}")
        if response.status_code >= 400:
            return _Verdict(allow_all=True)
        return _Verdict(rules=Protego.parse(response.body.decode("utf-8", errors="replace")))
