"""verify: every claim must be supported by the evidence it cites; one revision, then removal or abstention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from ..belief import normalise_answer
from ..claim_check import check_claims
from ..context import RunContext
from ..events import NodeEvent, VerdictEvent
from ..result import Citation
from ..state import AnswerClaim, ResearchState
from ..stopping import run_termination
from ..tokens import truncate_to_tokens
from .abstention import best_passages

QUOTE_TOKENS = 300  # of each cited passage in the final answer's citations


def research_termination(state: ResearchState) -> str:
    """Why research ended, as the run's termination when the answer stands."""
    stops = [r.stop_reason for r in (state.get("results") or {}).values()]
    return run_termination(state.get("research_stop"), stops)


def _abstain(state: ResearchState) -> dict:
    """Say that no answer could be verified and show the best passages kept, never unverified guesses."""
    passages = best_passages(state)
    text = "I could not verify an answer to this question."
    if passages:
        text += " The most relevant passages I found:\n" + "\n".join(
            f"- {p.title or p.source} ({p.source}): {p.sentence}" for p in passages
        )
    return {
        "answer": text, "short_answer": "", "citations": [],
        "termination": state.get("answer_error") or "abstained",
    }  # fmt: skip


def short_answer_supported(short: str, claims: list[AnswerClaim], cited: Callable[[AnswerClaim], str]) -> bool:
    """The short answer (what batch and eval score) must appear in a supported claim or in what it cites."""
    target = normalise_answer(short)
    if not target:
        return False
    for c in claims:
        for text in (c.text, cited(c)):
            if f" {target} " in f" {normalise_answer(text)} ":
                return True
    return False


def _finish(state: ResearchState, claims: list[AnswerClaim]) -> dict:
    """Answer text with citations renumbered 1..m in order of first use; each maps to stored evidence."""
    cmap, evidence = state["citation_map"], state["evidence"]
    renumber: dict[int, int] = {}
    parts = []
    for claim in claims:
        marks = []
        for n in claim.citations:
            renumber.setdefault(n, len(renumber) + 1)
            marks.append(f"[{renumber[n]}]")
        parts.append(f"{claim.text.rstrip()} {''.join(marks)}".strip())
    citations = [
        Citation(n=new, evidence_id=cmap[old], source=evidence[cmap[old]].source,
                 quote=truncate_to_tokens(evidence[cmap[old]].text, QUOTE_TOKENS))
        for old, new in renumber.items()
    ]  # fmt: skip
    draft = state["draft"]
    return {
        "answer": " ".join(parts),
        "short_answer": draft.short_answer.strip() if draft else "",
        "citations": citations,
        "termination": research_termination(state),
    }


async def verify(state: ResearchState, runtime: Runtime[RunContext]) -> Command[Literal["answer", "__end__"]]:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="verify", phase="started"))
    draft = state.get("draft")
    claims = list(draft.claims) if draft else []
    if not claims and not state.get("kept_claims"):
        ctx.record("judge", target="answer", target_kind="answer", rationale="no supported claims", decision="abstain")
        ctx.emit(VerdictEvent(target="answer", decision="abstain"))
        return Command(goto=END, update=_abstain(state))
    cmap, evidence = state["citation_map"], state["evidence"]

    def cited_text(claim: AnswerClaim) -> str:
        return "\n".join(evidence[cmap[n]].text for n in claim.citations)

    checks = await check_claims(ctx, state["standalone_question"], claims, lambda n: evidence[cmap[n]])
    supported = [(k.claim, k.reason) for k in checks if k.supported]
    unsupported = [(k.claim, k.reason) for k in checks if not k.supported]
    kept = _union(state.get("kept_claims") or [], [c for c, _ in supported])
    tied = short_answer_supported(draft.short_answer, kept, cited_text)
    if (unsupported or not tied) and state.get("revisions", 0) == 0:
        problems = [f"- {c.text} ({reason})" for c, reason in unsupported]
        if not tied:
            problems.append(f"- short_answer {draft.short_answer!r} is not stated by any supported claim")
        feedback = "These are not supported by the evidence they cite; fix or remove them:\n" + "\n".join(problems)
        ctx.emit(VerdictEvent(target="answer", decision="revise", rationale=f"{len(problems)} unsupported"))
        return Command(goto="answer", update={"revision_feedback": feedback, "revisions": 1, "kept_claims": kept})
    ctx.emit(NodeEvent(node="verify", phase="finished"))
    if not kept or not tied:
        reason = "no supported claims" if not kept else "the short answer is not supported"
        ctx.record("judge", target="answer", target_kind="answer", rationale=reason, decision="abstain")
        ctx.emit(VerdictEvent(target="answer", decision="abstain", rationale=reason))
        return Command(goto=END, update=_abstain(state))
    ctx.emit(VerdictEvent(target="answer", decision="accept", rationale=f"{len(kept)} supported claim(s)"))
    return Command(goto=END, update=_finish(state, kept))


def _union(first: list[AnswerClaim], second: list[AnswerClaim]) -> list[AnswerClaim]:
    """Claims verified before a revision, then the revision's newly verified ones (each text once)."""
    seen, out = set(), []
    for c in [*first, *second]:
        key = normalise_answer(c.text)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
