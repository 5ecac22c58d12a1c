"""`fetch_page`: cache → guarded fetch (SSRF, robots.txt, limits) → extraction in a worker with a hard timeout.

`PageFetcher` is the async API the graph uses; `build_fetch_page_tool` wraps it as a langchain-core
tool, and `fetch_page` is that tool built from the user's settings, usable on its own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError

from ..agent.config import FetchSettings, load_settings
from ..agent.tokens import truncate_to_tokens
from .extract import PageKind, TextFormat, extract_document, extractor_version, pdf_supported
from .http_fetch import FetchError, FetchLimits, GuardedHttp, RawResponse
from .page_models import PageOutcome
from .robots import RobotsPolicy
from .snapshots import VOLATILE, SnapshotStore, fetch_key
from .ssrf import Resolver, SsrfGuard, system_resolver
from .ttl_cache import TTLCache, cache_key
from .worker_pool import WorkerCrashed, WorkerPool, WorkerTimeout, shared_pool

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF_TYPE = "application/pdf"
UNLABELLED = {"", "application/octet-stream", "binary/octet-stream"}


def accepted_type(mime: str) -> bool:
    return mime in HTML_TYPES or mime in TEXT_TYPES or mime in UNLABELLED or (mime == PDF_TYPE and pdf_supported())


def page_kind(mime: str, body: bytes) -> PageKind | None:
    """What the body is, from its declared type or, when unlabelled, from its first bytes."""
    if mime in HTML_TYPES:
        return "html"
    if mime in TEXT_TYPES:
        return "text"
    head = body[:1024].lstrip().lower()
    if mime == PDF_TYPE or head.startswith(b"%pdf-"):
        return "pdf" if pdf_supported() else None
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    return None if b"\x00" in head or not head else "text"


class PageFetcher:
    def __init__(
        self,
        settings: FetchSettings,
        cache_dir: Path,
        *,
        resolver: Resolver = system_resolver,
        pool: WorkerPool | None = None,
        store: SnapshotStore | None = None,
    ):
        self.settings = settings
        self.store = store  # every outcome (refusals and failures too) is recorded there for replay
        limits = FetchLimits(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            total_timeout_s=settings.total_timeout_s,
            max_bytes=settings.max_bytes,
            max_redirects=settings.max_redirects,
            user_agent=settings.user_agent,
        )
        self.http = GuardedHttp(limits, SsrfGuard(settings.allow_hosts, resolver))
        self.robots = RobotsPolicy(self.http, settings.user_agent)
        self.cache = TTLCache(cache_dir / "pages.sqlite", "fetch_page", settings.cache_ttl_s)
        self.pool = pool or shared_pool(settings.extract_workers)

    async def fetch(
        self,
        url: str,
        *,
        fmt: TextFormat | None = None,
        use_cache: bool | None = None,
        respect_robots: bool | None = None,
    ) -> PageOutcome:
        page = await self._fetch(url, fmt or self.settings.output_format, use_cache, respect_robots)
        if self.store is None:
            return page
        value = {"request": {"url": url, "format": page.text_format}, "extractor_version": extractor_version(),
                 "outcome": page.model_dump(mode="json", exclude=VOLATILE | {"recorded"})}  # fmt: skip
        recorded = await asyncio.to_thread(self.store.record, "fetch", fetch_key(url, page.text_format), value,
                                           page.status)  # fmt: skip
        return page.model_copy(update={"recorded": recorded})

    async def _fetch(
        self, url: str, fmt: TextFormat, use_cache: bool | None, respect_robots: bool | None
    ) -> PageOutcome:
        started = time.perf_counter()
        s = self.settings
        use_cache = s.use_cache if use_cache is None else use_cache
        respect_robots = s.respect_robots if respect_robots is None else respect_robots
        key = self.cache_key(url, fmt, respect_robots)
        if use_cache and (cached := await self.cache.get(key)):
            try:
                page = PageOutcome.model_validate_json(cached)
            except ValidationError:
                pass  # written by another version of this model: fetch again (the put below replaces it)
            else:
                return page.model_copy(update={"from_cache": True, "elapsed_ms": _ms(started)})

        try:
            raw = await self.http.get(
                url, accept_type=accepted_type, before_hop=self.robots.check if respect_robots else None
            )
        except FetchError as e:
            message = str(e)
            if e.kind == "unsupported_content" and PDF_TYPE in message:
                message += "; install the pdf extra to read PDFs: pip install 'deepsearch[pdf]'"
            return PageOutcome(status=e.kind, url=url, message=message, text_format=fmt, elapsed_ms=_ms(started),
                               cache_degraded=self.cache.degraded)  # fmt: skip

        page = await self._extract(raw, fmt)
        page.elapsed_ms = _ms(started)
        if use_cache and page.ok:
            await self.cache.put(key, page.model_dump_json(exclude={"cache_degraded", "recorded"}))
        page.cache_degraded = self.cache.degraded
        return page

    def cache_key(self, url: str, fmt: TextFormat, respect_robots: bool) -> str:
        """Everything that changes what a fetch returns. Pages fetched under a looser policy (more allowed hosts,
        robots ignored) are not served under a stricter one, nor pages cut at a smaller byte cap, fetched as
        another user agent or extracted by other rules or library versions."""
        s = self.settings
        return cache_key(
            url, fmt, sorted(s.allow_hosts), respect_robots, s.max_bytes, s.user_agent, extractor_version()
        )

    async def _extract(self, raw: RawResponse, fmt: TextFormat) -> PageOutcome:
        page = PageOutcome(
            status="ok",
            url=raw.url,
            final_url=raw.final_url,
            text_format=fmt,
            content_type=raw.content_type,
            http_status=raw.status_code,
            bytes_read=len(raw.body),
            truncated=raw.truncated,
            redirects=raw.redirects,
        )
        notes = [f"body cut at {self.settings.max_bytes} bytes"] if raw.truncated else []
        if raw.status_code >= 300:
            return page.model_copy(update={"status": "http_error", "message": f"HTTP {raw.status_code}"})
        kind = page_kind(raw.content_type, raw.body)
        if kind is None:
            why = f"{raw.content_type or 'unlabelled'} body is not HTML, text or PDF"
            return page.model_copy(update={"status": "unsupported_content", "message": why})
        timeout_s = self.settings.extract_timeout_s
        args = (raw.body, kind, raw.charset, raw.final_url, fmt)
        try:
            doc = await self.pool.call(extract_document, *args, timeout_s=timeout_s)
        except WorkerTimeout:
            if kind != "html":
                return page.model_copy(update={"status": "extraction_failed", "message": f"timed out ({timeout_s:g}s)"})
            notes.append(f"trafilatura timed out after {timeout_s:g}s, fallback extractor used")
            try:
                doc = await self.pool.call(extract_document, *args, use_trafilatura=False, timeout_s=timeout_s)
            except (WorkerTimeout, WorkerCrashed) as e:
                return page.model_copy(update={"status": "extraction_failed", "message": f"{'; '.join(notes)}: {e}"})
        except WorkerCrashed as e:
            return page.model_copy(update={"status": "extraction_failed", "message": str(e)})
        status = "ok" if doc.text.strip() else "empty"
        if status == "empty":
            notes.append("no text found in the page")
        return page.model_copy(update={**doc.model_dump(), "status": status, "message": "; ".join(notes)})


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class FetchPageInput(BaseModel):
    url: str = Field(min_length=1, description="the http(s) URL of the page to read")
    max_tokens: int = Field(4000, ge=100, le=100_000, description="cut the returned text to this many tokens")


def build_fetch_page_tool(fetcher: PageFetcher | None = None) -> StructuredTool:
    """The langchain tool; without `fetcher`, each call builds one from the user's settings."""

    async def _arun(url: str, max_tokens: int = 4000):
        active = fetcher or _fetcher_from_user_settings()
        page = await active.fetch(url)
        return truncate_to_tokens(page.to_llm_text(), max_tokens), page

    def _run(url: str, max_tokens: int = 4000):
        return asyncio.run(_arun(url, max_tokens))

    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(
        func=_run,
        coroutine=_arun,
        name="fetch_page",
        description="Read a web page: returns its title, URL, date and main text (markdown), "
        "or 'fetch failed (<kind>): <why>' (blocked, robots_disallowed, timeout, http_error, ...).",
        args_schema=FetchPageInput,
        response_format="content_and_artifact",
    )


def _fetcher_from_user_settings() -> PageFetcher:
    settings = load_settings().settings
    return PageFetcher(settings.fetch, settings.cache.dir)


def __getattr__(attr: str):
    # `fetch_page` (the tool built from the user's settings) is made on first use: importing langchain-core's
    # tool machinery costs most of a second, which the CLI and the graph do not need to pay.
    if attr == "fetch_page":
        tool = globals()["fetch_page"] = build_fetch_page_tool()
        return tool
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
