"""One report section, a subgraph of the run: write from the section's evidence, verify every sentence
against what it cites, revise once, then remove what is still unsupported.

START ─▶ write ─▶ check ─▶ finish ─▶ END
           ▲        │ revise once
           └────────┘
Sections run in parallel (dispatch sends one branch each: assemble.section_tasks). A branch that fails (the writer's
call failed, or anything raised) ends as a `failed` section: the rest of the report stands.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from ..belief import normalise_answer
from ..claim_check import check_claims
from ..context import RunContext
from ..events import NodeEvent, VerdictEvent
from ..evidence import format_evidence
from ..nodes.answer import keep_valid_citations
from ..state import AnswerClaim, DraftAnswer, Evidence, merge_dicts
from .info import RemovedClaim, SectionResult, WrittenClaim
from .models import Section, SectionDraft, SectionTask

NOTHING_FOUND = "Research found no evidence for this section."
NOTHING_VERIFIED = "No sentence of this section could be verified against its sources."
NOTHING_SAID = "The evidence found says nothing on this section's purpose."


class SectionState(TypedDict, total=False):
    section: Section
    question: str
    evidence: list[Evidence]
    claims: int
    other_headings: list[str]
    revision: int
    draft_claims: list[AnswerClaim]  # the latest draft's sentences
    kept: list[AnswerClaim]  # verified sentences (citation numbers index `evidence`, 1-based)
    rejected: list[RemovedClaim]  # every sentence a verification turned down
    feedback: str | None
    failure: str | None
    sections: Annotated[dict[str, SectionResult], merge_dicts]  # the output, merged into the run's state


class SectionOutput(TypedDict, total=False):
    sections: Annotated[dict[str, SectionResult], merge_dicts]


def _ids(state: SectionState, claim: AnswerClaim) -> list[str]:
    return [state["evidence"][n - 1].id for n in claim.citations]


def _feedback(rejected: list[tuple[AnswerClaim, str]], kept: list[AnswerClaim]) -> str:
    lines = "".join(f"- {c.text} ({reason})\n" for c, reason in rejected)
    keep = "".join(f"- {c.text}\n" for c in kept)
    keep = f"These were verified and are kept; do not repeat them:\n{keep}" if keep else ""
    return ("\n# Verifier feedback on your draft\nThese sentences are not supported by the evidence they cite; "
            f"fix or remove them:\n{lines}{keep}")  # fmt: skip


async def write(state: SectionState, runtime: Runtime[RunContext]) -> Command[Literal["check", "finish"]]:
    ctx, section = runtime.context, state["section"]
    if not state["evidence"]:
        return Command(goto="finish")
    revision = state.get("revision", 0)
    ctx.emit(NodeEvent(node=f"section {section.id}", phase="started"))
    text, shown = format_evidence(state["evidence"])
    try:
        outcome = await ctx.structured(
            "section", SectionDraft, role="section_reviser" if revision else "section_writer",
            fallback=SectionDraft(claims=[]), max_tokens=120 + 60 * state["claims"],
            question=state["question"], heading=section.heading, purpose=section.purpose, evidence=text,
            claims=state["claims"], others="; ".join(state["other_headings"]) or "none",
            feedback=state.get("feedback") or "",
        )  # fmt: skip
    except GraphBubbleUp:
        raise
    except Exception as e:  # noqa: BLE001 - one section's failure must leave the rest of the report
        return Command(goto="finish", update={"failure": f"{type(e).__name__}: {e}"[:300]})
    if outcome.error and not revision:
        return Command(goto="finish", update={"failure": f"the writer's call failed ({outcome.error})"})
    draft = keep_valid_citations(DraftAnswer.model_construct(short_answer="", claims=outcome.value.claims),
                                 set(range(1, len(shown) + 1)))  # fmt: skip
    return Command(goto="check", update={"draft_claims": draft.claims})


async def check(state: SectionState, runtime: Runtime[RunContext]) -> Command[Literal["write", "finish"]]:
    ctx, section = runtime.context, state["section"]
    kept = list(state.get("kept") or [])
    known = {normalise_answer(c.text) for c in kept}
    fresh = [c for c in state.get("draft_claims") or [] if normalise_answer(c.text) not in known]
    try:
        checks = await check_claims(ctx, state["question"], fresh, lambda n: state["evidence"][n - 1],
                                    labels={"section": section.id})  # fmt: skip
    except GraphBubbleUp:
        raise
    except Exception as e:  # noqa: BLE001
        return Command(goto="finish", update={"failure": f"{type(e).__name__}: {e}"[:300]})
    kept += [k.claim for k in checks if k.supported]
    bad = [(k.claim, k.reason) for k in checks if not k.supported]
    rejected = [*(state.get("rejected") or []),
                *(RemovedClaim(text=c.text, citations=_ids(state, c), reason=f"unsupported: {r}") for c, r in bad)]
    update = {"kept": kept, "rejected": rejected}
    if bad and not state.get("revision"):
        ctx.emit(VerdictEvent(target=f"section {section.id}", decision="revise", rationale=f"{len(bad)} unsupported"))
        return Command(goto="write", update=update | {"revision": 1, "feedback": _feedback(bad, kept)})
    return Command(goto="finish", update=update)


def finish(state: SectionState, runtime: Runtime[RunContext]) -> dict:
    ctx, section = runtime.context, state["section"]
    kept = state.get("kept") or []
    texts = {normalise_answer(c.text) for c in kept}
    removed = list({normalise_answer(r.text): r for r in state.get("rejected") or []
                    if normalise_answer(r.text) not in texts}.values())  # once each, with its last verdict
    claims = [WrittenClaim(text=c.text, citations=_ids(state, c), verified=ctx.agent.verify) for c in kept]
    if state.get("failure"):
        status, note = "failed", state["failure"]
    elif claims:
        status, note = "written", ""
    else:
        drafted = state.get("rejected") or state.get("draft_claims")
        status = "empty"
        note = NOTHING_FOUND if not state["evidence"] else NOTHING_VERIFIED if drafted else NOTHING_SAID
    result = SectionResult(id=section.id, status=status, claims=claims, removed=removed,
                           revised=bool(state.get("revision")), note=note)  # fmt: skip
    ctx.record("report", stage="section", section=section.id, status=status,
               claims=[c.model_dump() for c in claims], removed=[r.model_dump() for r in removed],
               notes=[note] if note else [])  # fmt: skip
    ctx.emit(VerdictEvent(target=f"section {section.id}", decision=status, rationale=f"{len(claims)} sentence(s)"))
    return {"sections": {section.id: result}}


def build_section_graph() -> StateGraph:
    g = StateGraph(SectionState, context_schema=RunContext, input_schema=SectionTask, output_schema=SectionOutput)
    g.add_node("write", write)
    g.add_node("check", check)
    g.add_node("finish", finish)
    g.add_edge(START, "write")
    g.add_edge("finish", END)
    return g


section_subgraph = build_section_graph().compile()
