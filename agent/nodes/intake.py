"""intake: normalise the question; make a follow-up standalone; note an ambiguity and the assumption taken.

In an interactive session (RunContext.interactive) an ambiguous question is not assumed away: intake
hands a clarification request to the clarify node, which asks the user.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from ..context import RunContext
from ..events import NodeEvent
from ..state import ClarificationRequest, ResearchState


class Intake(BaseModel):
    standalone_question: str = Field(
        description="the question, understandable without the conversation", max_length=400
    )
    ambiguous: bool = Field(False, description="several different referents fit equally well")
    assumption: str = Field("", description="the reading chosen when ambiguous", max_length=200)
    clarifying_question: str = Field("", description="what to ask the user when ambiguous", max_length=200)


def history_text(history: list[dict[str, str]]) -> str:
    turns = [f"Q: {t.get('question', '')}\nA: {t.get('answer', '')}" for t in history[-4:]]
    return "\n\n".join(turns) or "(none)"


async def intake(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.emit(NodeEvent(node="intake", phase="started"))
    question = " ".join(state["question"].split())
    history = state.get("history") or []
    standalone, assumption, clarification = question, None, None
    # A first question outside an interactive session needs no call: the planner notes an ambiguity itself.
    if history or (ctx.interactive and ctx.agent.detect_ambiguity):
        outcome = await ctx.structured(
            "intake",
            Intake,
            role="intake",
            fallback=Intake(standalone_question=question),
            max_tokens=200,
            question=question,
            history=history_text(history),
        )
        result = outcome.value
        # A follow-up may be rewritten; a first question keeps its words (a tiny model paraphrases badly).
        if history and result.standalone_question.strip():
            standalone = " ".join(result.standalone_question.split())
        if result.ambiguous and ctx.interactive and result.clarifying_question.strip():
            clarification = ClarificationRequest(
                question=result.clarifying_question.strip(), assumption=result.assumption.strip()
            )
        elif result.ambiguous and result.assumption.strip():
            assumption = result.assumption.strip()
            ctx.record(
                "judge",
                target="question",
                target_kind="answer",
                labels={"ambiguous": True, "clarifying_question": result.clarifying_question},
                rationale=f"assumed: {assumption}",
                decision="assume",
            )
    if ctx.recorder is not None and standalone != state["question"]:
        ctx.recorder.resolved_question(standalone)
    ctx.emit(NodeEvent(node="intake", phase="finished"))
    return {
        "standalone_question": standalone,
        "assumption": assumption,
        "clarification": clarification.model_dump() if clarification else None,
        "wave": 0,
        "revisions": 0,
    }


def route_intake(state: ResearchState) -> str:
    """Ask the user first when intake wants a clarification; otherwise plan."""
    return "clarify" if state.get("clarification") else "plan"
