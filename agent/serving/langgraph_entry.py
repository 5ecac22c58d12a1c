"""The graph `langgraph.json` names: the compiled research graph, giving each server run its RunContext.

`langgraph dev`, Studio and the LangGraph SDK start runs with a JSON `context` (the run's options), never with
the RunContext the nodes read as `runtime.context`. `graph` here is the same compiled graph as
`agent/graph.py`'s (same nodes, edges, state and subgraph: Studio draws and steps through it as is), with one
difference: `astream` (which `ainvoke`, `astream_events` and every server stream path call) builds the run's
RunContext from those options (agent/serving/langgraph_context.py), records the trajectory, and finishes it when
the run ends, pauses, fails or is cancelled. A caller that passes a RunContext itself (as `aresearch` does)
gets the plain graph's behaviour.

Absolute imports only: the server loads this file by path.
"""

from __future__ import annotations

import asyncio
import typing
import uuid
from collections.abc import AsyncIterator
from typing import Any

import typing_extensions
from deepsearch.agent.context import RunContext
from deepsearch.agent.graph import compile_graph
from deepsearch.agent.report.models import ReportRequest
from deepsearch.agent.serving.langgraph_context import (
    BLOCKING_REFUSED,
    ServerRun,
    ServerRunError,
    ServerRunOptions,
    blocking_calls_refused,
    keep_paused,
    open_server_run,
    run_options,
    take_paused,
)
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from pydantic import BaseModel, Field, TypeAdapter

GRAPH_ID = "deepsearch"


class Turn(BaseModel):
    question: str
    answer: str


class ResearchInput(BaseModel):
    """What a run starts from (Studio's input form)."""

    question: str = Field(description="the question to research")
    history: list[Turn] = Field(default_factory=list, description="earlier turns, when this is a follow-up")
    report: ReportRequest | None = Field(None, description="write a research report instead of a short answer")


class ServedResearchGraph(CompiledStateGraph):
    """The compiled research graph; a run started without a RunContext gets one built from its options."""

    # The server's schema endpoints (Studio's forms). The graph's own fail on Python 3.11: pydantic wants
    # typing_extensions.TypedDict there, and agent/state.py's is typing's. These change no run.
    def get_input_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        return ResearchInput.model_json_schema()

    def get_output_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        schema = self.builder.output_schema
        hints = typing.get_type_hints(schema, include_extras=True)
        clone = typing_extensions.TypedDict(schema.__name__, hints, total=False)  # type: ignore[misc]
        return TypeAdapter(clone).json_schema()

    def stream(self, input: Any, config: dict[str, Any] | None = None, *, context: Any = None, **kwargs: Any):
        if not isinstance(context, RunContext) and not ((config or {}).get("configurable") or {}).get("checkpoint_ns"):
            raise ServerRunError("deepsearch: without a RunContext the graph runs asynchronously (ainvoke, astream), "
                                 "as the LangGraph server runs it")  # fmt: skip
        return super().stream(input, config, context=context, **kwargs)

    async def astream(
        self, input: Any, config: dict[str, Any] | None = None, *, context: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        configurable = dict((config or {}).get("configurable") or {})
        if isinstance(context, RunContext) or configurable.get("checkpoint_ns"):  # a caller's own context / nested
            async for chunk in super().astream(input, config, context=context, **kwargs):
                yield chunk
            return
        if blocking_calls_refused():  # fail at once with the remedy, not half-way at the first trajectory write
            raise ServerRunError(BLOCKING_REFUSED)
        graph: CompiledStateGraph = self
        if self.checkpointer is None:
            # A run without the server's checkpointer (a stateless run, a direct call): keep its state in memory
            # for the run, so its final state can be read back for the trajectory.
            from deepsearch.agent.checkpoints import serializer
            from langgraph.checkpoint.memory import InMemorySaver

            graph = self.copy(update={"checkpointer": InMemorySaver(serde=serializer())})
            configurable.setdefault("thread_id", str(uuid.uuid4()))
            config = {**(config or {}), "configurable": configurable}
        run = await _open_run(graph, input, config, context, configurable)
        paused = False
        try:
            async for chunk in CompiledStateGraph.astream(graph, input, config, context=run.ctx, **kwargs):
                yield chunk
            state = await graph.aget_state(_thread_config(configurable))
            if not state.next:
                run.finish(state.values)
            elif graph is self:  # stopped at an interrupt (the clarifying question): the resume continues this run
                paused = True
            else:  # an interrupt in a run with no checkpointer: nothing can resume it
                run.fail(asyncio.CancelledError("paused in a stateless run, which cannot be resumed"))
        except BaseException as e:  # failed, cancelled, or the stream closed early (GeneratorExit)
            run.fail(e)
            raise
        finally:
            if paused:
                keep_paused(run)
            else:
                await run.close()


def _thread_config(configurable: dict[str, Any]) -> dict[str, Any]:
    """The thread's latest checkpoint (not the one a run may have started from)."""
    return {"configurable": {"thread_id": configurable.get("thread_id"), "checkpoint_ns": ""}}


async def _open_run(
    graph: CompiledStateGraph, input: Any, config: dict[str, Any] | None, context: Any, configurable: dict
) -> ServerRun:
    thread_id = configurable.get("thread_id")
    thread_id = str(thread_id) if thread_id is not None else None
    resuming = input is None or isinstance(input, Command)
    if resuming and (paused := take_paused(thread_id)) is not None:
        return paused  # the answer to the clarifying question: the same context, budget and trajectory go on
    previous = await graph.aget_state(_thread_config(configurable))
    if not resuming and previous.values:
        # The graph's state accumulates (plan, results, evidence): a second question would mix with the first.
        raise ServerRunError(
            "deepsearch: this thread already holds a question; start each question on a new thread "
            '(give earlier turns as input={"question": ..., "history": [{"question": ..., "answer": ...}]})'
        )
    options = run_options(context, configurable)
    meta = {"langgraph": {k: str(configurable[k]) for k in ("thread_id", "run_id", "assistant_id", "graph_id")
                          if configurable.get(k) is not None}}  # fmt: skip
    if resuming:
        # Resuming a thread this process did not start (the server restarted): a new trajectory for the rest.
        question = (previous.values or {}).get("question", "")
        meta["resumed_thread"] = thread_id
    else:
        question = input.get("question", "") if isinstance(input, dict) else ""
    return await open_server_run(question, options, meta=meta, thread_id=thread_id)


def build_served_graph() -> ServedResearchGraph:
    compiled = compile_graph()
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    # The context schema is what a run request may set (Studio's context form; the server filters by it).
    attrs |= {"context_schema": ServerRunOptions, "name": GRAPH_ID}
    return ServedResearchGraph(**attrs)


graph = build_served_graph()

__all__ = ["GRAPH_ID", "ServedResearchGraph", "build_served_graph", "graph"]
