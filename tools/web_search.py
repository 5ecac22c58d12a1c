"""`web_search`: query guard → cache → engine (rate-limited, backed off, retried) → fallback engine → outcome.

`WebSearch` is the async API the graph uses; `build_web_search_tool` wraps it as a langchain-core
tool, and `web_search` is that tool built from the user's settings, usable on its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from ..agent.config import SearchSettings, load_settings
from ..agent.errors import ConfigError
from .ddgs_engine import DdgsEngine
from .rate_limit import RateLimiter, Sleep, shared_limiter
from .search_engine import (
    Blocked,
    EmptyAnswer,
    EngineError,
    EngineTimeout,
    RateLimited,
    SearchEngine,
    SearchParams,
)
from .search_models import SearchOutcome
from .search_normalize import guard_query, normalize_results
from .searxng import SearxngEngine
from .snapshots import VOLATILE, SnapshotStore, search_key
from .ttl_cache import TTLCache, cache_key

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

log = logging.getLogger(__name__)


def engines_from_settings(settings: SearchSettings) -> list[SearchEngine]:
    """The engines to try in order: the provider, then SearXNG as fallback when it is configured."""
    searxng = SearxngEngine(settings.searxng_url, settings.timeout_s) if settings.searxng_url else None
    if settings.provider == "searxng":
        if searxng is None:
            raise ConfigError("search.provider = searxng needs search.searxng_url (or --searxng-url)")
        return [searxng]
    ddgs = DdgsEngine(settings.ddgs_backends, settings.timeout_s)
    return [ddgs, searxng] if searxng else [ddgs]


class WebSearch:
    """Searches the web with the configured engines; never returns an empty list for a failure.

    An engine that answers nothing (EmptyAnswer), refuses (Blocked) or keeps rate-limiting is backed off and
    the next engine is asked; an engine still backed off is skipped while a later one can answer. Answers
    that needed a fallback or came back empty are cached for `empty_ttl_s` only; "unavailable" never.
    """

    def __init__(
        self,
        settings: SearchSettings,
        cache_dir: Path,
        *,
        engines: list[SearchEngine] | None = None,
        limiter_for: Callable[[str, float], RateLimiter] = shared_limiter,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        store: SnapshotStore | None = None,
    ):
        try:
            self.engines = engines if engines is not None else engines_from_settings(settings)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.settings = settings
        path = cache_dir / "web_search.sqlite"
        self.cache = TTLCache(path, "web_search", settings.cache_ttl_s)
        self.brief_cache = TTLCache(path, "web_search_brief", min(settings.empty_ttl_s, settings.cache_ttl_s))
        self.store = store  # every answer (failures too) is recorded there for replay
        self._limiter_for = limiter_for
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def search(
        self,
        query: str,
        *,
        max_results: int | None = None,
        region: str | None = None,
        time_range: Literal["", "d", "w", "m", "y"] | None = None,
        safe_search: Literal["on", "moderate", "off"] | None = None,
        use_cache: bool | None = None,
    ) -> SearchOutcome:
        started = time.perf_counter()
        guarded, truncated = guard_query(query)
        s = self.settings
        params = SearchParams(
            query=guarded,
            region=region or s.region,
            time_range=s.time_range if time_range is None else time_range,
            safe_search=safe_search or s.safe_search,
            max_results=max_results or s.max_results,
        )
        use_cache = s.use_cache if use_cache is None else use_cache
        key = cache_key([e.ident for e in self.engines], params.query, params.region, params.time_range,
                        params.safe_search, params.max_results)  # fmt: skip
        if use_cache and (cached := await self.cache.get(key) or await self.brief_cache.get(key)):
            outcome = SearchOutcome.model_validate_json(cached)
            outcome = outcome.model_copy(update={"from_cache": True, "elapsed_ms": _ms(started)})
            return await self._record(params, outcome)

        outcome, clean = await self._search_engines(params)
        outcome.query_truncated = truncated
        outcome.elapsed_ms = _ms(started)
        if use_cache and outcome.status != "unavailable":
            # An answer reached only past a failing engine, or an empty one, may differ in minutes: keep it briefly.
            await (self.cache if clean else self.brief_cache).put(key, outcome.model_dump_json(exclude={"recorded"}))
        return await self._record(params, outcome)

    async def _record(self, params: SearchParams, outcome: SearchOutcome) -> SearchOutcome:
        """The outcome with its object in the snapshot store (what a replay of this run will be served)."""
        if self.store is None:
            return outcome
        key = search_key(params.query, params.region, params.time_range, params.safe_search, params.max_results)
        value = {"request": params.model_dump(mode="json"),
                 "outcome": outcome.model_dump(mode="json", exclude=VOLATILE | {"recorded"})}  # fmt: skip
        recorded = await asyncio.to_thread(self.store.record, "search", key, value, outcome.status)
        return outcome.model_copy(update={"recorded": recorded})

    async def _search_engines(self, params: SearchParams) -> tuple[SearchOutcome, bool]:
        """The outcome, and whether it came clean from the first engine (so it may be cached for the full TTL)."""
        failures: list[EngineError] = []
        attempts = 0
        for index, engine in enumerate(self.engines):
            raw, failure, tries = await self._with_retries(engine, params, has_next=index + 1 < len(self.engines))
            attempts += tries
            if failure is not None:
                failures.append(failure)
                continue
            results = normalize_results(raw, engine.name, params.max_results)
            outcome = SearchOutcome(
                status="ok" if results else "no_results",
                query=params.query,
                results=results,
                provider=engine.name,
                message=f"fallback after: {_joined(failures)}" if failures else "",
                attempts=attempts,
            )
            return outcome, not failures
        if len(self.engines) == 1 and self.engines[0].name == "ddgs":
            hint = "no fallback configured (set search.searxng_url)"
        else:
            hint = ""
        last = self.engines[-1].name
        if all(isinstance(f, EmptyAnswer) for f in failures):
            # Every engine came back empty: report no results, but say it may be a block and keep it briefly.
            message = "; ".join(filter(None, [_joined(failures), hint]))
            return SearchOutcome(status="no_results", query=params.query, provider=last, message=message,
                                 attempts=attempts), False  # fmt: skip
        message = "web search unavailable: " + "; ".join(filter(None, [_joined(failures), hint]))
        return SearchOutcome(status="unavailable", query=params.query, provider=last, message=message,
                             attempts=attempts), False  # fmt: skip

    async def _with_retries(
        self, engine: SearchEngine, params: SearchParams, *, has_next: bool
    ) -> tuple[list[dict], None, int] | tuple[None, EngineError, int]:
        """Returns (raw results, None, tries) or (None, the failure, tries)."""
        s = self.settings
        limiter = self._limiter_for(engine.limiter_key(), s.min_interval_s)
        if has_next and (left := limiter.backed_off_for()) > 0:
            # Still backed off after a recent failure: let the next engine answer rather than wait.
            cause = limiter.backoff_cause
            kind = type(cause) if isinstance(cause, EngineError) else EngineError
            return None, kind(f"{engine.name} skipped, backed off {left:.1f}s more after: {cause}"), 0
        for attempt in range(s.max_retries + 1):
            await limiter.wait(self._sleep)
            try:
                raw = await engine.search_once(params)
            except (RateLimited, EngineTimeout) as e:
                # Every caller backs off, not only this one: the next request waits for the delay.
                delay = limiter.back_off(e, s.backoff_base_s, s.backoff_max_s, self._rng)
                if attempt == s.max_retries:
                    tries = f"{attempt + 1} attempts" if attempt else "1 attempt"
                    return None, type(e)(f"{e} (gave up after {tries})"), attempt + 1
                log.info("%s; retry %d/%d in %.1fs", e, attempt + 1, s.max_retries, delay)
            except (Blocked, EmptyAnswer) as e:
                # Asking again at once will not change the answer: back off, and let the next engine try.
                limiter.back_off(e, s.backoff_base_s, s.backoff_max_s, self._rng)
                return None, e, attempt + 1
            except EngineError as e:
                return None, e, attempt + 1
            else:
                limiter.recovered()
                return raw, None, attempt + 1
        raise AssertionError("unreachable")  # the loop always returns


def _joined(failures: list[EngineError]) -> str:
    return "; ".join(str(f) for f in failures)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class WebSearchInput(BaseModel):
    query: str = Field(min_length=1, description="what to search the web for; keep it short and specific")
    max_results: int | None = Field(None, ge=1, le=50, description="how many results (default from settings)")
    time_range: Literal["", "d", "w", "m", "y"] | None = Field(
        None, description="only results from the last day (d), week (w), month (m) or year (y)"
    )


def build_web_search_tool(searcher: WebSearch | None = None) -> StructuredTool:
    """The langchain tool; without `searcher`, each call builds one from the user's settings."""

    async def _arun(query: str, max_results: int | None = None, time_range: str | None = None):
        active = searcher or _searcher_from_user_settings()
        outcome = await active.search(query, max_results=max_results, time_range=time_range)  # type: ignore[arg-type]
        return outcome.to_llm_text(), outcome

    def _run(query: str, max_results: int | None = None, time_range: str | None = None):
        return asyncio.run(_arun(query, max_results, time_range))

    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(
        func=_run,
        coroutine=_arun,
        name="web_search",
        description="Search the web. Returns numbered results (title, URL, snippet), 'no results', "
        "or 'web search unavailable: <why>' when the engines cannot be reached.",
        args_schema=WebSearchInput,
        response_format="content_and_artifact",
    )


def _searcher_from_user_settings() -> WebSearch:
    settings = load_settings().settings
    return WebSearch(settings.search, settings.cache.dir)


def __getattr__(attr: str):
    # `web_search` (the tool built from the user's settings) is made on first use: importing langchain-core's
    # tool machinery costs most of a second, which the CLI and the graph do not need to pay.
    if attr == "web_search":
        tool = globals()["web_search"] = build_web_search_tool()
        return tool
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
