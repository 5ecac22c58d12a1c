"""What a run returns: the `ask --json` object, the Python API's return value, a batch output row."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .report.info import ReportInfo


class Citation(BaseModel):
    n: int = Field(description="the [n] used in the answer")
    evidence_id: str
    source: str = Field(description="URL or local path of the document")
    quote: str = Field(description="the evidence passage the claim rests on")


class RunUsage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    seconds: float = 0.0


class AskResult(BaseModel):
    question: str
    answer: str
    short_answer: str = Field("", description="the answer in a few words (what EM/F1 scoring reads)")
    mode: Literal["closed_book", "research"]
    citations: list[Citation] = Field(default_factory=list)
    subgoals: list[dict] = Field(default_factory=list)
    termination: str
    usage: RunUsage
    backend: str
    model: str
    trace_id: str | None = None
    assumption: str | None = Field(None, description="how an ambiguous question was read")
    notes: list[str] = Field(default_factory=list, description="e.g. web search unavailable: answered locally")
    report: ReportInfo | None = Field(None, description="ask --report: the report's sections and figures")
