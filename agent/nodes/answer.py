"""answer: synthesise from the collected evidence only, as claims citing numbered evidence [n]."""

from __future__ import annotations

from langgraph.runtime import Runtime

from .. import evidence_choice
from ..context import RunContext
from ..events import NodeEvent
from ..evidence import format_evidence
from ..state import AnswerClaim, DraftAnswer, Evidence, ResearchState
from .plan import reading_line

# What verify abstains on (built without validation: a real draft needs at least one claim).
NO_ANSWER = DraftAnswer.model_construct(short_answer="", claims=[])


def evidence_by_subgoal(state: ResearchState) -> list[list[Evidence]]:
    """Each sub-goal's kept evidence (flagged passages excluded), in plan order."""
    evidence = state.get("evidence") or {}
    return [
        [evidence[i] for i in r.evidence_ids if i in evidence and not evidence[i].injection_flagged]
        for r in (state.get("results") or {}).values()
    ]


def answer_evidence(state: ResearchState, budget: int) -> list[Evidence]:
    """What the answerer sees: every sub-goal's best evidence within its share of the budget (evidence_choice)."""
    return evidence_choice.for_answer(evidence_by_subgoal(state), budget)


def _findings(state: ResearchState) -> str:
    question = state["standalone_question"]
    lines = [f"- {'(the question)' if r.question == question else r.question} → {r.answer}"
             for r in (state.get("results") or {}).values()]  # fmt: skip
    return "\n".join(lines) or "(none)"


def _feedback(state: ResearchState) -> str:
    feedback = state.get("revision_feedback")
    if not feedback:
        return ""
    kept = state.get("kept_claims") or []
    keep = "".join(f"- {c.text}\n" for c in kept)
    keep = f"\nThese claims were verified and are kept; do not repeat them:\n{keep}" if keep else ""
    return f"\n# Reviewer feedback on your previous answer\n{feedback}\n{keep}"


def keep_valid_citations(draft: DraftAnswer, valid: set[int]) -> DraftAnswer:
    """Never let a citation number through that does not map to shown evidence."""
    claims, seen = [], set()
    for c in draft.claims:
        key = " ".join(c.text.lower().split())
        if key and key not in seen:  # small models repeat a claim; check and show it once
            seen.add(key)
            cited = sorted({n for n in c.citations if n in valid})
            claims.append(AnswerClaim.model_construct(text=c.text.strip(), citations=cited))
    return draft.model_copy(update={"claims": claims})


async def answer(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="answer", phase="started"))
    items = answer_evidence(state, ctx.agent.answer_evidence_tokens)
    if not items:
        ctx.emit(NodeEvent(node="answer", phase="finished"))
        return {"draft": NO_ANSWER, "citation_map": {}}
    # The evidence block comes right after the question and stays the same across revisions (the same
    # choice, the same numbers): a stable prefix for vLLM's prefix cache, and kept claims' citations hold.
    text, shown = format_evidence(items)
    feedback = state.get("revision_feedback")
    outcome = await ctx.structured(
        "answer", DraftAnswer, role="answerer" if not feedback else "reviser",
        fallback=NO_ANSWER, max_tokens=500,
        question=state["standalone_question"], reading=reading_line(state.get("assumption")), evidence=text,
        findings=_findings(state), feedback=_feedback(state),
    )  # fmt: skip
    citation_map = {n: ev.id for n, ev in enumerate(shown, 1)}
    draft = keep_valid_citations(outcome.value, set(citation_map))
    ctx.emit(NodeEvent(node="answer", phase="finished"))
    return {"draft": draft, "citation_map": citation_map, "answer_error": outcome.error}
