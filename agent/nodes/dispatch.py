"""dispatch: start, in parallel, every sub-goal whose dependencies have results (LangGraph Send)."""

from __future__ import annotations

import re

from langgraph.runtime import Runtime
from langgraph.types import Send

from ..context import RunContext
from ..events import BudgetEvent, NodeEvent
from ..report.assemble import section_tasks
from ..state import ResearchState, ResearchTask, SubGoal
from ..stopping import run_plateau


def ready_subgoals(state: ResearchState) -> list[SubGoal]:
    done = state.get("results") or {}
    return [
        sg for sg in (state.get("plan") or {}).values() if sg.id not in done and all(d in done for d in sg.depends_on)
    ]


def with_parent_answers(sg: SubGoal, state: ResearchState) -> str:
    """The dependant's question with what its parents found, so its searches can name the entity."""
    results = state.get("results") or {}
    known = [f"{results[d].question} → {results[d].answer}" for d in sg.depends_on
             if d in results and results[d].answer != "unknown"]  # fmt: skip
    return sg.question if not known else f"{sg.question} (known: {'; '.join(known)})"


_REFERENCE = re.compile(r"#(\d+)")


def planned_queries(sg: SubGoal, state: ResearchState) -> list[str]:
    """The planner's queries for `sg` with `#k` filled by step k's answer; a dependant's query that names
    none of its parents' answers gets them appended (a search must name the entity it is about)."""
    results = state.get("results") or {}

    def answer(sid: str) -> str:
        r = results.get(sid)
        return r.answer if r is not None and r.answer != "unknown" else ""

    parents = [a for a in (answer(d) for d in sg.depends_on) if a]
    out = []
    for q in sg.queries:
        filled = " ".join(_REFERENCE.sub(lambda m: answer(f"g{m.group(1)}"), q).split())
        missing = [a for a in parents if a.lower() not in filled.lower()]
        if not _REFERENCE.search(q) and missing:
            filled = " ".join([filled, *missing])
        if filled:
            out.append(filled[:200])
    return out


def run_belief(state: ResearchState) -> float:
    """The run's belief: the mean confidence of the sub-goals nothing depends on (their answers answer the
    question); one not yet answered counts 0."""
    plan, results = state.get("plan") or {}, state.get("results") or {}
    needed = {d for sg in plan.values() for d in sg.depends_on}
    sinks = [i for i in plan if i not in needed]
    if not sinks:
        return 0.0
    return sum(results[i].confidence if i in results else 0.0 for i in sinks) / len(sinks)


async def dispatch(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="dispatch", phase="started"))
    update: dict = {"wave": state.get("wave", 0) + 1}
    beliefs = list(state.get("wave_beliefs") or [])
    if state.get("results"):  # after a wave: the run's belief and its gain
        beliefs.append(round(run_belief(state), 4))
        gain = abs(beliefs[-1] - beliefs[-2]) if len(beliefs) > 1 else beliefs[-1]
        ctx.record("information", belief=beliefs[-1], measure="run", gain=round(gain, 4))
        update["wave_beliefs"] = beliefs
    exhausted = ctx.budget.exhausted()
    if state.get("research_stop"):
        pass
    elif exhausted:
        update["research_stop"] = exhausted  # the run answers from what it has
    elif ready_subgoals(state) and run_plateau(beliefs, ctx.agent.epsilon, ctx.agent.plateau_rounds + 1):
        update["research_stop"] = "plateau"  # more waves stopped adding information
    elif update["wave"] > ctx.agent.max_subgoals * 2 and ready_subgoals(state):
        update["research_stop"] = "loop_detected"  # replanning keeps adding work: stop here
    # Branches of one wave run at once: each gets an even share of the pages left to fetch, so which pages a
    # branch reads never depends on which branch got there first (a replayed run reads the same pages).
    running = max(1, len(ready_subgoals(state)))
    update["fetch_share"] = max(0, ctx.budget.limits.fetches - ctx.budget.fetches) // running
    ctx.emit(BudgetEvent(used=ctx.budget.snapshot()))
    ctx.emit(NodeEvent(node="dispatch", phase="finished"))
    return update


def route_dispatch(state: ResearchState) -> list[Send] | str:
    ready = ready_subgoals(state)
    if state.get("research_stop") or not ready:
        if state.get("report"):
            return section_tasks(state)
        return "answer"
    return [
        Send(
            "research",
            ResearchTask(
                subgoal=sg,
                question=with_parent_answers(sg, state),
                original_question=state["standalone_question"],
                planned=planned_queries(sg, state),
                fetch_share=state.get("fetch_share"),
            ),
        )
        for sg in ready
    ]
