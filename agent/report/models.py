"""The report's typed pieces: the request, the outline, a section's draft and result, the assembled report."""

from __future__ import annotations

from typing import Annotated, TypedDict

from pydantic import BaseModel, Field, StringConstraints

from ..state import AnswerClaim, Evidence

SUMMARY_ID = "summary"
WORDS_PER_CLAIM = 25  # a claim is one sentence: a section of N words asks for about N/25 of them


class ReportRequest(BaseModel):
    """What `ask --report` asks for."""

    words: int = Field(1200, ge=100, le=20_000, description="target length of the whole report")
    evidence_tokens: int = Field(2400, ge=200, description="evidence each section's writer is shown")


class OutlineEntry(BaseModel):
    heading: Annotated[str, StringConstraints(max_length=120)]
    purpose: Annotated[str, StringConstraints(max_length=240)] = Field(description="one line: what the section answers")


class OutlineReply(BaseModel):
    """What the outliner writes: a title and one entry per numbered sub-goal, in the same order."""

    title: Annotated[str, StringConstraints(max_length=160)]
    sections: list[OutlineEntry] = Field(min_length=1, max_length=12)


class Section(BaseModel):
    """One section of the outline: its heading, its purpose, and the sub-goals whose evidence it is written from."""

    id: str
    heading: str
    purpose: str
    subgoal_ids: list[str] = Field(default_factory=list, description="empty for the summary: all evidence")


class Outline(BaseModel):
    title: str
    sections: list[Section]


class SectionDraft(BaseModel):
    """A section writer's reply: short factual sentences, each citing the numbered evidence it rests on.
    No claims at all is an honest answer when the evidence says nothing on the section's purpose."""

    claims: list[AnswerClaim] = Field(default_factory=list, max_length=16)


class SectionTask(TypedDict):
    """What the report node sends to one parallel `section` branch."""

    section: Section
    question: str
    evidence: list[Evidence]  # what this section may cite, best first, within the writer's budget
    claims: int  # about how many sentences the section should have
    other_headings: list[str]
