"""The trajectory schema: one run of the agent, rebuilt from its event log (see events.py).

Steps are a tagged union on `kind`. Page texts live once in `contents` (keyed by hash) and tool
results point at them, so a page read by three sub-goals is stored once. The JSON Schema of these
models is committed as traces/schema.json (`python -m deepsearch.traces.schema_file`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from deepsearch.agent.result import Citation, RunUsage
from deepsearch.tools.snapshots import RecordedRef
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Role = str  # planner, query_rewriter, reranker, judge, answerer, verifier, … (open set: new nodes add roles)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceMessage(Model):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ParseIssue(Model):
    """One failure or repair while turning raw model output into the expected structure."""

    attempt: int
    kind: Literal["no_json", "invalid_json", "schema", "repaired"]
    detail: str
    raw_excerpt: str = ""


class StepBase(Model):
    index: int = Field(description="position in the run, 0-based; steps, DAG changes and annotations refer to it")
    at_s: float = Field(description="seconds since the run started")
    subgoal: str | None = Field(None, description="the sub-goal this step worked for, if any")
    round: int | None = Field(None, description="the research round, if any")


class LLMCallStep(StepBase):
    kind: Literal["llm_call"] = "llm_call"
    role: Role
    messages: list[TraceMessage]
    raw_output: str | None = Field(None, description="content exactly as the backend returned it")
    output: str | None = Field(None, description="content with <think> blocks removed")
    reasoning: str | None = None
    parsed: Any = Field(None, description="the structured value accepted from this call")
    status: Literal["ok", "repaired", "retried", "fallback"] | None = Field(
        None, description="how the structured output was obtained (set on the calls of one structured request)"
    )
    accepted: bool | None = Field(None, description="this call's output was used; None = not a structured call")
    parse_failures: list[ParseIssue] = Field(default_factory=list)
    retry_of: int | None = Field(None, description="step index of the first attempt when this call is a parse retry")
    supersedes: int | None = Field(
        None, description="step index of an earlier output of the same role this one replaces (e.g. a rejected draft)"
    )
    error: str | None = Field(None, description="the backend failed: no output")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    retries: int = 0
    sampling: dict[str, Any] = Field(default_factory=dict)
    schema_name: str | None = None
    logprobs: dict[str, float] | None = Field(None, description="tokens, mean_logprob, mean_entropy")
    finish_reason: str | None = None
    backend: str = ""
    model: str = ""


class ResultItem(Model):
    """One result of a tool, summarised: page texts are in the trajectory's content table."""

    id: str | None = None
    url: str | None = None
    title: str | None = None
    snippet: str | None = None
    score: float | None = None
    content_hash: str | None = Field(None, description="key into Trajectory.contents")


class ToolCallStep(StepBase):
    kind: Literal["tool_call"] = "tool_call"
    tool: str
    arguments: dict[str, Any]
    success: bool
    error: str | None = None
    latency_s: float = 0.0
    results: list[ResultItem] = Field(default_factory=list)
    recorded: RecordedRef | None = Field(None, description="web tools: the outcome's object in the snapshot store")


class RerankCandidate(Model):
    id: str
    score: float
    rationale: str = ""
    kept: bool
    reason: str = Field("", description="why it was kept or dropped: above cutoff, neighbour, duplicate, …")
    text_hash: str | None = Field(None, description="key into Trajectory.contents: the passage as the model saw it")
    title: str | None = None
    source: str | None = Field(None, description="URL or local path of the passage's document")
    evidence_id: str | None = Field(None, description="the evidence this passage became, when kept")


class RerankStep(StepBase):
    kind: Literal["rerank"] = "rerank"
    query: str
    candidates: list[RerankCandidate]
    cutoff: float | None = Field(None, description="score at or above which candidates were kept")
    method: str = Field("", description="how the cutoff was chosen, e.g. elbow")
    cut_index: int | None = Field(None, description="how many ranked candidates the cut kept")
    curve: list[float] = Field(default_factory=list, description="the sorted scores the cut was chosen on")
    notes: list[str] = Field(default_factory=list, description="fallbacks, parse failures and repairs, in order")


class JudgeStep(StepBase):
    kind: Literal["judge"] = "judge"
    target: str = Field(description="what was judged: a sub-goal id, a claim, an evidence id")
    target_kind: Literal["subgoal", "claim", "evidence", "answer"] = "subgoal"
    labels: dict[str, Any] = Field(default_factory=dict, description="verdict labels, e.g. correct, useful")
    rationale: str = ""
    decision: str = Field("", description="continue, replan, done, revise, accept, abstain, …")


