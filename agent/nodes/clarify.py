"""clarify: ask the user what an ambiguous question means, then go on with their reading (interactive runs only).

The run pauses in LangGraph's `interrupt()`; its state is checkpointed per thread, so the session answers
with `Command(resume=reply)` and this same run continues. The reply is folded into the question by the
intake prompt (the clarifying exchange becomes the last conversation turn); a blank reply keeps the
assumption intake made, exactly as a batch run would.
"""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from ..context import RunContext
from ..events import NodeEvent
from ..state import ClarificationRequest, ResearchState
from .intake import Intake, history_text


def _same(a: str, b: str) -> bool:
    return a.casefold().strip(" ?.!") == b.casefold().strip(" ?.!")


async def clarify(state: ResearchState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    request = ClarificationRequest.model_validate(state["clarification"])
    # interrupt() must come before anything with side effects: the node re-runs from the top on resume.
    reply = " ".join(str(interrupt(request.model_dump()) or "").split())
    ctx.emit(NodeEvent(node="clarify", phase="started"))
    question = state["standalone_question"]
    labels = {"ambiguous": True, "clarifying_question": request.question, "reply": reply}
    if not reply:
        ctx.record("judge", target="question", target_kind="answer", labels=labels,
                   rationale=f"no reply; assumed: {request.assumption}", decision="assume")  # fmt: skip
        ctx.emit(NodeEvent(node="clarify", phase="finished"))
        return {"assumption": request.assumption or None, "clarification": None}
    combined = f"{question} ({reply})"
    exchange = [*(state.get("history") or []), {"question": question, "answer": request.question}]
    outcome = await ctx.structured(
        "intake", Intake, role="intake", fallback=Intake(standalone_question=combined), max_tokens=200,
        question=reply, history=history_text(exchange),
    )  # fmt: skip
    standalone = " ".join(outcome.value.standalone_question.split())
    if not standalone or _same(standalone, reply):  # the model echoed the reply: keep the question it answers
        standalone = combined
    ctx.record("judge", target="question", target_kind="answer", labels=labels,
               rationale=f"asked the user; reading: {standalone}", decision="ask")  # fmt: skip
    if ctx.recorder is not None:
        ctx.recorder.resolved_question(standalone)
    ctx.emit(NodeEvent(node="clarify", phase="finished"))
    return {"standalone_question": standalone, "assumption": None, "clarification": None}
