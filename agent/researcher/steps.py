"""What every step of a research round does first: tag its LLM calls and tell the live view."""

from __future__ import annotations

from ..context import BUDGETED, CURRENT_ROUND, CURRENT_SUBGOAL, RunContext
from ..events import StepEvent
from .state import RoundState


def enter(ctx: RunContext, state: RoundState, step: str, round_: int | None = None) -> int:
    """Set the sub-goal, round and budget gate for this step's calls; emit the step; return the round."""
    rnd = state.get("round", 0) if round_ is None else round_
    sg = state["subgoal"]
    CURRENT_SUBGOAL.set(sg.id)
    CURRENT_ROUND.set(rnd)
    BUDGETED.set(True)
    ctx.emit(StepEvent(subgoal_id=sg.id, round=rnd, step=step))
    return rnd
