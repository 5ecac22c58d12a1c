"""The run context of a run the LangGraph API server started (`langgraph dev`, Studio, the LangGraph SDK).

`aresearch` builds a RunContext and hands it to LangGraph as `context=`. The API server cannot: it passes the
run request's JSON `context` (or, when the request gave none, a copy of `config["configurable"]`). This module
turns such a request into the same RunContext a CLI run gets:

- settings from the same layers as the CLI (defaults < config file < `DEEPSEARCH_*` env), then the run's
  options (`ServerRunOptions`: indexes, web, interactive, max_rounds, llm_base_url, ...);
- the LLM backend, the tools of `build_tools`, a budget, progress events sent to LangGraph's `custom` stream;
- a trajectory under traces.dir (`start_run_recording`), finished at the end with the answer, citations and
  termination (`cancelled` / `error_<kind>` when the run is cancelled or fails).

A run paused at a clarifying question (a LangGraph interrupt) keeps its context, budget and open trajectory in
this process, keyed by thread; the run that resumes the thread continues them, exactly as `aresearch` keeps one
context across `Command(resume=...)`. A resume this process knows nothing of (the server restarted) records a
new trajectory whose meta names the thread it resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..budget import Budget
from ..config import Settings, load_settings
from ..context import RunContext
from ..errors import DeepsearchError, UsageError
from ..events import ProgressEvent
from ..llm import LLMBackend, LLMClient, build_backend
from ..research_tools import ResearchTools

MAX_PAUSED = 64  # paused runs kept per process; the oldest beyond this is finished as `cancelled`


class ServerRunError(ValueError):
    """A run that cannot start (bad option, unknown index, bad config). A ValueError: the server shows the SDK
    client its message (other exception types reach the client as "An internal error occurred")."""


class ServerRunOptions(BaseModel):
    """What a run request may set (`context={...}`, or `config={"configurable": {...}}`). Unset = the server's
    settings. This is the graph's context schema under the server: Studio shows it as the run's context form."""

    model_config = ConfigDict(extra="forbid")

    indexes: list[str] | None = Field(None, description="local indexes to search (names or paths)")
    web: bool | None = Field(None, description="search the web too")
    interactive: bool = Field(
        False, description="ask a clarifying question (a LangGraph interrupt) when the question is ambiguous"
    )
    max_rounds: int | None = Field(None, ge=1, le=20, description="research rounds per sub-goal")
    max_subgoals: int | None = Field(None, ge=1, le=12, description="sub-goals the planner may create at once")
    max_llm_calls: int | None = Field(None, ge=1, description="budget: LLM calls per run")
    max_searches: int | None = Field(None, ge=1, description="budget: search calls per run")
    max_seconds: float | None = Field(None, gt=0, description="budget: wall time per run (seconds)")
    llm_base_url: str | None = Field(
        None, description="an OpenAI-compatible server for this run (the server's API key goes only to its own)"
    )
    llm_model: str | None = Field(None, description="model name on the LLM server")
    trace_id: str | None = Field(None, description="the trajectory's id (default: a new time-sortable id)")


# Option -> dotted setting (settings a run request may not reach: paths, secrets, fetch's private-network list).
_SETTING_OF = {
    "indexes": "agent.indexes", "web": "agent.web", "max_rounds": "agent.max_rounds",
    "max_subgoals": "agent.max_subgoals", "max_llm_calls": "agent.max_llm_calls",
    "max_searches": "agent.max_searches", "max_seconds": "agent.max_seconds",
    "llm_base_url": "llm.base_url", "llm_model": "llm.model",
}  # fmt: skip


def run_options(context: Any, configurable: dict[str, Any] | None = None) -> ServerRunOptions:
    """The options of a server run: the option keys of `configurable`, overlaid by those of `context`.

    The server has already dropped keys the context schema lacks; anything else (an in-process caller) is
    checked here, so a misspelt option is an error rather than silently ignored."""
    if isinstance(context, BaseModel):
        context = context.model_dump(exclude_unset=True)
    fields = ServerRunOptions.model_fields
    values = {k: v for k, v in (configurable or {}).items() if k in fields}
    values |= dict(context or {})
    try:
        return ServerRunOptions.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        raise ServerRunError(f"deepsearch: bad run option {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def run_settings(options: ServerRunOptions) -> Settings:
    """The CLI's settings (config file and `DEEPSEARCH_*` env, read now) with the run's options on top."""
    given = options.model_dump(exclude_none=True)
    overrides = {setting: given[name] for name, setting in _SETTING_OF.items() if name in given}
    settings = load_settings(overrides=overrides).settings
    if options.llm_base_url and options.llm_base_url not in load_settings().settings.llm.base_url:
        # A URL named by a run request never receives the API key configured for the server's own backend.
        settings.llm.api_key = None
        if settings.llm.backend == "llamacpp":
            settings.llm.backend = "openai"
    return settings


BLOCKING_REFUSED = (
    "deepsearch: this server refuses blocking calls (`langgraph dev` without --allow-blocking), and a run makes "
    "small synchronous disk writes and reads (its trajectory, the local index): start it with "
    "`langgraph dev --allow-blocking`"
)


def blocking_calls_refused() -> bool:
    """Whether blockbuster (what `langgraph dev` runs without --allow-blocking) guards this process's disk writes.

    The recorder writes each trajectory event with one unbuffered os.write (crash-safe by design) from inside
    the graph's steps; under blockbuster every such write would fail the run half-way."""
    return getattr(os.write, "__module__", None) == "blockbuster.blockbuster"