class InformationStep(StepBase):
    kind: Literal["information"] = "information"
    belief: float = Field(description="belief in the current draft answer (e.g. mean log-probability or agreement)")
    measure: str = Field("", description="how belief was measured: logprob, agreement, …")
    gain: float = Field(description="change in belief since the previous round")
    entropy: float | None = None
    draft: str | None = None


class BudgetStep(StepBase):
    kind: Literal["budget"] = "budget"
    used: dict[str, float] = Field(description="counters after the round: llm_calls, tokens, searches, seconds, …")
    limits: dict[str, float] = Field(default_factory=dict)


class ReportStep(StepBase):
    """A report run's outline, each section's outcome, and the report-level checks (see docs/reports.md)."""

    kind: Literal["report"] = "report"
    stage: Literal["outline", "section", "checks"]
    section: str | None = Field(None, description="the section's id (stage section)")
    title: str | None = Field(None, description="the report's title (stage outline)")
    outline: list[dict[str, Any]] = Field(default_factory=list, description="id, heading, purpose, subgoal_ids")
    status: str | None = Field(None, description="written, empty or failed (stage section)")
    claims: list[dict[str, Any]] = Field(default_factory=list, description="sentences kept: text, evidence ids")
    removed: list[dict[str, Any]] = Field(
        default_factory=list, description="sentences removed: text, evidence ids, reason (unsupported, duplicate, …)"
    )
    notes: list[str] = Field(default_factory=list, description="what a check found, why a section is empty")


Step = Annotated[
    LLMCallStep | ToolCallStep | RerankStep | JudgeStep | InformationStep | BudgetStep | ReportStep,
    Field(discriminator="kind"),
]
STEP_KINDS = ("llm_call", "tool_call", "rerank", "judge", "information", "budget", "report")


class SubGoal(Model):
    id: str
    question: str
    depends_on: list[str] = Field(default_factory=list)
    source: Literal["local", "web", "both"] = "both"
    status: Literal["pending", "done", "dropped"] = "pending"
    answer: str | None = None


class DagChange(Model):
    action: Literal["added", "changed", "dropped"]
    subgoal: SubGoal
    reason: str
    caused_by: int | None = Field(None, description="index of the step that caused the change")
    at_s: float = 0.0


class Content(Model):
    hash: str
    text: str
    url: str | None = None


class ModelUse(Model):
    role: str = Field("*", description="the role this model serves; * = every role")
    backend: str
    model: str


class ToolSpec(Model):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict, description="JSON Schema of the arguments")


class Scores(Model):
    em: float | None = None
    f1: float | None = None
    judge: Literal["correct", "incorrect"] | None = None


class Final(Model):
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    termination: str = Field(description="answered, plateau, budget_<kind>, loop_detected, abstained, error_<kind>")
    error: str | None = None
    usage: RunUsage = Field(default_factory=RunUsage)
    gold: list[str] | None = None
    scores: Scores | None = None


class Header(Model):
    """What is known when a run starts."""

    question: str
    mode: str = Field("research", description="closed_book or research")
    config: dict[str, Any] = Field(default_factory=dict, description="effective settings, secrets removed")
    models: list[ModelUse] = Field(default_factory=list)
    prompts: dict[str, str] = Field(default_factory=dict, description="prompt name -> hash of its template file")
    tools: list[ToolSpec] = Field(default_factory=list)
    local_roots: dict[str, list[str]] = Field(
        default_factory=dict, description="local index name -> the folders its files lie under (exports: relative)"
    )
    gold: list[str] | None = None
    meta: dict[str, Any] = Field(default_factory=dict, description="caller's extras, e.g. batch item id")


class Trajectory(Header):
    schema_version: int = SCHEMA_VERSION
    id: str
    created: datetime
    ended: datetime | None = None
    status: Literal["complete", "incomplete"]
    resolved_question: str | None = None
    dag: list[SubGoal] = Field(default_factory=list, description="the sub-goals as they stood at the end")
    dag_changes: list[DagChange] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    contents: dict[str, Content] = Field(default_factory=dict)
    final: Final | None = None

    def llm_calls(self) -> list[LLMCallStep]:
        return [s for s in self.steps if isinstance(s, LLMCallStep)]

    def tool_calls(self) -> list[ToolCallStep]:
        return [s for s in self.steps if isinstance(s, ToolCallStep)]

    @property
    def tokens(self) -> int:
        return sum(s.prompt_tokens + s.completion_tokens for s in self.llm_calls())

    @property
    def info_gain(self) -> float:
        return sum(s.gain for s in self.steps if isinstance(s, InformationStep))

    @property
    def correct(self) -> bool | None:
        """Gold match (EM = 1) or a judge verdict; None when nothing says."""
        scores = self.final.scores if self.final else None
        if scores is None or (scores.em is None and scores.judge is None):
            return None
        return (scores.em is not None and scores.em >= 1.0) or scores.judge == "correct"
