"""A SearXNG instance's JSON API (`/search?format=json`) as a SearchEngine."""

from __future__ import annotations

from typing import Any

import httpx

from .search_engine import EmptyAnswer, EngineError, EngineTimeout, RateLimited, SearchParams

_TIME_RANGES = {"d": "day", "w": "week", "m": "month", "y": "year"}
_SAFE_SEARCH = {"off": "0", "moderate": "1", "on": "2"}


def searxng_language(region: str) -> str:
    """ddgs-style region `us-en` → SearXNG language `en-US`; `wt-wt` (no region) → `all`."""
    country, _, lang = region.lower().partition("-")
    if not lang or country in ("wt", "xa", "xl"):
        return "all"
    return f"{lang}-{'GB' if country == 'uk' else country.upper()}"  # DuckDuckGo says uk, ISO 3166 says GB


class SearxngEngine:
    name = "searxng"

    def __init__(self, base_url: str, timeout_s: float, user_agent: str = "deepsearch/0.1"):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"SearXNG URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.user_agent = user_agent

    @property
    def ident(self) -> str:
        return f"searxng:{self.base_url}"

    def limiter_key(self) -> str:
        return self.ident

    async def search_once(self, params: SearchParams) -> list[dict[str, Any]]:
        query = {
            "q": params.query,
            "format": "json",
            "language": searxng_language(params.region),
            "safesearch": _SAFE_SEARCH[params.safe_search],
            "pageno": "1",
        }
        if params.time_range:
            query["time_range"] = _TIME_RANGES[params.time_range]
        try:
            # The instance is configured by the user (often on the intranet), so no SSRF guard here.
            async with httpx.AsyncClient(timeout=self.timeout_s, headers={"User-Agent": self.user_agent}) as client:
                response = await client.get(f"{self.base_url}/search", params=query)
        except httpx.TimeoutException as e:
            raise EngineTimeout(f"SearXNG at {self.base_url} timed out") from e
        except httpx.HTTPError as e:
            raise EngineError(f"SearXNG at {self.base_url} unreachable: {type(e).__name__}: {e}") from e
        if response.status_code == 429:
            raise RateLimited(f"SearXNG at {self.base_url} rate-limited (HTTP 429)")
        if response.status_code == 403:
            raise EngineError(
                f"SearXNG at {self.base_url} refused format=json (HTTP 403): "
                "enable json under search.formats in its settings.yml"
            )
        if response.status_code != 200:
            raise EngineError(f"SearXNG at {self.base_url} answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as e:
            raise EngineError(f"SearXNG at {self.base_url} returned something that is not JSON") from e
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list):
            raise EngineError(f"SearXNG at {self.base_url} returned JSON without a results list")
        found = [r for r in results if isinstance(r, dict)]
        if not found and (silent := _unresponsive(payload)):
            # SearXNG's own engines were blocked or timed out: "nothing" is not an answer to keep.
            raise EmptyAnswer(f"SearXNG at {self.base_url} found nothing; unresponsive engines: {silent}")
        return found


def _unresponsive(payload: dict[str, Any]) -> str:
    """SearXNG lists engines that failed as [name, reason] pairs, e.g. ["brave", "too many requests"]."""
    pairs = payload.get("unresponsive_engines")
    if not isinstance(pairs, list):
        return ""
    return ", ".join(
        f"{p[0]} ({p[1]})" if len(p) > 1 else str(p[0]) for p in pairs if isinstance(p, list | tuple) and p
    )
