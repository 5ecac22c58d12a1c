"""The graph's typed state and the models that flow through it (sub-goals, evidence, results, answer)."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field

from .result import Citation

Source = Literal["local", "web", "both"]


class SubGoal(BaseModel):
    id: str = Field(description="short id such as g1, g2")
    question: str = Field(description="one self-contained question")
    depends_on: list[str] = Field(default_factory=list, description="ids whose answers this question needs")
    source: Source = Field("both", description="where to look: local documents, the web, or both")
    queries: list[str] = Field(default_factory=list, description="the planner's search queries; #k = step k's answer")
    tentative_answer: str | None = Field(None, description="a guess before searching, if any")


class Evidence(BaseModel):
    """A passage kept as evidence. Its id is what citations point to."""

    id: str
    subgoal_id: str
    kind: Literal["local", "web"]
    source: str = Field(description="URL or local path")
    title: str = ""
    text: str = Field(description="the passage as found in the source")
    contribution: str = Field("", description="how it helps the sub-goal")
    score: float = 0.0
    injection_flagged: bool = Field(False, description="contains instructions aimed at the model")
    round: int = Field(0, description="the research round that kept it")


StopReason = str  # the vocabulary of agent/stopping.py


class SubGoalResult(BaseModel):
    id: str
    question: str = Field(description="the question as researched, parents' answers filled in")
    answer: str
    evidence_ids: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    stop_reason: StopReason
    rounds: int = 0
    queries: list[str] = Field(default_factory=list)


class DagChange(BaseModel):
    op: Literal["add", "change", "drop"]
    subgoal_id: str
    subgoal: SubGoal | None = None
    reason: str
    step: str = Field(description="what caused it: plan, reflect after wave N, judge replan")


class AnswerClaim(BaseModel):
    text: str = Field(description="one factual statement", max_length=400)
    citations: list[int] = Field(
        default_factory=list, min_length=1, max_length=4, description="numbers of the evidence passages it rests on"
    )


class DraftAnswer(BaseModel):
    short_answer: str = Field(
        description="the answer in a few words: a name, number, date or short phrase", max_length=120
    )
    # At least one claim with at least one citation: a small model must commit to something checkable;
    # verify then keeps it only if the cited evidence supports it.
    claims: list[AnswerClaim] = Field(min_length=1, max_length=6)  # required: guided decoding must emit it


def merge_dicts(left: dict, right: dict) -> dict:
    return {**left, **right}


def merge_evidence(left: dict, right: dict) -> dict:
    """A passage found by several sub-goals keeps its first finder, its best score and any injection flag."""
    merged = dict(left)
    for key, ev in right.items():
        old = merged.get(key)
        if old is None:
            merged[key] = ev
        else:
            merged[key] = old.model_copy(update={"score": max(old.score, ev.score),
                                                 "injection_flagged": old.injection_flagged or ev.injection_flagged})
    return merged


def merge_plan(left: dict, right: dict) -> dict:
    """Like merge_dicts, but a None value removes the sub-goal (the planner dropped it)."""
    merged = {**left, **right}
    return {k: v for k, v in merged.items() if v is not None}


class ClarificationRequest(BaseModel):
    """What an interactive run asks the user about an ambiguous question (the payload of its interrupt)."""

    question: str = Field(description="the clarifying question shown to the user")
    assumption: str = Field("", description="the reading taken if the user gives no answer")


class ResearchState(TypedDict, total=False):
    question: str
    fetch_share: int | None  # dispatch: each branch of this wave may read this many pages
    history: list[dict[str, str]]  # earlier turns of a session: {"question", "answer"}
    standalone_question: str
    assumption: str | None
    clarification: dict | None  # a ClarificationRequest the clarify node must put to the user
    plan: Annotated[dict[str, SubGoal], merge_plan]
    dag_changes: Annotated[list[DagChange], operator.add]
    results: Annotated[dict[str, SubGoalResult], merge_dicts]
    evidence: Annotated[dict[str, Evidence], merge_evidence]
    wave: int
    replan_requested: Annotated[list[str], operator.add]
    reflected: Annotated[list[str], operator.add]  # sub-goal results the planner has already considered
    research_stop: str | None  # why research ended, in the vocabulary of agent/stopping.py
    wave_beliefs: list[float]  # the run's belief after each wave (run-level plateau)
    draft: DraftAnswer | None
    citation_map: dict[int, str]  # [n] -> evidence id, as shown to the answerer
    revision_feedback: str | None
    revisions: int
    kept_claims: list[AnswerClaim]  # claims verified before a revision: a revision never loses them
    answer_error: str | None  # error_<kind> when the answer call failed
    report: object | None  # a report.models.ReportRequest: this run writes a report (ask --report)
    outline: object | None  # report.models.Outline
    sections: Annotated[dict[str, object], merge_dicts]  # section id -> report.models.SectionResult
    report_info: object | None  # report.models.ReportInfo, the assembled report's figures
    answer: str
    short_answer: str
    citations: list[Citation]
    termination: str


class ResearchTask(TypedDict):
    """What `dispatch` sends to one parallel `research` branch."""

    subgoal: SubGoal
    question: str  # with the parents' answers filled in
    original_question: str
    planned: NotRequired[list[str]]  # the planner's queries for the first round, references filled in
    fetch_share: NotRequired[int | None]  # pages this branch may read: the wave's fetch budget split
