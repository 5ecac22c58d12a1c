"""The tools `deepsearch mcp` serves: their bodies and result models (the server itself is in mcp_server.py).

Every tool is a method of `DeepsearchTools`, whose signature (type hints and pydantic `Field`s) the MCP SDK turns
into the published input schema and whose return model becomes the output schema. A `DeepsearchError` inside a tool
becomes a `ToolError` with its one line (secrets masked), which the SDK returns as an `isError` result.

Limits a client cannot lift: index arguments name only the server's indexes (names under `index.dir`, or the
`--index` values the server was started with), never an arbitrary path; the web tools and `research(web=true)` work
only when the server's web setting is on; budgets given to `research` can lower the server's budgets, not raise them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field

from ..config import Settings
from ..errors import DeepsearchError, UsageError
from ..result import RunUsage
from .mcp_server import IndexRoots, ProgressRelay

# research() arguments that lower a server budget: the setting under `agent.` each one caps.
BUDGETS = ("max_llm_calls", "max_searches", "max_fetches", "max_seconds", "max_rounds", "max_subgoals")


def one_line(message: str) -> str:
    """A message as one line, with any secret from the environment masked (as the CLI prints errors)."""
    from deepsearch.traces.redact import secrets_from_env

    from ..masking import mask_text

    return " ".join(mask_text(str(message), secrets_from_env()).split())


def tool_error(e: DeepsearchError) -> ToolError:
    return ToolError(one_line(str(e)))


# ---- results ------------------------------------------------------------------------------------


class CitationOut(BaseModel):
    n: int = Field(description="the [n] used in the answer")
    source: str = Field(description="URL or local path of the document")
    quote: str = Field(description="the evidence passage the claim rests on")


class ResearchResult(BaseModel):
    question: str
    answer: str = Field(description="the answer, with [n] citation markers")
    short_answer: str = Field("", description="the answer in a few words")
    citations: list[CitationOut] = Field(default_factory=list)
    termination: str = Field(description="why the run ended: answered, plateau, budget_<kind>, abstained, error_<kind>")
    trace_id: str | None = None
    trace_uri: str | None = Field(None, description="the run's trajectory as an MCP resource (trace://ID)")
    usage: RunUsage
    backend: str
    model: str
    assumption: str | None = Field(None, description="how an ambiguous question was read")
    notes: list[str] = Field(default_factory=list, description="e.g. a budget lowered to the server's limit")


class WebResult(BaseModel):
    rank: int
    title: str
    url: str
    snippet: str = ""


class WebSearchResult(BaseModel):
    query: str = Field(description="the query as sent, after the length guard")
    status: Literal["ok", "no_results"]
    results: list[WebResult] = Field(default_factory=list)
    provider: str = ""
    message: str = ""
    from_cache: bool = False


class PageResult(BaseModel):
    url: str
    final_url: str = Field(description="where the content came from, after redirects")
    title: str = ""
    author: str = ""
    date: str = ""
    sitename: str = ""
    description: str = ""
    text: str = Field(description="the page's main text (markdown or plain), cut at max_chars")
    text_chars: int = Field(description="length of the whole extracted text")
    text_cut: bool = Field(description="the text was cut at max_chars")
    content_type: str = ""
    http_status: int | None = None
    body_truncated: bool = Field(False, description="the body exceeded fetch.max_bytes and was cut")
    extractor: str | None = None
    from_cache: bool = False
    message: str = ""


class LocalHitOut(BaseModel):
    rank: int
    title: str
    text: str
    source: str = Field(description="the document the chunk comes from")
    doc_id: str
    chunk_id: str
    score: float


class LocalSearchResult(BaseModel):
    index: str
    mode: str
    hits: list[LocalHitOut] = Field(default_factory=list)


class IndexInfo(BaseModel):
    name: str = Field(description="what to pass as `index` / `indexes`")
    path: str
    default: bool = Field(description="searched by research() when it is given no indexes")
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    sources: int = 0
    dense_model: str | None = None
    updated_at: str | None = None
    error: str | None = Field(None, description="why the index cannot be read")


class IndexListing(BaseModel):
    index_dir: str = Field(description="named indexes live here (`deepsearch index PATH --name NAME`)")
    indexes: list[IndexInfo] = Field(default_factory=list)


def index_info(name: str, folder: Path, default: bool) -> IndexInfo:
    from deepsearch.tools import index_store as store

    info = IndexInfo(name=name, path=str(folder), default=default)
    try:
        manifest = store.read_manifest(folder)
    except DeepsearchError as e:
        return info.model_copy(update={"error": one_line(str(e))})
    return info.model_copy(
        update={**manifest.counts.model_dump(), "dense_model": manifest.dense_model, "updated_at": manifest.updated_at}
    )


# ---- the tools ----------------------------------------------------------------------------------


class DeepsearchTools:
    """The tools over one server's settings; the LLM backend, web search and page fetcher are shared by all calls."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.roots = IndexRoots(settings)
        self._backend = None
        self._searcher = None
        self._fetcher = None

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None

    def _web_allowed(self) -> None:
        if not self.settings.agent.web:
            raise UsageError("the web is off on this server (agent.web = false or --no-web)")

    def backend(self):
        if self._backend is None:
            from ..llm import build_backend

            self._backend = build_backend(self.settings.llm)
        return self._backend

    def run_settings(self, asked: dict[str, Any]) -> tuple[Settings, list[str]]:
        """The server's settings with the budgets a call asked for, each at most the server's own."""
        agent, notes, update = self.settings.agent, [], {}
        for key in BUDGETS:
            value = asked.get(key)
            if value is None:
                continue
            limit = getattr(agent, key)
            if value > limit:
                notes.append(f"{key} {value:g} is above this server's limit; used {limit:g}")
            update[key] = min(value, limit)
        return self.settings.model_copy(update={"agent": agent.model_copy(update=update)}), notes

    async def research(
        self,
        ctx: Context,
        question: Annotated[str, Field(min_length=1, max_length=4000, description="The question to research.")],
        indexes: Annotated[
            list[str] | None,
            Field(description="Local indexes to search, by the names list_indexes gives; default: the server's."),
        ] = None,
        web: Annotated[bool | None, Field(description="Also search the web (default: the server's setting).")] = None,
        max_llm_calls: Annotated[int | None, Field(ge=1, description="Budget: LLM calls.")] = None,
        max_searches: Annotated[int | None, Field(ge=1, description="Budget: search calls.")] = None,
        max_fetches: Annotated[int | None, Field(ge=0, description="Budget: page fetches.")] = None,
        max_seconds: Annotated[float | None, Field(gt=0, description="Budget: wall time in seconds.")] = None,
        max_rounds: Annotated[int | None, Field(ge=1, le=20, description="Research rounds per sub-goal.")] = None,
        max_subgoals: Annotated[int | None, Field(ge=1, le=12, description="Sub-goals the planner may create.")] = None,
    ) -> ResearchResult:
        """Research a question the way `deepsearch ask` does: plan sub-goals, search the local indexes (and the web),
        rerank and judge the evidence, stop when more searching adds no information, and answer with numbered
        citations. Sends a progress notification per step; cancelling the request stops the run, whose trajectory
        then ends with termination `cancelled`. The trajectory is the resource trace://TRACE_ID."""
        from deepsearch.traces.recorder import new_trace_id

        from ..run import aresearch

        try:
            if web and not self.settings.agent.web:
                self._web_allowed()
            names = None if indexes is None else [self.roots.for_research(i) for i in indexes]
            if names is None and self.roots.defaults:
                names = [self.roots.for_research(i) for i in self.roots.defaults]
            asked = {"max_llm_calls": max_llm_calls, "max_searches": max_searches, "max_fetches": max_fetches,
                     "max_seconds": max_seconds, "max_rounds": max_rounds, "max_subgoals": max_subgoals}  # fmt: skip
            settings, notes = self.run_settings(asked)
            backend = self.backend()
        except DeepsearchError as e:
            raise tool_error(e) from None
        trace_id = new_trace_id()
        relay = ProgressRelay(ctx.report_progress)
        relay.say(f"started: trace://{trace_id}")
        failed: DeepsearchError | None = None
        async with anyio.create_task_group() as tg:  # the pump sends the lines; cancelling the call cancels both
            tg.start_soon(relay.pump)
            try:
                result = await aresearch(
                    question, settings=settings, indexes=names, web=web, backend=backend, on_event=relay.feed,
                    trace_id=trace_id,
                )  # fmt: skip
            except DeepsearchError as e:
                failed = e
                relay.close(0.0, "failed")
            else:
                relay.close(result.usage.seconds, f"done: {result.termination}")
        if failed is not None:
            raise tool_error(failed)
        return ResearchResult(
            **result.model_dump(include={"question", "answer", "short_answer", "termination", "trace_id", "usage",
                                         "backend", "model", "assumption"}),
            citations=[CitationOut(n=c.n, source=c.source, quote=c.quote) for c in result.citations],
            trace_uri=f"trace://{result.trace_id}" if result.trace_id else None,
            notes=[*notes, *result.notes],
        )  # fmt: skip

    async def web_search(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to search for.")],
        max_results: Annotated[int, Field(ge=1, le=50, description="How many results.")] = 10,
    ) -> WebSearchResult:
        """Search the web as the agent does (ddgs, SearXNG as fallback, rate limited, cached). A search that cannot be
        done (every engine down or rate limiting) is a tool error saying why; no results is not an error."""
        try:
            self._web_allowed()
            if self._searcher is None:
                from deepsearch.tools.web_search import WebSearch

                self._searcher = WebSearch(self.settings.search, self.settings.cache.dir)
            outcome = await self._searcher.search(query, max_results=max_results)
        except DeepsearchError as e:
            raise tool_error(e) from None
        if outcome.status not in ("ok", "no_results"):
            raise ToolError(one_line(outcome.message or f"web search {outcome.status}"))
        results = [WebResult(rank=r.rank, title=r.title, url=r.url, snippet=r.snippet) for r in outcome.results]
        return WebSearchResult(query=outcome.query, status=outcome.status, results=results, provider=outcome.provider,
                               message=outcome.message, from_cache=outcome.from_cache)  # fmt: skip

    async def fetch_page(
        self,
        url: Annotated[str, Field(min_length=1, max_length=4000, description="The page; https:// when no scheme.")],
        max_chars: Annotated[int, Field(ge=100, le=1_000_000, description="Cut the text at this length.")] = 20_000,
        text_format: Annotated[Literal["markdown", "text"] | None, Field(description="markdown or text.")] = None,
    ) -> PageResult:
        """Read one web page's main text and metadata through the agent's fetcher. Private, loopback and link-local
        addresses are refused (also after redirects) and robots.txt is honoured; a failed fetch is a tool error."""
        url = url.strip()
        if "://" not in url:
            url = "https://" + url
        try:
            self._web_allowed()
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise UsageError(f"only http and https URLs can be fetched: {url}")
            if self._fetcher is None:
                from deepsearch.tools.fetch_page import PageFetcher

                self._fetcher = PageFetcher(self.settings.fetch, self.settings.cache.dir)
            page = await self._fetcher.fetch(url, fmt=text_format)
        except DeepsearchError as e:
            raise tool_error(e) from None
        if not page.ok:
            raise ToolError(one_line(f"fetch failed ({page.status}): {page.message}"))
        return PageResult(
            **page.model_dump(include={"url", "final_url", "title", "author", "date", "sitename", "description",
                                       "content_type", "http_status", "from_cache", "message"}),
            text=page.text[:max_chars], text_chars=len(page.text), text_cut=len(page.text) > max_chars,
            body_truncated=page.truncated, extractor=page.extractor,
        )  # fmt: skip

    async def search_local(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to look for.")],
        index: Annotated[
            str | None, Field(description="An index name from list_indexes; default: the server's only index.")
        ] = None,
        k: Annotated[int, Field(ge=1, le=100, description="How many chunks.")] = 5,
        mode: Annotated[Literal["hybrid", "bm25", "dense"] | None, Field(description="Retrieval mode.")] = None,
    ) -> LocalSearchResult:
        """Search a local index (BM25, plus dense vectors where the index has them) and return ranked chunks with their
        text and source. Only the server's indexes can be named (see list_indexes)."""
        try:
            if index is None:
                if len(self.roots.defaults) != 1:
                    raise UsageError("give `index`: a name from list_indexes")
                index = self.roots.defaults[0]
            name, folder = self.roots.resolve(index)
            used, hits = await anyio.to_thread.run_sync(self._search_local, folder, query, k, mode)
        except DeepsearchError as e:
            raise tool_error(e) from None
        out = [LocalHitOut(**h.model_dump(include=set(LocalHitOut.model_fields))) for h in hits]
        return LocalSearchResult(index=name, mode=used, hits=out)

    def _search_local(self, folder: Path, query: str, k: int, mode: str | None):
        from deepsearch.tools.local_search import LocalSearcher

        searcher = LocalSearcher(folder, self.settings.index)
        try:
            used = mode or searcher.default_mode()
            return used, searcher.search(query, k, used)
        finally:
            searcher.close()

    async def list_indexes(self) -> IndexListing:
        """The local indexes this server can search: the ones it was started with (research's default) and the named
        indexes under its index directory, with document and chunk counts."""
        listing = await anyio.to_thread.run_sync(self.roots.listing)
        infos = [await anyio.to_thread.run_sync(index_info, *entry) for entry in listing]
        return IndexListing(index_dir=str(self.roots.index_dir), indexes=infos)

    def read_trace(self, trace_id: str) -> str:
        """A research run's trajectory as JSON: question, config, every LLM and tool call, verdicts, the answer and
        its termination (ids from research results; `last` = the newest run)."""
        from deepsearch.traces.reader import find_log, load_trajectory

        if not re.match(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", trace_id):
            raise ResourceNotFoundError(f"bad trace id {trace_id!r}")
        try:
            path = find_log(self.settings.traces.dir, trace_id)
        except UsageError as e:
            raise ResourceNotFoundError(one_line(str(e))) from None
        try:
            return load_trajectory(path).model_dump_json(indent=1)
        except DeepsearchError as e:
            raise ResourceError(one_line(str(e))) from None
