"""What a written report returns beside its Markdown (AskResult.report): each section's outcome and the
report's figures. No import of the graph state here: agent/result.py uses these models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RemovedClaim(BaseModel):
    text: str
    citations: list[str] = Field(description="evidence ids it cited")
    reason: str


class WrittenClaim(BaseModel):
    text: str
    citations: list[str] = Field(description="evidence ids it cites")
    verified: bool = Field(True, description="the verifier (or the quote check) accepted it; False: verify is off")


SectionStatus = Literal["written", "empty", "failed"]


class SectionResult(BaseModel):
    id: str
    status: SectionStatus
    claims: list[WrittenClaim] = Field(default_factory=list)
    removed: list[RemovedClaim] = Field(default_factory=list)
    revised: bool = False
    note: str = Field("", description="why a section is empty or failed")


class ReportInfo(BaseModel):
    """The report's figures beside its Markdown (the run's `answer`; `ask --json`'s `report`)."""

    title: str
    sections: list[SectionResult]
    cited_sentences: int = Field(description="sentences in the report that cite a source")
    verified_sentences: int = Field(description="of those, the ones the verifier accepted (all, after removal)")
    removed_sentences: int = Field(description="drafted sentences removed as unsupported or duplicate")
    sources: int
    checks: list[str] = Field(default_factory=list, description="what the report-level checks found and fixed")

    @property
    def verified_share(self) -> float:
        return self.verified_sentences / self.cited_sentences if self.cited_sentences else 0.0
