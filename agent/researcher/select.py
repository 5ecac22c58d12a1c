"""select: the reasoning reranker keeps the round's evidence (fused order when the budget is spent)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..context import RunContext
from ..events import EvidenceEvent, StepEvent
from ..selection import select_evidence
from .state import RoundState
from .steps import enter


async def select(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    rnd = enter(ctx, state, "select")
    sg = state["subgoal"]
    new = state["candidates"]

    def on_step(step: str) -> None:
        ctx.emit(StepEvent(subgoal_id=sg.id, round=rnd, step=step))

    selected = await select_evidence(ctx, state["question"], new, sg.id, on_step=on_step)
    kept = list(state.get("kept") or [])
    known = {e.id for e in kept}
    kept += [e.model_copy(update={"round": rnd}) for e in selected if e.id not in known]
    ctx.emit(EvidenceEvent(subgoal_id=sg.id, kept=[e.id for e in selected], dropped=len(new) - len(selected)))
    return {"kept": kept, "candidates": []}
