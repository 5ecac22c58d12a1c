"""search: run the round's queries on the sub-goal's sources; put the best unseen candidates in front of the
model — a capped pool in fusion order, so one round costs one ranking call however many results came back,
without near-duplicates. Candidates past the cap stay unseen: a later round's searches can bring them back."""

from __future__ import annotations

import re

from deepsearch.tools.rerank.models import Candidate
from langgraph.runtime import Runtime

from ..context import RunContext
from .state import RoundState
from .steps import enter

_WORD = re.compile(r"\w+")
SAME_TEXT = 0.8  # word-set overlap at which two candidates are one passage (a local chunk and its web page)


def words_of(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def same_text(a: set[str], b: set[str]) -> bool:
    return bool(a and b) and len(a & b) >= SAME_TEXT * min(len(a), len(b))


def distinct(candidates: list[Candidate], limit: int | None, shown: list[set[str]]) -> list[Candidate]:
    """The first `limit` candidates in fusion order, skipping one whose words mostly repeat a passage already
    picked or shown in an earlier round (the same paragraph from the local index and from a fetched page
    must not take two of the few places)."""
    picked: list[Candidate] = []
    seen = list(shown)
    for c in candidates:
        words = words_of(c.text)
        if any(same_text(words, w) for w in seen):
            continue
        picked.append(c)
        seen.append(words)
        if limit is not None and len(picked) == limit:
            break
    return picked


def pool_size(ctx: RunContext, candidates: list[Candidate]) -> int | None:
    """How many new candidates a round shows: the judge's passages (`round_passages` for each kind of source
    that answered, local and web, so the web does not crowd out the user's documents), the reranker's pool,
    or all (fusion)."""
    selection = ctx.agent.selection
    if selection == "judge":
        return ctx.agent.round_passages * max(1, len({c.kind for c in candidates}))
    return ctx.settings.rerank.candidates if selection == "rerank" else None


async def search(state: RoundState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    n = len(state["fresh"])
    rnd = enter(ctx, state, f"search ({n} {'query' if n == 1 else 'queries'})")
    sg = state["subgoal"]
    if state.get("fetch_share") is not None:
        ctx.tools.fetch_shares[sg.id] = state["fetch_share"]
    found = await ctx.tools.search(state["fresh"], sg.source, sg.id)
    seen = state.get("seen") or []
    known = set(seen)
    shown = [set(w.split()) for w in state.get("shown_words") or []]
    unseen = [c for c in found if c.id not in known]
    new = distinct(unseen, pool_size(ctx, unseen), shown)
    update: dict = {"candidates": new, "seen": seen + [c.id for c in new], "rounds_run": rnd,
                    "shown_words": (state.get("shown_words") or []) + [" ".join(sorted(words_of(c.text))) for c in new]}
    if not new:
        update["stop"] = "no_new_results"  # the searches found nothing this sub-goal had not already seen
    return update
