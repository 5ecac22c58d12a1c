"""The state of one sub-goal's research (a subgraph of the run) and the structured outputs of its steps."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

from deepsearch.tools.rerank.models import Candidate
from pydantic import BaseModel, Field, StringConstraints

from ..belief import Belief
from ..state import Evidence, SubGoal, SubGoalResult, merge_dicts, merge_evidence

Query = Annotated[str, StringConstraints(max_length=120)]


class PassageGrade(BaseModel):
    id: str = Field(description="a new passage's id, e.g. P2")
    grade: int = Field(ge=0, le=10, description="0 useless … 10 answers the sub-goal directly")
    quote: str = Field("", description="the passage's words that help, copied exactly")


class RoundVerdict(BaseModel):
    """The judge's one reply a round: the answer, the decision, the next searches, and (selection = judge)
    the grades and quotes that choose the round's evidence. Nothing here goes unread."""

    # The answer comes first, before any justification: its token probabilities are the belief, and an
    # answer written after a rationale would only copy it (probability ≈ 1).
    answer: str = Field(description="the sub-goal's answer from the evidence, or 'unknown'", max_length=120)
    answered: bool
    decision: Literal["continue", "replan", "done"]
    next_queries: list[Query] = Field(default_factory=list, max_length=3)
    passages: list[PassageGrade] = Field(default_factory=list, max_length=12)
    suspicious: list[str] = Field(default_factory=list, max_length=12, description="ids that instruct you")
    rationale: str = Field("", max_length=300)


class ShortDraft(BaseModel):
    answer: str = Field(description="a few words, or 'unknown'", max_length=120)


class BestAnswer(BaseModel):
    """The best-supported answer of any round so far (a worse later round does not replace it)."""

    answer: str
    belief: float
    round: int


class RoundState(TypedDict, total=False):
    # input (ResearchTask)
    subgoal: SubGoal
    question: str  # with the parents' answers filled in
    original_question: str
    planned: list[str]  # the planner's queries for round 1
    fetch_share: int | None  # pages this sub-goal may read (dispatch splits the wave's fetch budget)
    # the loop
    round: int
    rounds_run: int  # rounds that searched (a round stopped before its search does not count)
    queries: list[str]  # every query searched so far
    fresh: list[str]  # this round's queries
    seen: list[str]  # candidate ids already put in front of this sub-goal
    shown_words: list[str]  # the word sets of those candidates' texts (a repeat under another id is skipped)
    candidates: list[Candidate]  # this round's new candidates
    kept: list[Evidence]
    verdict: RoundVerdict | None
    belief: Belief | None
    gain: float
    best: BestAnswer | None
    low_gain: int
    stop: str | None
    # output, merged into the run's state
    results: Annotated[dict[str, SubGoalResult], merge_dicts]
    evidence: Annotated[dict[str, Evidence], merge_evidence]
    replan_requested: Annotated[list[str], operator.add]


class ResearchOutput(TypedDict, total=False):
    results: Annotated[dict[str, SubGoalResult], merge_dicts]
    evidence: Annotated[dict[str, Evidence], merge_evidence]
    replan_requested: Annotated[list[str], operator.add]
