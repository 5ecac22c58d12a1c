"""The event log: one JSON object per line, appended as the run goes, folded into a Trajectory.

A line is written whole with a single write() and never rewritten, so a run killed at any moment
leaves a log whose complete lines are valid events (at worst followed by one torn line, which readers
drop). Later facts about an earlier step (e.g. the parsed value of an LLM call) are new `annotate`
events, not edits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from .schema import SCHEMA_VERSION, Content, DagChange, Final, Header, Model, ParseIssue, Step


class EventBase(Model):
    seq: int = Field(description="0, 1, 2, … without gaps")


class StartEvent(EventBase):
    ev: Literal["start"] = "start"
    schema_version: int = SCHEMA_VERSION
    trace_id: str
    created: datetime
    header: Header


class StepEvent(EventBase):
    ev: Literal["step"] = "step"
    step: Step


class AnnotateEvent(EventBase):
    """The outcome of a structured request, attached to one of its LLM calls."""

    ev: Literal["annotate"] = "annotate"
    step_index: int
    status: Literal["ok", "repaired", "retried", "fallback"]
    accepted: bool
    retry_of: int | None = None
    parsed: Any = None
    parse_failures: list[ParseIssue] = Field(default_factory=list)


class ContentEvent(EventBase):
    ev: Literal["content"] = "content"
    content: Content


class DagEvent(EventBase):
    ev: Literal["dag"] = "dag"
    change: DagChange


class ResolvedEvent(EventBase):
    ev: Literal["resolved"] = "resolved"
    question: str


class FinishEvent(EventBase):
    ev: Literal["finish"] = "finish"
    ended: datetime
    final: Final


Event = Annotated[
    StartEvent | StepEvent | AnnotateEvent | ContentEvent | DagEvent | ResolvedEvent | FinishEvent,
    Field(discriminator="ev"),
]
