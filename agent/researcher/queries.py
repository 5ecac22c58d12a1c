"""queries: the round's searches, without a call of their own — round 1 runs the sub-goal itself and the
planner's queries for it; a later round runs the queries the judge wrote when it decided to continue."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..context import RunContext
from ..events import SubGoalEvent
from ..loop_guard import fresh_queries
from .state import RoundState
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
    if rnd == 1:
        candidates = [state["question"], *(state.get("planned") or [])]
    else:
        candidates = list(verdict.next_queries) if verdict else []
    fresh = fresh_queries(candidates, previous, ctx.agent.duplicate_query_similarity)[: ctx.agent.max_queries]
    if not fresh:
        return update | {"stop": "loop_detected"}  # every query this round repeats an earlier one (or none)
    return update | {"fresh": fresh, "queries": previous + fresh}
