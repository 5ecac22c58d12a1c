"""The contract between `web_search` and one search engine: one request in, raw result dicts or a typed failure out."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel


class SearchParams(BaseModel):
    query: str
    region: str = "us-en"
    time_range: Literal["", "d", "w", "m", "y"] = ""
    safe_search: Literal["on", "moderate", "off"] = "moderate"
    max_results: int = 10


class EngineError(Exception):
    """The engine failed in a way that retrying will not fix (bad response, refused, unreachable)."""


class RateLimited(EngineError):
    """The engine asked us to slow down: retry later."""


class EngineTimeout(EngineError):
    """The engine did not answer in time: retry later."""


class Blocked(EngineError):
    """The engine refused us (HTTP 403): retrying now will not help; back it off and ask another engine."""


class EmptyAnswer(EngineError):
    """The engine answered nothing, and cannot say whether that is an empty web or a block in disguise.

    ddgs reports an engine's 202 bot check, 403 and 429 exactly like a page without results, so an empty
    answer is never taken as final: the next engine is asked, this one is backed off, and the outcome is
    cached only briefly.
    """


class SearchEngine(Protocol):
    name: str

    @property
    def ident(self) -> str:
        """Engine plus the settings that change its answers (part of the cache key)."""
        ...

    def limiter_key(self) -> str:
        """Requests that share this key share one rate limiter."""
        ...

    async def search_once(self, params: SearchParams) -> list[dict[str, Any]]:
        """One request. Returns raw results ([] = the engine found nothing); raises EngineError subclasses."""
        ...
