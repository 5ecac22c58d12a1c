"""Large pools: randomised listwise batches, scores accumulated, only the current top re-judged.

Round 1 shuffles the whole pool into batches of about `batch_size`, `batch_appearances` times, so every
candidate is judged in several different company. Each judgement adds the model's grade (0-10, the
primary score) and the candidate's normalised position in its batch (the tie-breaker). Later rounds
re-batch only the current top (twice `max_keep`, at least one batch) and stop once the top `max_keep`
set comes out of a round unchanged, or after `max_rounds`. The same seed gives the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient

from .listwise import OnStep, gather_counted, rank_window
from .models import Candidate, Judgement, ModeResult
from .prompting import CallTally, fill_unjudged, normalised_priors


def batches(ids: list[str], size: int, rng: random.Random) -> list[list[str]]:
    """A seeded shuffle of `ids` cut into near-equal batches of at most `size` (none smaller than half)."""
    shuffled = list(ids)
    rng.shuffle(shuffled)
    count = -(-len(shuffled) // size)
    return [shuffled[i::count] for i in range(count)]


class _Standing:
    def __init__(self) -> None:
        self.grades: list[float] = []
        self.positions: list[float] = []
        self.why = ""

    def key(self) -> tuple[float, float]:
        return sum(self.grades) / len(self.grades), sum(self.positions) / len(self.positions)


async def rank_pool(
    client: LLMClient,
    query: str,
    candidates: Sequence[Candidate],
    settings: RerankSettings,
    seed: int,
    tally: CallTally,
    on_step: OnStep | None = None,
) -> ModeResult:
    rng = random.Random(seed)
    by_id = {c.id: c for c in candidates}
    seen: dict[str, _Standing] = {}
    contenders = list(by_id)
    top_size = min(len(contenders), settings.max_keep)
    previous_top: set[str] | None = None
    rounds = 0
    while rounds < settings.max_rounds:
        rounds += 1
        plan = [
            b
            for _ in range(settings.batch_appearances if rounds == 1 else 1)
            for b in batches(contenders, settings.batch_size, rng)
        ]
        # Each batch gets its own seeded generator so concurrent prompts stay deterministic.
        seeds = [rng.randrange(2**32) for _ in plan]
        jobs = [
            rank_window(
                client, query, [by_id[i] for i in batch], settings, random.Random(s), tally,
                f"pool round {rounds} batch {n}",
            )
            for n, (batch, s) in enumerate(zip(plan, seeds, strict=True), 1)
        ]  # fmt: skip
        results = await gather_counted(jobs, f"rerank round {rounds} batch", on_step)
        for ranked in results:
            last = max(len(ranked.order) - 1, 1)
            for position, cid in enumerate(ranked.order):
                if cid not in ranked.grades:
                    continue
                grade, why = ranked.grades[cid]
                entry = seen.setdefault(cid, _Standing())
                entry.grades.append(float(grade))
                entry.positions.append(1 - position / last)
                entry.why = why
        standing = sorted(seen, key=lambda cid: tuple(-x for x in seen[cid].key()))
        top = set(standing[:top_size])
        if not seen or top == previous_top:
            break
        previous_top = top
        contenders = standing[: max(2 * settings.max_keep, min(settings.batch_size, len(standing)))]
        if len(contenders) < 2:
            break
    judged = {
        cid: Judgement(score=round(t.key()[0] / 10, 4), rationale=t.why, grades=t.grades, judgements=len(t.grades))
        for cid, t in seen.items()
    }
    fill_unjudged(judged, candidates, normalised_priors(candidates))
    order = sorted(judged, key=lambda cid: (-judged[cid].score, -(seen[cid].key()[1] if cid in seen else 0.0)))
    return ModeResult(order=order, judged=judged, rounds=rounds)
