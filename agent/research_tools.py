"""The research loop's view of the tools: search local indexes and the web in parallel, fetch pages, fuse.

Every call is counted against the budget, recorded as a tool_call step and announced as a progress
event. A web search that is unavailable (rate limit, engine down, offline) switches the web off for the
rest of the run; the reason is kept so the answer and the trace can say the run went local-only.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deepsearch.tools.chunking import ChunkingOptions, chunk_text
from deepsearch.tools.fusion import reciprocal_rank_fusion
from deepsearch.tools.rerank.local_candidates import candidates_from_hits
from deepsearch.tools.rerank.models import Candidate

from .context import CURRENT_ROUND, CURRENT_SUBGOAL
from .events import QueryEvent

if TYPE_CHECKING:
    from deepsearch.tools.fetch_page import PageFetcher
    from deepsearch.tools.local_search import LocalSearcher
    from deepsearch.tools.search_models import SearchOutcome
    from deepsearch.tools.ttl_cache import TTLCache
    from deepsearch.tools.web_search import WebSearch

    from .budget import Budget

_WORD = re.compile(r"\w+")
TOOL_SPECS: dict[str, dict[str, Any]] = {
    "local_search": {
        "name": "local_search",
        "description": "Search the user's local document index; returns the best passages with their text.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "index": {"type": "string", "description": "the index to search"},
            "k": {"type": "integer", "description": "how many hits"}}, "required": ["query"]},
    },
    "web_search": {
        "name": "web_search",
        "description": "Search the web; returns titles, URLs and snippets of the results.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
    "fetch_page": {
        "name": "fetch_page",
        "description": "Fetch a web page; returns its passages that match what is being searched for.",
        "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
    },
}  # fmt: skip
PAGE_PASSAGE = ChunkingOptions(max_tokens=160, overlap_tokens=0)
RRF_K = 60


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


class ResearchTools:
    def __init__(
        self,
        local: dict[str, LocalSearcher],
        web: WebSearch | None,
        fetcher: PageFetcher | None,
        *,
        local_k: int,
        web_pages: int,
        passages_per_page: int = 2,
    ):
        self.local, self.web, self.fetcher = local, web, fetcher
        self.local_k, self.web_pages, self.passages_per_page = local_k, web_pages, passages_per_page
        self.web_unavailable: str | None = None if web is not None else "web search is off"
        self.snapshot_id: str | None = None  # the snapshot a replayed run's web comes from
        self.fetched: dict[str, list[Candidate]] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._claimed: set[str] = set()  # pages counted against the fetch budget
        self._reads: dict[str, set[str]] = {}  # sub-goal -> the pages it has read
        self.fetch_shares: dict[str, int] = {}  # sub-goal -> pages it may read (dispatch sets it per wave)
        # Set per run by `bind`: budget counters, the recorder's tool_call, the progress-event sink.
        self.budget: Budget | None = None
        self._record: Callable[..., Any] | None = None
        self._emit: Callable[[Any], None] | None = None

    def bind(self, budget: Budget, record_tool: Callable[..., Any] | None, emit: Callable[[Any], None]) -> None:
        self.budget, self._record, self._emit = budget, record_tool, emit

    def local_roots(self) -> dict[str, list[str]]:
        """Index name -> the folders its files lie under (recorded in the trajectory's header)."""
        return {name: searcher.source_roots() for name, searcher in self.local.items()}

    def tool_specs(self) -> list[dict[str, Any]]:
        """The tools a run can use, as a trainer's chat template declares them (exports present the run as calls
        of these: the graph itself chooses its searches through structured outputs)."""
        return [TOOL_SPECS[name] for name in (["local_search"] if self.local else [])
                + (["web_search", "fetch_page"] if self.web is not None else [])]  # fmt: skip

    @property
    def sources(self) -> list[str]:
        return [*(["local"] if self.local else []), *(["web"] if self.web_unavailable is None else [])]

    def _tool_call(self, tool: str, arguments: dict[str, Any], **fields: Any) -> None:
        if self._record is not None:  # tagged with the sub-goal and round that searched (exports group by them)
            self._record(tool, arguments, subgoal=CURRENT_SUBGOAL.get(), round=CURRENT_ROUND.get(), **fields)

    # ---- search --------------------------------------------------------------------------------

    async def search(self, queries: list[str], source: str, subgoal_id: str) -> list[Candidate]:
        """Run every query against the wanted sources in parallel; one fused candidate list, best first.

        The web's pages are chosen once every search of the round has answered, in query and rank order, so
        which pages a round reads never depends on which search answered first (a replayed run reads the same)."""
        use_local = bool(self.local) and source in ("local", "both")
        use_web = self.web_unavailable is None and (source in ("web", "both") or not self.local)
        if not use_local and self.local and not use_web:
            use_local = True  # the sub-goal wanted the web, which is off or down: local is what there is
        local = [[self._local(name, searcher, q, subgoal_id) for name, searcher in self.local.items()] if use_local
                 else [] for q in queries]  # fmt: skip
        web = [self._web_search(q, subgoal_id) for q in queries] if use_web else []
        done = await asyncio.gather(*(job for jobs in local for job in jobs), *web)
        local_lists, outcomes = iter(done[: len(done) - len(web)]), done[len(done) - len(web) :]
        web_lists = iter(await self._web_candidates(queries, outcomes, subgoal_id) if use_web else [])
        lists = []
        for jobs in local:  # each query's local lists, then its web list: the fusion order as it always was
            lists += [next(local_lists) for _ in jobs]
            if use_web:
                lists.append(next(web_lists))
        by_id: dict[str, Candidate] = {}
        rankings = []
        for ranked in lists:
            rankings.append([c.id for c in ranked])
            for c in ranked:
                by_id.setdefault(c.id, c)
        fused = reciprocal_rank_fusion(rankings, k=RRF_K)
        return [by_id[i].model_copy(update={"prior_score": round(score, 6)}) for i, score in fused]

    async def _local(self, name: str, searcher: LocalSearcher, query: str, subgoal_id: str) -> list[Candidate]:
        started = time.perf_counter()
        self._count("searches")
        try:
            hits = await searcher.asearch(query, k=self.local_k)
        except Exception as e:  # noqa: BLE001 - one failing index must not end the run
            self._tool_call("local_search", {"query": query, "index": name}, success=False, error=str(e)[:300])
            self._event(QueryEvent(subgoal_id=subgoal_id, query=query, source="local", hits=0, status="error"))
            return []
        candidates = candidates_from_hits(hits)
        self._tool_call(
            "local_search",
            {"query": query, "index": name, "k": self.local_k},
            latency_s=time.perf_counter() - started,
            results=[{"id": h.chunk_id, "title": h.title, "url": h.source, "score": h.score} for h in hits],
        )
        self._event(QueryEvent(subgoal_id=subgoal_id, query=query, source="local", hits=len(hits)))
        return candidates

    async def _web_search(self, query: str, subgoal_id: str) -> SearchOutcome | None:
        """One web search, recorded; None when the web is unavailable (the run goes local-only from here)."""
        assert self.web is not None
        self._count("searches")
        outcome = await self.web.search(query)
        self._tool_call(
            "web_search",
            {"query": outcome.query},
            success=outcome.status not in ("unavailable", "not_recorded"),
            recorded=outcome.recorded,
            # also why it fell back, that "nothing" may be a block, and a cache that failed and is off
            error="; ".join(filter(None, [outcome.message, self._cache_note(self.web.cache, self.web.brief_cache)]))
            or None,
            latency_s=outcome.elapsed_ms / 1000,
            results=[
                {"url": r.url, "title": r.title, "snippet": r.snippet, "score": 1 / r.rank} for r in outcome.results
            ],
        )
        self._event(
            QueryEvent(
                subgoal_id=subgoal_id, query=query, source="web", hits=len(outcome.results), status=outcome.status
            )
        )
        if outcome.status == "unavailable":
            self.web_unavailable = outcome.message  # degrade to local-only for the rest of the run
            return None
        return outcome

    async def _web_candidates(self, queries: list[str], outcomes: list, subgoal_id: str) -> list[list[Candidate]]:
        """Each query's web candidates: the passages of its top pages this sub-goal may read (decided in query
        and rank order), fetched together, then the other results' snippets."""
        plans = []
        for outcome in outcomes:
            top = outcome.results[: self.web_pages] if outcome is not None and self.fetcher else []
            plans.append((outcome, [r for r in top if self._may_read(r.url, subgoal_id)], top))
        reads = [(q, r) for q, (_, chosen, _) in zip(queries, plans, strict=True) for r in chosen]
        pages = iter(await asyncio.gather(*(self._page(r.url, r.title, r.snippet, q) for q, r in reads)))
        out = []
        for outcome, chosen, top in plans:
            if outcome is None:
                out.append([])
                continue
            read = {r.url: next(pages) for r in chosen}
            cands = [c for r in top for c in read.get(r.url) or [self._snippet(r.url, r.title, r.snippet)]]
            out.append(cands + [c for r in outcome.results[len(top) :]
                                if (c := self._snippet(r.url, r.title, r.snippet)).text])  # fmt: skip
        return out

    def _may_read(self, url: str, subgoal_id: str) -> bool:
        """Whether `subgoal_id` may read this page: within its share of the fetch budget (set per wave by
        dispatch: what is left, split among the sub-goals that run at once), each page it reads counted once
        for it whoever fetched it, so its share never depends on another branch's timing. A page fetched by
        nobody yet is counted against the run's budget here, when it is chosen."""
        reads = self._reads.setdefault(subgoal_id, set())
        if url in reads:
            return True
        share = self.fetch_shares.get(subgoal_id)
        if share is not None and len(reads) >= share:
            return False
        if url not in self._claimed:
            if self.budget is not None and self.budget.fetches >= self.budget.limits.fetches:
                return False
            self._claimed.add(url)
            self._count("fetches")
        reads.add(url)
        return True

    # ---- pages ---------------------------------------------------------------------------------

    @staticmethod
    def _snippet(url: str, title: str, snippet: str) -> Candidate:
        return Candidate(id=f"web:{_short_hash(url)}:snippet", text=snippet, title=title, source=url, kind="web")

    async def _page(self, url: str, title: str, snippet: str, query: str) -> list[Candidate]:
        """The page's passages that best match the query; the search snippet when the fetch fails.

        A URL is fetched once per run, even when parallel queries and sub-goals want it at the same moment:
        later askers wait for the fetch in flight.
        """
        if url not in self.fetched:
            pending = self._inflight.get(url)
            if pending is None:  # counted when chosen (_may_read)
                pending = self._inflight[url] = asyncio.ensure_future(self._fetch(url, title, snippet))
                pending.add_done_callback(lambda _: self._inflight.pop(url, None))
            await asyncio.shield(pending)
        passages = self.fetched.get(url) or [self._snippet(url, title, snippet)]
        terms = _terms(query)
        ranked = sorted(passages, key=lambda c: -len(terms & _terms(c.text)))
        return ranked[: self.passages_per_page]

    async def _fetch(self, url: str, title: str, snippet: str) -> None:
        """Fetch one page into `fetched`: its passages, or its snippet when the fetch fails."""
        assert self.fetcher is not None
        page = await self.fetcher.fetch(url)
        self._tool_call(
            "fetch_page",
            {"url": url},
            success=page.ok,
            recorded=page.recorded,
            error="; ".join(filter(None, [None if page.ok else f"{page.status}: {page.message}",
                                          page.cache_degraded and f"page cache off: {page.cache_degraded}"])) or None,
            latency_s=page.elapsed_ms / 1000,
            results=[{"url": page.final_url or url, "title": page.title, "text": page.text}] if page.ok else [],
        )
        if not page.ok:
            self.fetched[url] = [self._snippet(url, title, snippet)]
        else:
            doc_id = f"web:{_short_hash(url)}"
            chunks = chunk_text(doc_id, page.text, PAGE_PASSAGE)
            self.fetched[url] = [
                Candidate(
                    id=c.chunk_id,
                    text=c.text,
                    title=page.title or title,
                    source=page.final_url or url,
                    kind="web",
                    prev_id=c.prev_id,
                    next_id=c.next_id,
                )
                for c in chunks
            ]

    async def neighbour(self, candidate_id: str) -> Candidate | None:
        """A chunk by id, for the reranker's neighbour expansion (local chunks and fetched pages)."""
        for passages in self.fetched.values():
            for c in passages:
                if c.id == candidate_id:
                    return c
        for searcher in self.local.values():
            texts = await asyncio.to_thread(searcher.get_chunks, [candidate_id])
            if candidate_id in texts:
                return Candidate(id=candidate_id, text=texts[candidate_id], kind="local")
        return None

    # ---- bookkeeping ---------------------------------------------------------------------------

    def _cache_note(self, *caches: TTLCache) -> str | None:
        """Why a cache is off (it failed: the run goes on without it)."""
        notes = [f"{c.namespace} cache off: {c.degraded}" for c in caches if c.degraded]
        return "; ".join(notes) or None

    def _count(self, kind: str) -> None:
        if self.budget is not None:
            setattr(self.budget, kind, getattr(self.budget, kind) + 1)

    def _event(self, event: QueryEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    def close(self) -> None:
        for searcher in self.local.values():
            searcher.close()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]
