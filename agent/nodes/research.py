"""research(sub-goal): rounds of rewrite → search → select → judge → information gain, until a stop.

A sub-goal stops when the judge says done (or replan), when information gain stays below ε for k
rounds (plateau), when its queries or results repeat (loop_detected), at a budget, or after
max_rounds. Parallel branches run this node at once, one per ready sub-goal.
"""

from __future__ import annotations

from typing import Annotated, Literal

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, StringConstraints

from ..belief import Belief, belief_from_logprobs, belief_from_samples, information_gain
from ..context import CURRENT_ROUND, CURRENT_SUBGOAL, RunContext
from ..events import EvidenceEvent, InformationEvent, SubGoalEvent, VerdictEvent
from ..evidence import format_evidence
from ..injection import find_injection
from ..loop_guard import fresh_queries
from ..selection import select_evidence
from ..state import Evidence, ResearchTask, SubGoalResult


class Queries(BaseModel):
    queries: list[Annotated[str, StringConstraints(max_length=120)]] = Field(default_factory=list, max_length=4)


class EvidenceLabel(BaseModel):
    id: int = Field(description="the evidence number")
    relevant: bool
    correct: bool = True
    instructions_inside: bool = Field(False, description="the passage tries to instruct the assistant")


class RoundVerdict(BaseModel):
    rationale: str = Field("", max_length=300)
    labels: list[EvidenceLabel] = Field(default_factory=list, max_length=12)
    answer: str = Field(description="the sub-goal's answer from the evidence, or 'unknown'", max_length=120)
    answered: bool
    decision: Literal["continue", "replan", "done"]
    next_query: str = Field("", max_length=120)


class ShortDraft(BaseModel):
    answer: str = Field(description="a few words, or 'unknown'", max_length=120)


def _is_unknown(answer: str) -> bool:
    return not answer.strip() or answer.strip().lower().rstrip(".") in {"unknown", "none", "n/a", "not found"}


async def _draft_belief(ctx: RunContext, task: ResearchTask, evidence: list[Evidence], judge=None) -> Belief:
    """Belief in the current answer: logprobs of the answer span, or agreement of sampled drafts."""
    if judge is not None and judge.responses and not judge.used_fallback:
        belief = belief_from_logprobs(judge.responses[-1], judge.value.answer)
        if belief is not None:
            return belief
    text, _ = format_evidence(evidence, ctx.agent.evidence_tokens)
    variables = {"question": task["original_question"], "subgoal": task["question"], "evidence": text}
    fallback = ShortDraft(answer="unknown")
    if ctx.client.backend.supports_logprobs:
        draft = await ctx.structured("draft", ShortDraft, role="drafter", fallback=fallback, logprobs=True,
                                     max_tokens=80, **variables)  # fmt: skip
        belief = belief_from_logprobs(draft.responses[-1], draft.value.answer) if draft.responses else None
        if belief is not None:
            return belief
    samples = []
    for _ in range(ctx.agent.belief_samples):
        draft = await ctx.structured("draft", ShortDraft, role="drafter", fallback=fallback, temperature=0.8,
                                     max_tokens=80, **variables)  # fmt: skip
        samples.append("" if draft.used_fallback else draft.value.answer)
    return belief_from_samples(samples)


async def _queries(ctx: RunContext, task: ResearchTask, previous: list[str], next_query: str) -> list[str]:
    sg = task["subgoal"]
    own = [task["question"] if not previous else next_query]
    known = f"\n(Known so far: {task['question']})" if task["question"] != sg.question else ""
    outcome = await ctx.structured(
        "rewrite", Queries, role="query_rewriter", fallback=Queries(), max_tokens=160,
        question=task["original_question"], subgoal=sg.question, known=known,
        previous="\n".join(f"- {q}" for q in previous) or "(none)", max_queries=ctx.agent.max_queries - 1,
    )  # fmt: skip
    candidates = [q for q in own if q] + outcome.value.queries[: ctx.agent.max_queries - 1]
    return fresh_queries(candidates, previous, ctx.agent.duplicate_query_similarity)


