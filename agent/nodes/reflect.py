"""reflect: after a wave, the planner may add, change or drop sub-goals given what was learned."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from ..context import RunContext
from ..events import NodeEvent, SubGoalEvent
from ..state import DagChange, ResearchState, Source, SubGoal
from .plan import validate_dag


class PlanChange(BaseModel):
    op: Literal["add", "change", "drop"]
    id: str = Field(description="the sub-goal's id (a new id for add)", max_length=12)
    question: str = Field("", max_length=240)
    depends_on: list[str] = Field(default_factory=list, max_length=3)
    source: Source = "both"
    reason: str = Field(description="why this change", max_length=200)


class Reflection(BaseModel):
    changes: list[PlanChange] = Field(default_factory=list, max_length=4)


def _progress(state: ResearchState) -> str:
    results = state.get("results") or {}
    lines = []
    for sg in (state.get("plan") or {}).values():
        r = results.get(sg.id)
        status = f"answer: {r.answer} (stopped: {r.stop_reason})" if r else "not run yet"
        deps = f" depends on {', '.join(sg.depends_on)}" if sg.depends_on else ""
        lines.append(f"- {sg.id}: {sg.question}{deps} — {status}")
    return "\n".join(lines)


def needs_reflection(state: ResearchState, new_ids: list[str]) -> bool:
    """Ask the planner only when this wave left something to fix: a replan request or no answer."""
    results = state.get("results") or {}
    replans = set(state.get("replan_requested") or [])
    return any(i in replans or results[i].answer == "unknown" for i in new_ids)


def apply_changes(state: ResearchState, changes: list[PlanChange], max_subgoals: int, wave: int):
    """The plan update and the DagChange records; changes to sub-goals that already ran are ignored."""
    plan = dict(state.get("plan") or {})
    results = state.get("results") or {}
    update: dict[str, SubGoal | None] = {}
    records: list[DagChange] = []
    step = f"reflect after wave {wave}"
    adds = [c for c in changes if c.op == "add" and c.question.strip()]
    additions = [SubGoal(id=c.id, question=c.question, depends_on=c.depends_on, source=c.source) for c in adds]
    # validate_dag normalises whitespace in questions: look reasons up the same way.
    reasons = {" ".join(c.question.split()): c.reason for c in adds}
    room = max(0, max_subgoals * 2 - len(plan))  # total sub-goals ever: a backstop against endless replanning
    questions = [sg.question for sg in plan.values()]
    for sg in validate_dag(additions, room, existing=set(plan), existing_questions=questions):
        reason = reasons.get(sg.question, "")
        update[sg.id] = sg
        records.append(DagChange(op="add", subgoal_id=sg.id, subgoal=sg, reason=reason, step=step))
    for c in changes:
        if c.op == "add" or c.id not in plan or c.id in results:
            continue
        if c.op == "drop":
            update[c.id] = None
            records.append(DagChange(op="drop", subgoal_id=c.id, subgoal=plan[c.id], reason=c.reason, step=step))
        elif c.question.strip():
            deps = [d for d in c.depends_on if d in plan and d != c.id] or plan[c.id].depends_on
            sg = plan[c.id].model_copy(update={"question": " ".join(c.question.split()), "depends_on": deps})
            update[c.id] = sg
            records.append(DagChange(op="change", subgoal_id=c.id, subgoal=sg, reason=c.reason, step=step))
    return update, records


async def reflect(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="reflect", phase="started"))
    new_ids = [i for i in (state.get("results") or {}) if i not in set(state.get("reflected") or [])]
    update: dict = {"reflected": new_ids}
    if needs_reflection(state, new_ids) and not ctx.budget.exhausted():
        outcome = await ctx.structured(
            "reflect", Reflection, role="planner", fallback=Reflection(), max_tokens=400,
            question=state["standalone_question"], progress=_progress(state),
        )  # fmt: skip
        plan_update, records = apply_changes(state, outcome.value.changes, ctx.agent.max_subgoals, state["wave"])
        if records:
            update |= {"plan": plan_update, "dag_changes": records}
        actions = {"add": "added", "change": "changed", "drop": "dropped"}
        for r in records:
            if ctx.recorder is not None:
                subgoal = r.subgoal.model_dump(exclude={"tentative_answer", "queries"})
                ctx.recorder.dag_change(actions[r.op], subgoal, r.reason)
            status = {"add": "planned", "change": "changed", "drop": "dropped"}[r.op]
            sg = r.subgoal
            ctx.emit(
                SubGoalEvent(subgoal_id=r.subgoal_id, status=status, question=sg.question, depends_on=sg.depends_on)
            )
    ctx.emit(NodeEvent(node="reflect", phase="finished"))
    return update
