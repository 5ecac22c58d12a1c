"""Which evidence a prompt shows: by score within a token budget, never "the first ones that fit".

The judge of a round is shown the round's new evidence (up to half the budget), then the rest of the
sub-goal's evidence by score, so round-2 evidence always reaches it however much round 1 kept. The
answerer gives every sub-goal with evidence an equal share of its budget (best first within each),
then fills what is left by score, so a later sub-goal's evidence is never crowded out.
"""

from __future__ import annotations

from collections.abc import Iterable

from .evidence import PASSAGE_TOKENS
from .state import Evidence
from .tokens import count_tokens, truncate_to_tokens

BLOCK_OVERHEAD = 30  # tokens of the <evidence …> tag around a passage


def cost(ev: Evidence) -> int:
    return count_tokens(truncate_to_tokens(ev.text, PASSAGE_TOKENS)) + BLOCK_OVERHEAD


def _by_score(items: Iterable[Evidence]) -> list[Evidence]:
    return sorted(items, key=lambda e: -e.score)


def _fill(chosen: list[Evidence], pool: list[Evidence], budget: int, used: int) -> int:
    taken = {e.id for e in chosen}
    for ev in pool:
        c = cost(ev)
        if ev.id not in taken and (not chosen or used + c <= budget):
            chosen.append(ev)
            taken.add(ev.id)
            used += c
    return used


def for_judge(kept: list[Evidence], newest_round: int, budget: int) -> list[Evidence]:
    """Chosen: the round's new evidence by score (up to half the budget), then everything else by score.
    Shown in the order it was kept (round by round), so round n+1's evidence section extends round n's:
    a prefix vLLM's cache can reuse."""
    chosen: list[Evidence] = []
    used = _fill(chosen, _by_score(e for e in kept if e.round == newest_round), budget // 2, 0)
    _fill(chosen, _by_score(kept), budget, used)
    position = {e.id: i for i, e in enumerate(kept)}
    return sorted(chosen, key=lambda e: position[e.id])


def for_answer(per_subgoal: list[list[Evidence]], budget: int) -> list[Evidence]:
    """An equal share of the budget per sub-goal with evidence (best first), then the rest by score."""
    groups = [_by_score(g) for g in per_subgoal if g]
    if not groups:
        return []
    share = budget // len(groups)
    chosen: list[Evidence] = []
    used = 0
    for group in groups:
        before = len(chosen)
        spent = 0
        for ev in group:
            c = cost(ev)
            if any(e.id == ev.id for e in chosen):
                continue
            if len(chosen) == before or spent + c <= share:  # each sub-goal shows at least its best passage
                chosen.append(ev)
                spent += c
        used += spent
    _fill(chosen, _by_score(e for g in groups for e in g), budget, used)
    return chosen