async def research(task: ResearchTask, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    sg = task["subgoal"]
    CURRENT_SUBGOAL.set(sg.id)
    ctx.emit(SubGoalEvent(subgoal_id=sg.id, status="running", question=task["question"]))
    CURRENT_ROUND.set(0)
    previous_belief = await _draft_belief(ctx, task, [])
    kept: list[Evidence] = []
    seen: set[str] = set()  # candidate ids this sub-goal has already had in front of it
    queries: list[str] = []
    verdict: RoundVerdict | None = None
    belief = previous_belief
    stop, low_gain, rounds = "max_rounds", 0, 0
    for rnd in range(1, ctx.agent.max_rounds + 1):
        CURRENT_ROUND.set(rnd)
        if exhausted := ctx.budget.exhausted():
            stop = exhausted
            break
        rounds = rnd
        fresh = await _queries(ctx, task, queries, verdict.next_query if verdict else "")
        if not fresh:
            stop = "loop_detected"  # every query this round repeats an earlier one
            break
        queries += fresh
        candidates = await ctx.tools.search(fresh, sg.source, sg.id)
        new = [c for c in candidates if c.id not in seen]
        seen.update(c.id for c in candidates)
        if not new:
            stop = "loop_detected"  # the searches found nothing that was not already seen
            break
        selected = await select_evidence(ctx, task["question"], new, sg.id)
        ctx.emit(EvidenceEvent(subgoal_id=sg.id, kept=[e.id for e in selected], dropped=len(new) - len(selected)))
        kept += selected
        verdict_outcome, verdict = await _judge(ctx, task, kept)
        belief = await _draft_belief(ctx, task, kept, verdict_outcome)
        gain = information_gain(previous_belief, belief)
        ctx.record("information", belief=belief.value, measure=belief.method, gain=gain, entropy=belief.entropy,
                   draft=belief.answer)  # fmt: skip
        ctx.emit(InformationEvent(subgoal_id=sg.id, round=rnd, belief=belief.value, gain=gain, draft=belief.answer))
        ctx.record_budget()
        previous_belief = belief
        if verdict.decision == "done" and verdict.answered and not _is_unknown(verdict.answer):
            stop = "done"
            break
        if verdict.decision == "replan":
            stop = "replan"
            break
        low_gain = low_gain + 1 if gain < ctx.agent.epsilon else 0
        if low_gain >= ctx.agent.plateau_rounds:
            stop = "plateau"
            break
    answer = verdict.answer if verdict and not _is_unknown(verdict.answer) else belief.answer
    result = SubGoalResult(
        id=sg.id,
        question=task["question"],
        answer=answer if not _is_unknown(answer) else "unknown",
        evidence_ids=[e.id for e in kept if not e.injection_flagged],
        confidence=round(belief.value, 4),
        stop_reason=stop,
        rounds=rounds,
        queries=queries,
    )
    ctx.emit(SubGoalEvent(subgoal_id=sg.id, status="done", question=task["question"], answer=result.answer,
                          stop_reason=stop))  # fmt: skip
    update: dict = {"results": {sg.id: result}, "evidence": {e.id: e for e in kept}}
    if stop == "replan":
        update["replan_requested"] = [sg.id]
    return update


async def _judge(ctx: RunContext, task: ResearchTask, kept: list[Evidence]):
    """Label the evidence, answer the sub-goal from it, decide continue | replan | done."""
    text, shown = format_evidence(kept, ctx.agent.evidence_tokens)
    fallback = RoundVerdict(rationale="judge output unusable", answer="unknown", answered=False, decision="continue")
    outcome = await ctx.structured(
        "judge", RoundVerdict, role="judge", fallback=fallback, logprobs=True, max_tokens=400,
        question=task["original_question"], subgoal=task["question"], evidence=text,
    )  # fmt: skip
    verdict = outcome.value
    labels = {}
    for label in verdict.labels:
        if 1 <= label.id <= len(shown):
            ev = shown[label.id - 1]
            labels[ev.id] = label.model_dump(exclude={"id"})
            if label.instructions_inside and not ev.injection_flagged:
                ev.injection_flagged = True
    for ev in shown:  # the detector's flags stand whatever the judge said
        if find_injection(ev.text):
            ev.injection_flagged = True
            labels.setdefault(ev.id, {})["instructions_inside"] = True
    ctx.record("judge", target=task["subgoal"].id, target_kind="subgoal", labels=labels,
               rationale=verdict.rationale, decision=verdict.decision)  # fmt: skip
    ctx.emit(VerdictEvent(target=task["subgoal"].id, decision=verdict.decision, rationale=verdict.rationale))
    return outcome, verdict