def _progress_to_stream(event: ProgressEvent) -> None:
    """Send a progress event to LangGraph's `custom` stream (what `deepsearch ask` shows live)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # emitted outside a graph step: nobody streams it
        return
    writer({"deepsearch": event.model_dump(mode="json")})


@dataclass
class ServerRun:
    """One research run under the server: its context and trajectory, and what it must close."""

    ctx: RunContext
    backend: LLMBackend
    tools: ResearchTools
    thread_id: str | None

    @property
    def recorder(self):
        return self.ctx.recorder

    def finish(self, values: dict[str, Any]) -> None:
        """Record the final answer, citations and termination (like `aresearch`) and close."""
        from ..run import _result

        result = _result(self.ctx, values, self.recorder.id)
        citations = [c.model_dump() for c in result.citations]
        if not self.recorder.finished:
            self.recorder.finish(result.answer, termination=result.termination, citations=citations,
                                 usage=result.usage, short_answer=result.short_answer)  # fmt: skip

    def fail(self, exc: BaseException) -> None:
        """Record a failed or cancelled run (`error_<kind>` / `cancelled`)."""
        from deepsearch.traces.recorder import TraceWriteError

        if isinstance(exc, GeneratorExit):  # the server closed the stream: the run was cancelled or rolled back
            exc = asyncio.CancelledError("the run was cancelled")
        if not self.recorder.finished:
            with contextlib.suppress(TraceWriteError):  # an unwritable log must not hide how the run ended
                self.recorder.fail(exc)

    async def close(self) -> None:
        self.recorder.close()
        self.tools.close()
        with contextlib.suppress(Exception):  # closing a client must never mask how the run ended
            await self.backend.aclose()


async def open_server_run(
    question: str, options: ServerRunOptions, *, meta: dict[str, Any], thread_id: str | None
) -> ServerRun:
    """Build the settings, backend, tools, budget and recorder of a run, as `aresearch` does."""
    try:
        return await _open(question, options, meta=meta, thread_id=thread_id)
    except DeepsearchError as e:
        raise ServerRunError(f"deepsearch: {e}") from e


async def _open(question: str, options: ServerRunOptions, *, meta: dict[str, Any], thread_id: str | None) -> ServerRun:
    from deepsearch.traces.schema import ToolSpec
    from deepsearch.traces.session import start_run_recording

    from ..run import budget_limits, build_tools

    question = " ".join(question.split())
    if not question:
        raise UsageError('the question is empty: start the run with input={"question": "..."}')
    settings = run_settings(options)
    backend = build_backend(settings.llm)
    tools = None
    try:
        # Opening indexes and the trajectory file reads and writes the disk: off the event loop.
        tools = await asyncio.to_thread(build_tools, settings, settings.agent.indexes, settings.agent.web)
        if tools.snapshot_id:
            meta = {**meta, "snapshot": tools.snapshot_id}
        recorder = await asyncio.to_thread(
            start_run_recording, settings, question, mode="research", backend=backend, meta=meta,
            trace_id=options.trace_id, tools=[ToolSpec(**spec) for spec in tools.tool_specs()],
            local_roots=tools.local_roots(),
        )  # fmt: skip
    except BaseException:
        if tools is not None:
            tools.close()
        await backend.aclose()
        raise
    client = LLMClient(backend)
    budget = Budget(budget_limits(settings), client.usage)
    ctx = RunContext(settings, client, tools, budget, recorder, _progress_to_stream, interactive=options.interactive)
    tools.bind(budget, recorder.tool_call, ctx.emit)
    return ServerRun(ctx, backend, tools, thread_id)


# Runs paused at an interrupt, by thread id (oldest first).
_PAUSED: OrderedDict[str, ServerRun] = OrderedDict()


def take_paused(thread_id: str | None) -> ServerRun | None:
    """The paused run of a thread, removed from the registry (the caller resumes it or finishes it)."""
    return _PAUSED.pop(thread_id, None) if thread_id else None


def keep_paused(run: ServerRun) -> None:
    """Keep a run that stopped at an interrupt until its thread is resumed; the oldest beyond MAX_PAUSED is
    finished as `cancelled` (its tools and LLM client are closed when the event loop gets to it)."""
    if run.thread_id is None:  # nothing can resume it
        run.fail(asyncio.CancelledError("paused with no thread to resume"))
        _close_soon(run)
        return
    _PAUSED[run.thread_id] = run
    while len(_PAUSED) > MAX_PAUSED:
        _, old = _PAUSED.popitem(last=False)
        old.fail(asyncio.CancelledError("a paused run was never resumed"))
        _close_soon(old)


_CLOSING: set[asyncio.Task] = set()


def _close_soon(run: ServerRun) -> None:
    task = asyncio.get_running_loop().create_task(run.close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
