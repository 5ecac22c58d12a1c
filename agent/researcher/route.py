"""route: another round or out of the subgraph (the rules are agent/stopping.py's); finish: the sub-goal's result."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from ..belief import is_unknown
from ..context import RunContext
from ..events import SubGoalEvent
from ..state import SubGoalResult
from ..stopping import RoundFacts, low_gain_streak, round_stop
from .state import RoundState
from .steps import enter


def after_step(state: RoundState) -> str:
    """Edge after queries: a stop it set ends the sub-goal, otherwise the round goes on."""
    return "finish" if state.get("stop") else "continue"


def after_search(state: RoundState, runtime: Runtime[RunContext]) -> str:
    """Edge after search: a stop ends the sub-goal; the judge grades the pool itself (selection = judge),
    otherwise the reranker or fused order selects first."""
    if state.get("stop"):
        return "finish"
    return "judge" if runtime.context.agent.selection == "judge" else "select"


async def route(state: RoundState, runtime: Runtime[RunContext]) -> Command[Literal["queries", "finish"]]:
    ctx = runtime.context
    rnd = enter(ctx, state, "route")
    verdict = state["verdict"]
    answered = verdict.answered and not is_unknown(verdict.answer)
    gain = state.get("gain", 0.0)
    streak = low_gain_streak(state.get("low_gain", 0), gain, ctx.agent.epsilon, answered)
    facts = RoundFacts(
        round=rnd, max_rounds=ctx.agent.max_rounds, decision=verdict.decision, answered=answered, gain=gain,
        low_gain_rounds=streak, plateau_rounds=ctx.agent.plateau_rounds, budget=ctx.budget.exhausted(),
        error=state.get("stop"),
    )  # fmt: skip
    stop = round_stop(facts)
    update = {"low_gain": streak, "stop": stop}
    return Command(goto="finish" if stop else "queries", update=update)


async def finish(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    enter(ctx, state, "finish")
    sg = state["subgoal"]
    stop = state.get("stop") or "budget_rounds"
    best = state.get("best")
    kept = state.get("kept") or []
    result = SubGoalResult(
        id=sg.id,
        question=state["question"],
        answer=best.answer if best else "unknown",
        evidence_ids=[e.id for e in kept if not e.injection_flagged],
        confidence=best.belief if best else 0.0,
        stop_reason=stop,
        rounds=state.get("rounds_run", 0),
        queries=state.get("queries") or [],
    )
    ctx.emit(SubGoalEvent(subgoal_id=sg.id, status="done", question=state["question"], answer=result.answer,
                          stop_reason=stop))  # fmt: skip
    update: dict = {"results": {sg.id: result}, "evidence": {e.id: e for e in kept}}
    if stop == "replan":
        update["replan_requested"] = [sg.id]
    return update
