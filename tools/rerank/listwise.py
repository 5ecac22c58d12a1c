"""Listwise ranking with reasoning: the model orders a window of candidates (and grades each 0-10).

Pools larger than a window are ranked with RankGPT's sliding window: from the bottom of the input order
towards the top, `window_size` at a time, moving `window_step`, so a strong candidate can climb from
anywhere to the top. Within each prompt the candidates are shuffled (seeded) against position bias and
shown under short aliases (P1, P2, …). A window whose reply cannot be used keeps its input order, which
is recorded. The final scores are the grades fitted to be non-increasing along the listwise order
(isotonic regression), so the order stays the model's and the knee still sees its grades.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient, generate_structured
from pydantic import BaseModel, Field, field_validator

from .models import Candidate, Judgement, ModeResult
from .prompting import CallTally, normalised_priors, passage_block, render

UNGRADED = "not graded (its window's reply was unusable); the fusion score stands in"

# Progress callback of every scoring mode: called with the label of the LLM call that starts next.
OnStep = Callable[[str], None]
T = TypeVar("T")


async def gather_counted(jobs: Sequence[Awaitable[T]], label: str, on_step: OnStep | None) -> list[T]:
    """`asyncio.gather`, announcing "label k/n" once k-1 of the n concurrent calls have finished: the same
    meaning as a sequential "window 2/3" (one done, the second under way), in order, each label once."""
    if on_step is None or not jobs:
        return list(await asyncio.gather(*jobs))
    finished = 0

    async def counted(job: Awaitable[T]) -> T:
        nonlocal finished
        try:
            return await job
        finally:
            finished += 1
            if finished < len(jobs):
                on_step(f"{label} {finished + 1}/{len(jobs)}")

    on_step(f"{label} 1/{len(jobs)}")
    return list(await asyncio.gather(*(counted(j) for j in jobs)))


def window_count(n: int, size: int, step: int) -> int:
    """How many sliding windows `rank_listwise` ranks for a pool of n: one, plus one per `step` above `size`."""
    return 1 + max(0, -(-(n - size) // step))


# Lengths are capped by clipping, not by `maxLength` in the schema: llama.cpp's grammar compiler unrolls
# maxLength into nested optionals and rejects caps in the hundreds.
def _clip_to(limit: int):
    def clip(value: object) -> object:
        return value[:limit] if isinstance(value, str) else value

    return clip


class RankedEntry(BaseModel):
    id: str = Field(description="a passage id, e.g. P3")
    grade: int = Field(ge=0, le=10, description="0 useless … 10 answers the query directly")
    why: str

    _clip_why = field_validator("why", mode="before")(_clip_to(240))


class ListwiseReply(BaseModel):
    reasoning: str
    # Bounded: an unbounded list lets a weak model repeat entries until max_tokens (seen on vLLM).
    ranking: list[RankedEntry] = Field(min_length=1, max_length=50)

    _clip_reasoning = field_validator("reasoning", mode="before")(_clip_to(800))


class WindowRanking(BaseModel):
    order: list[str]
    grades: dict[str, tuple[int, str]] = Field(description="id -> (grade, why) for ids the model ranked")


async def rank_window(
    client: LLMClient,
    query: str,
    window: Sequence[Candidate],
    settings: RerankSettings,
    rng: random.Random,
    tally: CallTally,
    label: str,
) -> WindowRanking:
    """Order one window. Ids the model omits follow in input order; unknown or repeated ids are ignored."""
    shown = list(window)
    rng.shuffle(shown)
    alias = {f"P{i}": c.id for i, c in enumerate(shown, 1)}
    blocks = "\n\n".join(passage_block(a, c, settings.passage_chars) for a, c in zip(alias, shown, strict=True))
    outcome = tally.add(
        label,
        await generate_structured(
            client,
            render("rerank_listwise", query=query, passages=blocks),
            ListwiseReply,
            role="reranker",
            fallback=lambda: ListwiseReply.model_construct(reasoning="", ranking=[]),
            max_tokens=settings.max_tokens,
        ),
    )
    input_order = [c.id for c in window]
    if outcome.used_fallback:
        tally.note(f"{label}: no usable ranking, input order kept")
        return WindowRanking(order=input_order, grades={})
    order: list[str] = []
    grades: dict[str, tuple[int, str]] = {}
    strays: list[str] = []
    for entry in outcome.value.ranking:
        cid = alias.get(entry.id.strip().upper())
        if cid is None or cid in grades:
            strays.append(entry.id)
            continue
        order.append(cid)
        grades[cid] = (entry.grade, entry.why.strip())
    missing = [cid for cid in input_order if cid not in grades]
    if strays or missing:
        tally.note(f"{label}: ignored ids {strays[:5]}, {len(missing)} omitted id(s) appended in input order")
    return WindowRanking(order=order + missing, grades=grades)


def isotonic_non_increasing(values: list[float]) -> list[float]:
    """The closest (least squares) non-increasing sequence: pool adjacent violators."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, weight = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * weight) / (prev[1] + weight)
            prev[1] += weight
    return [mean for mean, weight in blocks for _ in range(int(weight))]


async def rank_listwise(
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
    order = [c.id for c in candidates]
    grades: dict[str, list[tuple[int, str]]] = {}
    size, step = settings.window_size, settings.window_step
    end = len(order)
    windows, total = 0, window_count(len(order), size, step)
    while True:
        start = max(0, end - size)
        windows += 1
        if on_step is not None:
            on_step(f"rerank window {windows}/{total}")
        ranked = await rank_window(
            client, query, [by_id[i] for i in order[start:end]], settings, rng, tally, f"listwise window {windows}"
        )
        order[start:end] = ranked.order
        for cid, graded in ranked.grades.items():
            grades.setdefault(cid, []).append(graded)
        if start == 0:
            break
        end -= step
    priors = normalised_priors(candidates)
    # A candidate no window managed to grade keeps its fusion score (scaled to grades) as a stand-in.
    raw = [sum(g for g, _ in grades[i]) / len(grades[i]) if i in grades else 10 * priors[i] for i in order]
    fitted = isotonic_non_increasing(raw)
    judged = {
        cid: Judgement(
            score=round(fit / 10, 4),
            rationale=grades[cid][-1][1] if cid in grades else UNGRADED,
            grades=[float(g) for g, _ in grades.get(cid, [])],
            judgements=len(grades.get(cid, [])),
        )
        for cid, fit in zip(order, fitted, strict=True)
    }
    return ModeResult(order=order, judged=judged, rounds=windows)
