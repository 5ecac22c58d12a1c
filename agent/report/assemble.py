"""Report runs after research: send one parallel `section` branch per outline entry, then assemble the
verified sections into the report (report-level checks, Markdown, sources list, footer)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Send

from .. import evidence_choice
from ..context import RunContext
from ..events import NodeEvent, VerdictEvent
from ..nodes.answer import answer_evidence, evidence_by_subgoal
from ..nodes.verify import research_termination
from ..state import ResearchState
from .checks import missing_headings, stored_citations, without_duplicates
from .info import ReportInfo, SectionResult
from .markdown import citations, number_sources, render_markdown
from .models import SUMMARY_ID, WORDS_PER_CLAIM, ReportRequest, SectionTask
from .outline import final_outline

EMPTY_REPORT = "No section of this report could be written from verified evidence."


def sentences_per_section(request: ReportRequest, sections: int) -> int:
    return max(2, min(16, round(request.words / WORDS_PER_CLAIM / max(1, sections))))


def section_tasks(state: ResearchState) -> list[Send]:
    request = ReportRequest.model_validate(state["report"])  # a LangGraph server client sends it as JSON
    outline = final_outline(state)
    by_subgoal = dict(zip((state.get("results") or {}), evidence_by_subgoal(state), strict=True))
    per_section = sentences_per_section(request, len(outline.sections))
    sends = []
    for s in outline.sections:
        if s.id == SUMMARY_ID:
            chosen, claims = answer_evidence(state, request.evidence_tokens), min(per_section, 5)
        else:
            groups = [by_subgoal.get(i, []) for i in s.subgoal_ids]
            chosen, claims = evidence_choice.for_answer(groups, request.evidence_tokens), per_section
        others = [o.heading for o in outline.sections if o.id not in (s.id, SUMMARY_ID)]
        task = SectionTask(section=s, question=state["standalone_question"], evidence=chosen, claims=claims,
                           other_headings=others if s.id != SUMMARY_ID else [])  # fmt: skip
        sends.append(Send("section", task))
    return sends


def _footer(info: ReportInfo, termination: str, trace_id: str | None) -> str:
    share = f"{info.verified_sentences} of {info.cited_sentences} cited sentences verified against their sources"
    removed = f"{info.removed_sentences} drafted sentence(s) removed as unsupported or repeated"
    return f"*Verified citations: {share} · {removed} · termination: {termination} · trace: {trace_id or 'none'}*"


async def assemble(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="assemble", phase="started"))
    outline, evidence = final_outline(state), state.get("evidence") or {}
    written = state.get("sections") or {}
    missing = SectionResult(id="", status="failed", note="this section was not written")
    ordered = [written.get(s.id) or missing.model_copy(update={"id": s.id}) for s in outline.sections]
    ordered, notes = stored_citations(ordered, evidence)
    ordered, duplicate_notes = without_duplicates(ordered)
    notes += duplicate_notes
    flagged = sorted({e.source for e in evidence.values() if e.injection_flagged})
    notes += [f"flagged: {src} holds instructions aimed at the model; never shown to a writer" for src in flagged]
    sections = {s.id: s for s in ordered}
    numbers = number_sources(outline, sections)
    cited = sum(len(s.claims) for s in ordered)
    termination = research_termination(state) if cited else "abstained"
    info = ReportInfo(
        title=outline.title, sections=ordered, cited_sentences=cited,
        verified_sentences=sum(c.verified for s in ordered for c in s.claims),
        removed_sentences=sum(len(s.removed) for s in ordered), sources=len(numbers), checks=notes,
    )  # fmt: skip
    trace_id = ctx.recorder.id if ctx.recorder is not None else None
    footer = _footer(info, termination, trace_id)
    if not cited:
        footer = f"**{EMPTY_REPORT}** Each section above says why.\n\n{footer}"
    markdown = render_markdown(outline, sections, evidence, footer)
    if lost := missing_headings(outline, markdown):
        notes.append(f"headings missing from the report: {', '.join(lost)}")
    info = info.model_copy(update={"checks": notes})
    ctx.record("report", stage="checks", title=outline.title, notes=notes,
               outline=[s.model_dump() for s in outline.sections],
               removed=[r.model_dump() | {"section": s.id} for s in ordered for r in s.removed])  # fmt: skip
    ctx.emit(VerdictEvent(target="report", decision="accept" if cited else "abstain",
                          rationale=f"{cited} verified sentence(s), {len(numbers)} source(s)"))  # fmt: skip
    ctx.emit(NodeEvent(node="assemble", phase="finished"))
    return {
        "answer": markdown, "short_answer": "", "citations": citations(numbers, evidence), "termination": termination,
        "report_info": info,
    }  # fmt: skip
