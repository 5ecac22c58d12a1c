"""queries: the round's searches — the sub-goal itself first (or the judge's next query), then rewrites."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..context import RunContext
from ..events import SubGoalEvent
from ..loop_guard import fresh_queries
from .state import Queries, RoundState
from .steps import enter


async def queries(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    sg = state["subgoal"]
    rnd = state.get("round", 0) + 1
    if rnd == 1:
        ctx.emit(SubGoalEvent(subgoal_id=sg.id, status="running", question=state["question"]))
    enter(ctx, state, "queries", rnd)
    update: dict = {"round": rnd, "fresh": [], "candidates": []}
    if spent := ctx.budget.exhausted():
        return update | {"stop": spent}
    previous = state.get("queries") or []
    verdict = state.get("verdict")
    own = state["question"] if rnd == 1 else (verdict.next_query if verdict else "")
    known = f"\n(Known so far: {state['question']})" if state["question"] != sg.question else ""
    outcome = await ctx.structured(
        "rewrite", Queries, role="query_rewriter", fallback=Queries(), max_tokens=160,
        question=state["original_question"], subgoal=sg.question, known=known,
        previous="\n".join(f"- {q}" for q in previous) or "(none)", max_queries=ctx.agent.max_queries - 1,
    )  # fmt: skip
    if outcome.error and outcome.error.startswith("budget_"):
        return update | {"stop": outcome.error}
    # A failed rewrite is not fatal: the sub-goal's own query still runs (the failure is in the trajectory).
    candidates = [q for q in [own] if q] + outcome.value.queries[: ctx.agent.max_queries - 1]
    fresh = fresh_queries(candidates, previous, ctx.agent.duplicate_query_similarity)
    if not fresh:
        return update | {"stop": "loop_detected"}  # every query this round repeats an earlier one
    return update | {"fresh": fresh, "queries": previous + fresh}
