"""search: run the round's queries on the sub-goal's sources; keep only candidates it has not seen."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..context import RunContext
from .state import RoundState
from .steps import enter


async def search(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    n = len(state["fresh"])
    rnd = enter(ctx, state, f"search ({n} {'query' if n == 1 else 'queries'})")
    sg = state["subgoal"]
    found = await ctx.tools.search(state["fresh"], sg.source, sg.id)
    seen = state.get("seen") or []
    known = set(seen)
    new = [c for c in found if c.id not in known]
    update: dict = {"candidates": new, "seen": seen + [c.id for c in new], "rounds_run": rnd}
    if not new:
        update["stop"] = "no_new_results"  # the searches found nothing this sub-goal had not already seen
    return update
