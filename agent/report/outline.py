"""outline: the report's title and one section per planned sub-goal (a heading and a one-line purpose).

Runs once, after plan, in report runs only. The sections follow the sub-goal DAG; a Summary comes first and
is written from all the evidence. A sub-goal added later by reflect gets a section of its own when the
report is written (`final_outline`); an unusable outliner reply falls back to the sub-goals' questions.
"""

from __future__ import annotations

import re

from langgraph.runtime import Runtime

from ..belief import is_unknown
from ..context import RunContext
from ..events import NodeEvent
from ..state import ResearchState, SubGoal
from .models import SUMMARY_ID, Outline, OutlineReply, Section

SUMMARY_PURPOSE = "the answer to the question in brief"
_REFERENCE = re.compile(r"#(\d+)")


def _section_for(sg: SubGoal, heading: str = "", purpose: str = "") -> Section:
    heading = re.sub(r"^#+\s+", "", " ".join(heading.split())).strip(": ") or sg.question
    return Section(id=sg.id, heading=heading, purpose=" ".join(purpose.split()) or sg.question, subgoal_ids=[sg.id])


def outline_from_reply(question: str, subgoals: list[SubGoal], reply: OutlineReply) -> Outline:
    """Entry k names sub-goal k; a missing or repeated heading falls back to the sub-goal's question."""
    sections = [Section(id=SUMMARY_ID, heading="Summary", purpose=SUMMARY_PURPOSE)]
    seen = {"summary"}
    for k, sg in enumerate(subgoals):
        entry = reply.sections[k] if k < len(reply.sections) else None
        section = _section_for(sg, entry.heading if entry else "", entry.purpose if entry else "")
        if section.heading.lower() in seen:
            section = _section_for(sg, "", section.purpose)
        seen.add(section.heading.lower())
        sections.append(section)
    return Outline(title=" ".join(reply.title.split()) or question, sections=sections)


def final_outline(state: ResearchState) -> Outline:
    """The outline as the report is written: `#k` in a heading or purpose names step k's answer, and a
    sub-goal planned after the outline gets its own section."""
    outline = state["outline"]
    covered = {i for s in outline.sections for i in s.subgoal_ids}
    extra = [_section_for(sg) for sg in (state.get("plan") or {}).values() if sg.id not in covered]
    results = state.get("results") or {}

    def fill(text: str) -> str:
        def answer(m: re.Match) -> str:
            r = results.get(f"g{m.group(1)}")
            return r.answer if r is not None and not is_unknown(r.answer) else m.group(0)

        return " ".join(_REFERENCE.sub(answer, text).split())

    sections = [s.model_copy(update={"heading": fill(s.heading), "purpose": fill(s.purpose)})
                for s in [*outline.sections, *extra]]  # fmt: skip
    return outline.model_copy(update={"sections": sections})


async def outline(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="outline", phase="started"))
    question = state["standalone_question"]
    subgoals = list((state.get("plan") or {}).values())
    steps = "\n".join(f"{k}. {sg.question}" for k, sg in enumerate(subgoals, 1))
    fallback = OutlineReply.model_construct(title=question, sections=[])
    outcome = await ctx.structured(
        "outline", OutlineReply, role="outliner", fallback=fallback, max_tokens=400, question=question, steps=steps
    )  # a small model writes more entries than asked: a tighter cap cuts its JSON short
    result = outline_from_reply(question, subgoals, outcome.value)
    notes = [f"outliner output unusable ({outcome.error or 'no valid outline'}): headings are the sub-goals' "
             "questions"] if outcome.used_fallback else []  # fmt: skip
    ctx.record("report", stage="outline", title=result.title, outline=[s.model_dump() for s in result.sections],
               notes=notes)  # fmt: skip
    ctx.emit(NodeEvent(node="outline", phase="finished"))
    return {"outline": result}
