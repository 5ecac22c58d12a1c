"""ddgs (the metasearch library that replaced duckduckgo-search) as a SearchEngine.

ddgs 9 (read against 9.16): every engine's non-200 answer (DuckDuckGo's 202 bot check, 403, 429)
becomes `None` in `BaseSearchEngine.request`, and `DDGS.text` then raises `DDGSException("No results
found.")`, the same as for an empty web; `RatelimitException` is never raised. So each engine's HTTP
client is observed while ddgs runs, and "no results" is told apart by what the engines answered:
a 429 or 202 → RateLimited, a 403 → Blocked, a request that ran into the timeout → EngineTimeout,
another status → EngineError, only 200s → EmptyAnswer (which may still be a block in disguise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .search_engine import Blocked, EmptyAnswer, EngineError, EngineTimeout, RateLimited, SearchParams

_NO_RESULTS = "no results found"
_WHY = {202: "bot check", 403: "forbidden", 429: "too many requests"}


def _default_factory(**kwargs: Any) -> Any:
    from ddgs import DDGS

    return DDGS(**kwargs)


class EngineAnswer(NamedTuple):
    """What one ddgs engine's HTTP request came to: a status, or the error that replaced it."""

    engine: str
    status: int | None
    error: str
    seconds: float

    def describe(self) -> str:
        if self.status is None:
            return f"{self.engine} {self.error}"
        why = _WHY.get(self.status)
        return f"{self.engine} HTTP {self.status}" + (f" ({why})" if why else "")


def observe_engines(client: Any, backend: str, answers: list[EngineAnswer]) -> None:
    """Record each engine request ddgs makes through `client` into `answers`.

    Uses `DDGS._get_engines`, which builds and caches the engine instances `text()` then reuses. Without
    it (another ddgs, a test double) nothing is recorded and an empty answer stays EmptyAnswer.
    """
    get_engines = getattr(client, "_get_engines", None)
    if get_engines is None:
        return
    try:
        engines = get_engines("text", backend)
    except Exception:  # noqa: BLE001 - observation is best effort; the search itself reports real errors
        return
    for engine in engines:
        http = getattr(engine, "http_client", None)
        if http is not None:
            http.request = _recording(http.request, engine.name, answers)


def _recording(request: Callable[..., Any], name: str, answers: list[EngineAnswer]) -> Callable[..., Any]:
    def record(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            response = request(*args, **kwargs)
        except Exception as e:
            answers.append(EngineAnswer(name, None, _short_error(e), time.monotonic() - started))
            raise
        answers.append(EngineAnswer(name, response.status_code, "", time.monotonic() - started))
        return response

    return record


def _short_error(e: Exception) -> str:
    from ddgs.exceptions import TimeoutException

    if isinstance(e, TimeoutException):
        return "timed out"
    text = str(e)
    return "connection dropped" if "connection closed" in text else f"failed: {text[:160]}"


def classify_empty(answers: list[EngineAnswer], error: Exception, timeout_s: float) -> EngineError:
    """The failure that a ddgs answer without results stands for, given what each engine answered."""
    seen = "; ".join(a.describe() for a in answers) or "no engine answer observed"
    statuses = {a.status for a in answers}
    if statuses & {202, 429}:
        return RateLimited(f"ddgs rate-limited: {seen}")
    if 403 in statuses:
        return Blocked(f"ddgs blocked: {seen}")
    timed_out = any(a.error == "timed out" or a.seconds >= timeout_s for a in answers)
    if timed_out or "timed out" in str(error):
        return EngineTimeout(f"ddgs timed out after {timeout_s:g}s: {seen}")
    if statuses - {200, None} or any(a.status is None for a in answers):
        return EngineError(f"ddgs failed: {seen}")
    if _NO_RESULTS in str(error).lower():
        return EmptyAnswer(f"ddgs found nothing ({seen}); possibly blocked")
    return EngineError(f"ddgs failed: {error}")


class DdgsEngine:
    name = "ddgs"

    def __init__(
        self,
        backends: list[str],
        timeout_s: float,
        ddgs_factory: Callable[..., Any] = _default_factory,
    ):
        self.backends = ",".join(backends) or "auto"
        self.timeout_s = timeout_s
        self._factory = ddgs_factory

    @property
    def ident(self) -> str:
        return f"ddgs:{self.backends}"

    def limiter_key(self) -> str:
        # One limiter for every backend mix: the "one rate limiter shared by every caller".
        return "ddgs"

    def _search_sync(self, params: SearchParams) -> list[dict[str, Any]]:
        from ddgs.exceptions import DDGSException

        # primp, ddgs's HTTP client, takes float seconds (ddgs's `int` hint is narrower than what it passes on).
        client = self._factory(timeout=self.timeout_s)
        answers: list[EngineAnswer] = []
        observe_engines(client, self.backends, answers)
        try:
            results = client.text(
                params.query,
                region=params.region,
                safesearch=params.safe_search,
                timelimit=params.time_range or None,
                max_results=params.max_results,
                backend=self.backends,
            )
        except DDGSException as e:  # TimeoutException included: ddgs raises it when the last error timed out
            raise classify_empty(answers, e, self.timeout_s) from e
        except Exception as e:  # noqa: BLE001 - a bug inside ddgs must become an outcome, not crash the graph
            raise EngineError(f"ddgs failed unexpectedly: {type(e).__name__}: {e}") from e
        return [r for r in (results or []) if isinstance(r, dict)]

    async def search_once(self, params: SearchParams) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._search_sync, params)
