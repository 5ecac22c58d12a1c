"""search: run the round's queries on the sub-goal's sources; put the best unseen candidates in front of the
model — a capped pool in fusion order, so one round costs one ranking call however many results came back.
Candidates past the cap stay unseen: a later round's searches can bring them back."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ..context import RunContext
from .state import RoundState
from .steps import enter


def pool_size(ctx: RunContext) -> int | None:
    """How many new candidates a round shows: the judge's passages, the reranker's pool, or all (fusion)."""
    selection = ctx.agent.selection
    return {"judge": ctx.agent.round_passages, "rerank": ctx.settings.rerank.candidates}.get(selection)


async def search(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    n = len(state["fresh"])
    rnd = enter(ctx, state, f"search ({n} {'query' if n == 1 else 'queries'})")
    sg = state["subgoal"]
    found = await ctx.tools.search(state["fresh"], sg.source, sg.id)
    seen = state.get("seen") or []
    known = set(seen)
    new = [c for c in found if c.id not in known][: pool_size(ctx)]
    update: dict = {"candidates": new, "seen": seen + [c.id for c in new], "rounds_run": rnd}
    if not new:
        update["stop"] = "no_new_results"  # the searches found nothing this sub-goal had not already seen
    return update
