"""robots.txt, per RFC 9309: fetched once per origin (through the same SSRF guard), parsed with protego.

Outcomes follow the RFC (§2.3.1): rules that were fetched apply for up to a day (§2.4); a 4xx robots.txt
means everything is allowed; a 5xx or an unreachable one (timeout, refused, dropped) means nothing is
allowed *for now*: that verdict lives minutes, not a day, so one slow answer does not ban a site. While
a refresh fails, the rules fetched last still apply (§2.4 allows the cached copy when unreachable). The
caller can switch the policy off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from protego import Protego

from .http_fetch import FetchError, GuardedHttp

_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
RULES_TTL_S = 24 * 3600.0  # the RFC's upper bound for caching a robots.txt that was fetched
FAILURE_TTL_S = 5 * 60.0  # a robots.txt that could not be fetched: disallow for now, ask again after this


class _Verdict:
    """Parsed rules, or a blanket allow/deny with the reason; `fetched` when it came from a real answer."""

    def __init__(self, rules: Protego | None = None, allow_all: bool = True, reason: str = "", fetched: bool = True):
        self.rules, self.allow_all, self.reason, self.fetched = rules, allow_all, reason, fetched

    def allows(self, url: str, user_agent: str) -> bool:
        return self.rules.can_fetch(url, user_agent) if self.rules is not None else self.allow_all


class RobotsPolicy:
    def __init__(
        self,
        http: GuardedHttp,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
        failure_ttl_s: float = FAILURE_TTL_S,
    ):
        self.http = http
        self.user_agent = user_agent
        self.failure_ttl_s = failure_ttl_s
        self._clock = clock
        self._verdicts: dict[str, tuple[_Verdict, float]] = {}

    async def check(self, url: str) -> None:
        """Raises FetchError("robots_disallowed") when robots.txt forbids `url` to our user agent."""
        origin = httpx.URL(url).copy_with(path="/robots.txt", query=None, fragment=None)
        key = str(origin)
        cached = self._verdicts.get(key)
        if cached is None or cached[1] < self._clock():
            verdict = await self._load(key)
            ttl = RULES_TTL_S if verdict.fetched else self.failure_ttl_s
            if not verdict.fetched and cached is not None and cached[0].rules is not None:
                verdict = cached[0]  # the refresh failed: keep the last rules we read, and try again soon
            cached = self._verdicts[key] = (verdict, self._clock() + ttl)
        verdict = cached[0]
        if not verdict.allows(url, self.user_agent):
            why = verdict.reason or f"{key} disallows it for {self.user_agent}"
            raise FetchError("robots_disallowed", f"robots.txt: {why} (fetch.respect_robots = false to ignore)")

    async def _load(self, robots_url: str) -> _Verdict:
        retry = f"asked again in {self.failure_ttl_s:g}s"
        try:
            response = await self.http.get(robots_url, max_bytes=_ROBOTS_MAX_BYTES)
        except FetchError as e:
            if e.kind == "blocked":
                raise
            if e.kind in ("timeout", "network_error"):
                return _Verdict(allow_all=False, reason=f"{robots_url} unreachable ({e}); {retry}", fetched=False)
            # Redirect trouble or an odd encoding: the RFC treats the file as unavailable, i.e. like a 4xx.
            return _Verdict(allow_all=True, fetched=False)
        if response.status_code >= 500:
            reason = f"{robots_url} answered HTTP {response.status_code}; {retry}"
            return _Verdict(allow_all=False, reason=reason, fetched=False)
        if response.status_code >= 400:
            return _Verdict(allow_all=True)
        return _Verdict(rules=Protego.parse(response.body.decode("utf-8", errors="replace")))
