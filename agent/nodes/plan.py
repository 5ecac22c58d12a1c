"""plan: the planner's DAG of sub-goals, validated (unique ids, known dependencies, no cycles)."""

from __future__ import annotations

import re
from typing import Annotated

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, StringConstraints

from ..context import RunContext
from ..events import NodeEvent, SubGoalEvent
from ..loop_guard import is_near_duplicate
from ..state import DagChange, ResearchState, Source, SubGoal


class PlannedStep(BaseModel):
    question: str = Field(max_length=240)
    depends_on: list[int] = Field(default_factory=list, max_length=3, description="numbers of earlier steps")
    source: Source = "both"
    # The first round's extra searches: the planner writes them here instead of a rewrite call per round.
    queries: list[Annotated[str, StringConstraints(max_length=120)]] = Field(default_factory=list, max_length=2)


class Plan(BaseModel):
    """What the planner writes: numbered steps (ids are assigned here; small models make poor ids), and the
    reading it took of an ambiguous question (no separate intake call outside interactive sessions)."""

    assumption: str = Field("", max_length=200, description="the reading chosen when the question is ambiguous")
    subgoals: list[PlannedStep] = Field(min_length=1, max_length=8)

    def to_subgoals(self) -> list[SubGoal]:
        return [
            SubGoal(id=f"g{i}", question=step.question, source=step.source,
                    depends_on=[f"g{d}" for d in step.depends_on if 1 <= d < i],
                    queries=[" ".join(q.split()) for q in step.queries if q.strip()])
            for i, step in enumerate(self.subgoals, 1)
        ]  # fmt: skip


def validate_dag(
    subgoals: list[SubGoal],
    max_subgoals: int,
    existing: set[str] = frozenset(),
    similarity: float = 0.85,
    existing_questions: list[str] = (),
) -> list[SubGoal]:
    """Clean ids; drop empty questions and questions that repeat each other or the existing plan's, unknown
    dependencies and edges that would close a cycle; keep at most `max_subgoals`."""
    cleaned: list[SubGoal] = []
    seen = set(existing)
    for sg in subgoals:
        question = " ".join(sg.question.split())
        earlier = [*existing_questions, *(c.question for c in cleaned)]
        if not question or is_near_duplicate(question, earlier, similarity):
            continue
        if len(cleaned) == max_subgoals:
            break
        base = re.sub(r"\W+", "", sg.id) or "g"
        new_id, n = base, 1
        while new_id in seen:
            n += 1
            new_id = f"{base}_{n}"
        seen.add(new_id)
        cleaned.append(sg.model_copy(update={"id": new_id, "question": question}))
    known = {sg.id for sg in cleaned} | set(existing)
    placed: set[str] = set(existing)
    result = []
    # Dependencies may only point at sub-goals placed earlier: this keeps the graph acyclic.
    for sg in cleaned:
        deps = [d for d in dict.fromkeys(sg.depends_on) if d in known and d in placed and d != sg.id]
        result.append(sg.model_copy(update={"depends_on": deps}))
        placed.add(sg.id)
    return result


async def plan(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="plan", phase="started"))
    question = state["standalone_question"]
    fallback = Plan(subgoals=[PlannedStep(question=question)])
    given = state.get("assumption")  # the reading intake or the user already settled
    outcome = await ctx.structured(
        "plan", Plan, role="planner", fallback=fallback, max_tokens=400,
        question=question, max_subgoals=ctx.agent.max_subgoals, reading=reading_line(given),
    )  # fmt: skip
    assumption = given or outcome.value.assumption.strip() or None
    if assumption and not given:
        ctx.record("judge", target="question", target_kind="answer", labels={"ambiguous": True},
                   rationale=f"assumed: {assumption}", decision="assume")  # fmt: skip
    subgoals = validate_dag(outcome.value.to_subgoals(), ctx.agent.max_subgoals) or fallback.to_subgoals()
    reason = "initial plan" if not outcome.used_fallback else "planner output unusable: the question is one sub-goal"
    changes = [DagChange(op="add", subgoal_id=sg.id, subgoal=sg, reason=reason, step="plan") for sg in subgoals]
    for change in changes:
        if ctx.recorder is not None:
            ctx.recorder.dag_change("added", change.subgoal.model_dump(exclude={"tentative_answer", "queries"}), reason)
        sg = change.subgoal
        ctx.emit(SubGoalEvent(subgoal_id=sg.id, status="planned", question=sg.question, depends_on=sg.depends_on))
    ctx.emit(NodeEvent(node="plan", phase="finished"))
    return {"plan": {sg.id: sg for sg in subgoals}, "dag_changes": changes, "assumption": assumption}


def reading_line(assumption: str | None) -> str:
    """The prompt line that carries how an ambiguous question is read (empty when it is not)."""
    return f"\n(Read the question as: {assumption})" if assumption else ""


def route_plan(state: ResearchState) -> str:
    return "outline" if state.get("report") else "dispatch"
