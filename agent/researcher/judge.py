"""judge: one call a round — answer the sub-goal from the evidence, decide, write the next searches, and
(selection = judge) grade and quote the round's new passages, which chooses the round's evidence; then
measure belief and gain.

Belief is measured by one instrument every round: the token probability of the judge's answer span
(the answer is the first field, written before any justification), or, on a backend without logprobs,
the agreement of sampled short drafts over the same evidence (distinct seeds). Before the first round
the belief is 0 ("unknown"): there is no separate prior call whose prompt would differ from the judge's.
"""

from __future__ import annotations

from deepsearch.tools.rerank.models import Candidate
from langgraph.runtime import Runtime

from .. import evidence_choice
from ..belief import Belief, belief_from_logprobs, belief_from_samples, information_gain, is_unknown, no_belief
from ..context import RunContext
from ..events import BudgetEvent, EvidenceEvent, InformationEvent, VerdictEvent
from ..evidence import format_evidence
from ..llm import StructuredOutcome
from ..selection import fused_order, graded_evidence, passage_section, record_round
from ..state import Evidence
from .state import BestAnswer, RoundState, RoundVerdict, ShortDraft
from .steps import enter

UNUSABLE = RoundVerdict(answer="unknown", answered=False, decision="continue", rationale="judge output unusable")


async def _sampled_belief(ctx: RunContext, answer: str, variables: dict) -> Belief:
    """How many short drafts over the judge's evidence, each sampled with its own seed, agree with `answer`."""
    base = ctx.settings.llm.seed or 0
    shown = {k: variables[k] for k in ("question", "subgoal")}
    shown["evidence"] = "\n\n".join(v for v in (variables["evidence"], variables["passages"]) if v != "(none)")
    samples = []
    for i in range(ctx.agent.belief_samples):
        draft = await ctx.structured("draft", ShortDraft, role="drafter", fallback=ShortDraft(answer="unknown"),
                                     temperature=0.8, max_tokens=80, seed=base + 1 + i, **shown)  # fmt: skip
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


def _flag(verdict: RoundVerdict, shown: list[Evidence], chosen: dict[str, Evidence]) -> set[str]:
    """Evidence ids carrying instructions: what the judge named suspicious, and what the detector flagged
    when the evidence was made (selection._evidence runs it on every passage)."""
    flagged = set()
    for raw in verdict.suspicious:
        key = raw.strip().upper()
        if key.isdigit() and 1 <= int(key) <= len(shown):
            flagged.add(shown[int(key) - 1].id)
        elif key in chosen:
            flagged.add(chosen[key].id)
    return flagged | {e.id for e in [*shown, *chosen.values()] if e.injection_flagged}


def _round_evidence(ctx: RunContext, state: RoundState, verdict: RoundVerdict, unusable: bool,
                    aliases: dict[str, Candidate]) -> dict[str, Evidence]:  # fmt: skip
    """The new passages the round keeps, by alias: the judge's grades and quotes, or fused order when it
    graded none (an unusable reply, or a weak model's empty list), as when a reranker's replies are unusable."""
    sg, new = state["subgoal"], list(aliases.values())
    if {g.id.strip().upper() for g in verdict.passages} & set(aliases):
        chosen, decisions = graded_evidence(verdict.passages, aliases, sg.id, ctx.settings.rerank,
                                            ctx.agent.keep_grade, ctx.agent.evidence_tokens)  # fmt: skip
        method = f"judge grades (kept at {ctx.agent.keep_grade}+ of 10, quotes checked in the source)"
    else:
        fused, decisions = fused_order(new, sg.id, ctx.agent.evidence_tokens)
        chosen = dict(zip(aliases, fused, strict=False))
        why = "unusable" if unusable else "graded none of the passages"
        method = f"fusion order within token budget (the judge's reply {why})"
    record_round(ctx, state["question"], decisions, {c.id: c for c in new}, method, cutoff=None)
    ctx.emit(EvidenceEvent(subgoal_id=sg.id, kept=[e.id for e in chosen.values()], dropped=len(new) - len(chosen)))
    return chosen


async def judge(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    rnd = enter(ctx, state, "judge")
    sg = state["subgoal"]
    kept = list(state.get("kept") or [])
    evidence, shown = format_evidence(evidence_choice.for_judge(kept, rnd, ctx.agent.evidence_tokens))
    new = state.get("candidates") or []  # selection = judge: the round's pool; otherwise select took them
    passages, aliases = passage_section(new, ctx.agent.passage_chars, state["question"])
    previous = state.get("queries") or []
    # A sub-goal that is the question itself is not written out twice.
    subgoal = "(the question itself)" if state["question"] == state["original_question"] else state["question"]
    variables = {"question": state["original_question"], "subgoal": subgoal, "evidence": evidence,
                 "passages": passages, "previous": "\n".join(f"- {q}" for q in previous) or "(none)",
                 "max_queries": ctx.agent.max_queries}  # fmt: skip
    outcome = await ctx.structured("judge", RoundVerdict, role="judge", fallback=UNUSABLE, logprobs=True,
                                   max_tokens=600, **variables)  # fmt: skip
    verdict = outcome.value

    chosen = _round_evidence(ctx, state, verdict, outcome.used_fallback, aliases) if new else {}
    flagged = _flag(verdict, shown, chosen)
    known = {e.id for e in kept}
    kept += [e.model_copy(update={"round": rnd}) for e in chosen.values() if e.id not in known]
    kept = [e.model_copy(update={"injection_flagged": True}) if e.id in flagged else e for e in kept]
    ctx.record("judge", target=sg.id, target_kind="subgoal", labels={i: {"instructions_inside": True} for i in flagged},
               rationale=verdict.rationale, decision=verdict.decision)  # fmt: skip
    ctx.emit(VerdictEvent(target=sg.id, decision=verdict.decision, rationale=verdict.rationale))

    prior = state.get("belief") or no_belief()
    belief = no_belief() if outcome.error else await _belief(ctx, outcome, verdict, variables)
    gain = information_gain(prior, belief)
    ctx.record("information", belief=belief.value, measure=belief.method, gain=gain, entropy=belief.entropy,
               draft=belief.answer)  # fmt: skip
    ctx.emit(InformationEvent(subgoal_id=sg.id, round=rnd, belief=belief.value, gain=gain, draft=belief.answer))
    ctx.record_budget()
    ctx.emit(BudgetEvent(used=ctx.budget.snapshot()))

    best = state.get("best")
    if belief.value > 0 and (best is None or belief.value >= best.belief):
        best = BestAnswer(answer=verdict.answer.strip(), belief=round(belief.value, 4), round=rnd)
    return {"kept": kept, "candidates": [], "verdict": verdict, "belief": belief, "best": best, "gain": gain,
            "stop": outcome.error}  # fmt: skip
