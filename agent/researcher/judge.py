"""judge: label the round's evidence, answer the sub-goal from it, decide; then measure belief and gain.

Belief is measured by one instrument every round: the token probability of the judge's answer span
(the answer is the first field, written before any justification), or, on a backend without logprobs,
the agreement of sampled short drafts over the same evidence (distinct seeds). Before the first round
the belief is 0 ("unknown"): there is no separate prior call whose prompt would differ from the judge's.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from .. import evidence_choice
from ..belief import Belief, belief_from_logprobs, belief_from_samples, information_gain, is_unknown, no_belief
from ..context import RunContext
from ..events import BudgetEvent, InformationEvent, VerdictEvent
from ..evidence import format_evidence
from ..injection import find_injection
from ..llm import StructuredOutcome
from ..state import Evidence
from .state import BestAnswer, RoundState, RoundVerdict, ShortDraft
from .steps import enter

UNUSABLE = RoundVerdict(answer="unknown", answered=False, decision="continue", rationale="judge output unusable")


def shown_evidence(kept: list[Evidence], rnd: int, budget: int) -> tuple[str, list[Evidence]]:
    return format_evidence(evidence_choice.for_judge(kept, rnd, budget))


async def _sampled_belief(ctx: RunContext, answer: str, variables: dict) -> Belief:
    """How many short drafts over the judge's evidence, each sampled with its own seed, agree with `answer`."""
    base = ctx.settings.llm.seed or 0
    samples = []
    for i in range(ctx.agent.belief_samples):
        draft = await ctx.structured("draft", ShortDraft, role="drafter", fallback=ShortDraft(answer="unknown"),
                                     temperature=0.8, max_tokens=80, seed=base + 1 + i, **variables)  # fmt: skip
        samples.append("unknown" if draft.used_fallback else draft.value.answer)
    return belief_from_samples(samples, answer)


async def _belief(ctx: RunContext, outcome: StructuredOutcome, verdict: RoundVerdict, variables: dict) -> Belief:
    answered = verdict.answered and not is_unknown(verdict.answer)
    if not answered:
        return no_belief(verdict.answer, "unknown")
    if outcome.responses and not outcome.used_fallback:
        belief = belief_from_logprobs(outcome.responses[-1], verdict.answer)
        if belief is not None:
            return belief
    return await _sampled_belief(ctx, verdict.answer, variables)


def _labels(verdict: RoundVerdict, shown: list[Evidence]) -> dict:
    labels = {}
    for label in verdict.labels:
        if 1 <= label.id <= len(shown):
            ev = shown[label.id - 1]
            labels[ev.id] = label.model_dump(exclude={"id"})
            if label.instructions_inside:
                ev.injection_flagged = True
    for ev in shown:  # the detector's flags stand whatever the judge said
        if find_injection(ev.text):
            ev.injection_flagged = True
            labels.setdefault(ev.id, {})["instructions_inside"] = True
    return labels


async def judge(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    rnd = enter(ctx, state, "judge")
    sg = state["subgoal"]
    kept = [e.model_copy() for e in state.get("kept") or []]
    text, shown = shown_evidence(kept, rnd, ctx.agent.evidence_tokens)
    variables = {"question": state["original_question"], "subgoal": state["question"], "evidence": text}
    outcome = await ctx.structured("judge", RoundVerdict, role="judge", fallback=UNUSABLE, logprobs=True,
                                   max_tokens=400, **variables)  # fmt: skip
    verdict = outcome.value
    labels = _labels(verdict, shown)
    flagged = {e.id for e in shown if e.injection_flagged}
    kept = [e.model_copy(update={"injection_flagged": True}) if e.id in flagged else e for e in kept]
    ctx.record("judge", target=sg.id, target_kind="subgoal", labels=labels, rationale=verdict.rationale,
               decision=verdict.decision)  # fmt: skip
    ctx.emit(VerdictEvent(target=sg.id, decision=verdict.decision, rationale=verdict.rationale))

    previous = state.get("belief") or no_belief()
    belief = no_belief() if outcome.error else await _belief(ctx, outcome, verdict, variables)
    gain = information_gain(previous, belief)
    ctx.record("information", belief=belief.value, measure=belief.method, gain=gain, entropy=belief.entropy,
               draft=belief.answer)  # fmt: skip
    ctx.emit(InformationEvent(subgoal_id=sg.id, round=rnd, belief=belief.value, gain=gain, draft=belief.answer))
    ctx.record_budget()
    ctx.emit(BudgetEvent(used=ctx.budget.snapshot()))

    best = state.get("best")
    if belief.value > 0 and (best is None or belief.value >= best.belief):
        best = BestAnswer(answer=verdict.answer.strip(), belief=round(belief.value, 4), round=rnd)
    return {"kept": kept, "verdict": verdict, "belief": belief, "best": best, "gain": gain,
            "stop": outcome.error}  # fmt: skip
