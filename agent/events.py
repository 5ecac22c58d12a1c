"""Typed progress events a run emits while it works; the terminal UI and `--json` streams consume them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class _Event(BaseModel):
    at_s: float = Field(0.0, description="seconds since the run started")


class NodeEvent(_Event):
    kind: Literal["node"] = "node"
    node: str
    phase: Literal["started", "finished"]


class SubGoalEvent(_Event):
    kind: Literal["subgoal"] = "subgoal"
    subgoal_id: str
    status: Literal["planned", "running", "done", "dropped", "changed"]
    question: str
    depends_on: list[str] = Field(default_factory=list, description="ids it waits for (planned/changed)")
    answer: str | None = None
    stop_reason: str | None = None


class QueryEvent(_Event):
    kind: Literal["query"] = "query"
    subgoal_id: str
    query: str
    source: Literal["local", "web"]
    hits: int
    status: str = "ok"


class EvidenceEvent(_Event):
    kind: Literal["evidence"] = "evidence"
    subgoal_id: str
    kept: list[str]
    dropped: int


class VerdictEvent(_Event):
    kind: Literal["verdict"] = "verdict"
    target: str
    decision: str
    rationale: str = ""


class InformationEvent(_Event):
    kind: Literal["information"] = "information"
    subgoal_id: str
    round: int
    belief: float
    gain: float
    draft: str


class StepEvent(_Event):
    """The step in progress inside a node, e.g. "search", "rerank window 2/3", "judge" (for live views)."""

    kind: Literal["step"] = "step"
    subgoal_id: str | None = None
    round: int | None = None
    step: str


class BudgetEvent(_Event):
    kind: Literal["budget"] = "budget"
    used: dict[str, float]


ProgressEvent = Annotated[
    NodeEvent | SubGoalEvent | QueryEvent | EvidenceEvent | VerdictEvent | InformationEvent | StepEvent | BudgetEvent,
    Field(discriminator="kind"),
]
