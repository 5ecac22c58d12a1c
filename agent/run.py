"""The Python API: `research(question)` (sync) and `aresearch(question)` (async) return an AskResult.

Builds a run's context (LLM client, tools, budget, recorder), runs the checkpointed graph for one
thread, and turns the final state into the same object `deepsearch ask --json` prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .budget import Budget, BudgetLimits
from .checkpoints import open_checkpointer
from .config import Settings, load_settings
from .context import RunContext
from .errors import UsageError
from .events import ProgressEvent
from .llm import LLMBackend, LLMClient, build_backend
from .report.models import ReportRequest
from .research_tools import ResearchTools
from .result import AskResult, RunUsage
from .state import ClarificationRequest

# An interactive session's answer to a clarifying question ("" keeps the assumption the agent made).
Clarifier = Callable[[ClarificationRequest], Awaitable[str]]

RECURSION_LIMIT = 200


def build_tools(settings: Settings, indexes: list[str], web: bool) -> ResearchTools:
    """Open the local indexes and the web tools a run will use."""
    local = {}
    if indexes:
        from deepsearch.tools.local_search import LocalSearcher, resolve_index_dir

        for name in indexes:
            local[name] = LocalSearcher(resolve_index_dir(settings.index, name), settings.index)
    searcher = fetcher = None
    snapshot_id = None
    if web and settings.snapshot.replay:  # the web as a snapshot recorded it: nothing goes to the network
        from deepsearch.tools.replay import ReplayFetcher, ReplaySearch, cached_snapshot

        snapshot = cached_snapshot(settings.snapshot.replay, settings.snapshot.dir, settings.traces.dir)
        searcher = ReplaySearch(snapshot, settings.search, settings.snapshot.match)
        fetcher, snapshot_id = ReplayFetcher(snapshot, settings.fetch), snapshot.id
    elif web:
        from deepsearch.tools.fetch_page import PageFetcher
        from deepsearch.tools.snapshots import SnapshotStore
        from deepsearch.tools.web_search import WebSearch

        store = SnapshotStore(settings.snapshot.dir) if settings.snapshot.record else None
        searcher = WebSearch(settings.search, settings.cache.dir, store=store)
        fetcher = PageFetcher(settings.fetch, settings.cache.dir, store=store)
    if not local and searcher is None:
        raise UsageError("nothing to search: give --index NAME (see `deepsearch index`) or allow --web")
    a = settings.agent
    tools = ResearchTools(local, searcher, fetcher, local_k=a.local_k, web_pages=a.web_pages)
    tools.snapshot_id = snapshot_id
    return tools


def budget_limits(settings: Settings) -> BudgetLimits:
    a = settings.agent
    return BudgetLimits(
        llm_calls=a.max_llm_calls, tokens=a.max_tokens, searches=a.max_searches, fetches=a.max_fetches,
        seconds=a.max_seconds,
    )  # fmt: skip


async def aresearch(
    question: str,
    *,
    settings: Settings | None = None,
    indexes: list[str] | None = None,
    web: bool | None = None,
    history: list[dict[str, str]] | None = None,
    thread_id: str | None = None,
    backend: LLMBackend | None = None,
    tools: ResearchTools | None = None,
    on_event: Callable[[ProgressEvent], None] | None = None,
    traces_dir: Path | None = None,
    gold: list[str] | None = None,
    meta: dict[str, Any] | None = None,
    checkpoint: bool = True,
    clarify: Clarifier | None = None,
    trace_id: str | None = None,
    resume: bool = False,
    report: ReportRequest | None = None,
) -> AskResult:
    """Research a question and answer it with citations. A shared `backend` lets a batch reuse one server pool.

    With `clarify` the run is interactive: an ambiguous question pauses the run, `clarify` gets the
    agent's question and its reply goes back into the same run. `trace_id` names the trajectory in advance.
    With `resume`, a run of `thread_id` that died part-way continues from its last checkpoint (the last
    completed step of a research round) instead of starting over; its trajectory is a new one whose
    meta names the thread it resumed (the dead run's own log stays as it was). Budgets count afresh.
    With `report` the run writes a research report (agent/report): `answer` is its Markdown, `report` its figures.
    """
    from deepsearch.traces.schema import ToolSpec
    from deepsearch.traces.session import start_run_recording

    question = " ".join(question.split())
    if not question:
        raise UsageError("the question is empty")
    settings = settings or load_settings().settings
    indexes = settings.agent.indexes if indexes is None else indexes
    web = settings.agent.web if web is None else web
    own_backend = backend is None
    backend = backend or build_backend(settings.llm)
    own_tools = tools is None
    try:
        tools = tools or build_tools(settings, indexes, web)
        if resume:
            if not thread_id:
                raise UsageError("resume needs the thread id of the run to continue")
            meta = {**(meta or {}), "resumed_thread": thread_id}
        if tools.snapshot_id:  # a replayed run names the web it ran on (exports and sibling pairs group by it)
            meta = {**(meta or {}), "snapshot": tools.snapshot_id}
        with start_run_recording(
            settings, question, mode="research", backend=backend, traces_dir=traces_dir, gold=gold, meta=meta,
            trace_id=trace_id, tools=[ToolSpec(**spec) for spec in tools.tool_specs()], local_roots=tools.local_roots(),
        ) as recorder:
            client = LLMClient(backend)
            budget = Budget(budget_limits(settings), client.usage)
            tools.bind(budget, recorder.tool_call, lambda e: ctx.emit(e))
            ctx = RunContext(settings, client, tools, budget, recorder, on_event, interactive=clarify is not None)
            thread = thread_id or recorder.id
            if report is not None:  # each section's writer is shown as much evidence as the answerer
                report = report.model_copy(update={"evidence_tokens": settings.agent.answer_evidence_tokens})
            start = {"question": question, "history": history or [], "report": report}
            state = await _invoke(ctx, start, thread, checkpoint, clarify, resume)
            result = _result(ctx, state, recorder.id)
            citations = [c.model_dump() for c in result.citations]
            recorder.finish(result.answer, termination=result.termination, citations=citations, usage=result.usage,
                            gold=gold, short_answer=result.short_answer)  # fmt: skip
        return result
    finally:
        if own_tools and tools is not None:
            tools.close()
        if own_backend:
            await backend.aclose()


async def _invoke(
    ctx: RunContext,
    start: dict[str, Any],
    thread_id: str,
    checkpoint: bool,
    clarify: Clarifier | None,
    resume: bool = False,
) -> dict:
    from langgraph.types import Command

    from .graph import graph as compiled

    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}
    path = ctx.settings.agent.checkpoint_db if checkpoint else None
    async with open_checkpointer(path, ctx.interactive, fsync=ctx.settings.traces.fsync) as saver:
        graph = compiled.copy(update={"checkpointer": saver})  # compiling anew would cost ~60 ms a run
        if resume and (await graph.aget_state(config)).next:
            start = None  # continue the thread from its last checkpoint: finished steps are not redone
        state = await graph.ainvoke(start, config=config, context=ctx)
        # The clarify node pauses the run with interrupt(); the reply resumes this same thread.
        while clarify is not None and (pending := state.get("__interrupt__")):
            reply = await clarify(ClarificationRequest.model_validate(pending[0].value))
            state = await graph.ainvoke(Command(resume=reply), config=config, context=ctx)
        return state


def _result(ctx: RunContext, state: dict, trace_id: str) -> AskResult:
    u, b = ctx.client.usage, ctx.budget
    results = state.get("results") or {}
    subgoals = []
    for sg in (state.get("plan") or {}).values():
        r = results.get(sg.id)
        subgoals.append(
            {**sg.model_dump(exclude={"tentative_answer", "queries"}), "planned_queries": sg.queries,
             **({"answer": r.answer, "stop_reason": r.stop_reason, "confidence": r.confidence, "rounds": r.rounds,
                 "evidence_ids": r.evidence_ids, "queries": r.queries} if r else
                {"answer": None, "stop_reason": "not_run"})}
        )  # fmt: skip
    notes = [f"LLM call failed ({f['role']}): {f['error']}" for f in ctx.failures if f["kind"].startswith("error_")]
    if ctx.tools.web is not None and ctx.tools.web_unavailable:
        notes.append(f"{ctx.tools.web_unavailable}; answered from local documents only")
    return AskResult(
        question=state["question"],
        answer=state.get("answer", ""),
        short_answer=state.get("short_answer", ""),
        mode="research",
        citations=state.get("citations") or [],
        subgoals=subgoals,
        termination=state.get("termination") or "error_incomplete",
        usage=RunUsage(
            llm_calls=u.llm_calls,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            searches=b.searches,
            fetches=b.fetches,
            seconds=round(b.seconds, 3),
        ),  # fmt: skip
        backend=ctx.client.backend.name,
        model=ctx.client.model,
        trace_id=trace_id,
        assumption=state.get("assumption"),
        notes=notes,
        report=state.get("report_info"),
    )


def research(question: str, **kwargs: Any) -> AskResult:
    """Synchronous `aresearch` for scripts and notebooks without an event loop."""
    return asyncio.run(aresearch(question, **kwargs))
