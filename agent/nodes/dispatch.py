"""dispatch: start, in parallel, every sub-goal whose dependencies have results (LangGraph Send)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Send

from ..context import RunContext
from ..events import BudgetEvent, NodeEvent
from ..state import ResearchState, ResearchTask, SubGoal


def ready_subgoals(state: ResearchState) -> list[SubGoal]:
    done = state.get("results") or {}
    return [
        sg for sg in (state.get("plan") or {}).values() if sg.id not in done and all(d in done for d in sg.depends_on)
    ]


def with_parent_answers(sg: SubGoal, state: ResearchState) -> str:
    """The dependant's question with what its parents found, so its searches can name the entity."""
    results = state.get("results") or {}
    known = [f"{results[d].question} → {results[d].answer}" for d in sg.depends_on if d in results]
    return sg.question if not known else f"{sg.question} (known: {'; '.join(known)})"


async def dispatch(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="dispatch", phase="started"))
    update: dict = {"wave": state.get("wave", 0) + 1}
    exhausted = ctx.budget.exhausted()
    if exhausted and not state.get("research_stop"):
        update["research_stop"] = exhausted
    elif update["wave"] > ctx.agent.max_subgoals * 2 and ready_subgoals(state):
        update["research_stop"] = "loop_detected"  # replanning keeps adding work: stop here
    ctx.emit(BudgetEvent(used=ctx.budget.snapshot()))
    ctx.emit(NodeEvent(node="dispatch", phase="finished"))
    return update


def route_dispatch(state: ResearchState) -> list[Send] | str:
    if state.get("research_stop"):
        return "answer"
    ready = ready_subgoals(state)
    if not ready:
        return "answer"
    return [
        Send(
            "research",
            ResearchTask(
                subgoal=sg,
                question=with_parent_answers(sg, state),
                original_question=state["standalone_question"],
            ),
        )
        for sg in ready
    ]
