"""ddgs (the metasearch library that replaced duckduckgo-search) as a SearchEngine.

ddgs is synchronous, so each request runs in a worker thread. Its exceptions are mapped to the
engine contract: RatelimitException → RateLimited, TimeoutException → EngineTimeout, and its
"No results found." → an empty list (a real answer, not a failure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .search_engine import EngineError, EngineTimeout, RateLimited, SearchParams

_NO_RESULTS = "no results found"


def _default_factory(**kwargs: Any) -> Any:
    from ddgs import DDGS

    return DDGS(**kwargs)


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
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        # ddgs takes an int timeout; never round a sub-second timeout down to "no timeout".
        client = self._factory(timeout=max(1, round(self.timeout_s)))
        try:
            results = client.text(
                params.query,
                region=params.region,
                safesearch=params.safe_search,
                timelimit=params.time_range or None,
                max_results=params.max_results,
                backend=self.backends,
            )
        except RatelimitException as e:
            raise RateLimited(f"ddgs rate-limited: {e}") from e
        except TimeoutException as e:
            raise EngineTimeout(f"ddgs timed out: {e}") from e
        except DDGSException as e:
            if _NO_RESULTS in str(e).lower():
                return []
            raise EngineError(f"ddgs failed: {e}") from e
        except Exception as e:  # noqa: BLE001 - a bug inside ddgs must become an outcome, not crash the graph
            raise EngineError(f"ddgs failed unexpectedly: {type(e).__name__}: {e}") from e
        return [r for r in (results or []) if isinstance(r, dict)]

    async def search_once(self, params: SearchParams) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._search_sync, params)
