"""Pointwise graded scoring: criteria written once per query, then a 0-10 grade with a rationale per candidate.

The criteria separate what a relevant passage must contain from what is only topical (the "semantically
similar but logically irrelevant" trap). Each prompt shows the candidate's lexical score as a hint. With
samples > 1 every candidate is graded several times at a sampling temperature, each sample with its own
seed, and the mean is used; the spread (max - min) is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient, generate_structured
from pydantic import BaseModel, Field

from .listwise import OnStep, gather_counted
from .models import Candidate, Judgement, ModeResult
from .prompting import CallTally, fill_unjudged, normalised_priors, passage_block, render


class Criteria(BaseModel):
    must_contain: list[str] = Field(min_length=1, max_length=3)
    only_topical: list[str] = Field(default_factory=list, max_length=3)


class Grade(BaseModel):
    rationale: str
    score: int = Field(ge=0, le=10)


async def write_criteria(client: LLMClient, query: str, settings: RerankSettings, tally: CallTally) -> Criteria:
    outcome = await generate_structured(
        client,
        render("rerank_criteria", query=query),
        Criteria,
        role="reranker",
        # Without criteria the grader still needs a target: the query itself.
        fallback=lambda: Criteria(must_contain=[f"a statement that answers: {query}"]),
        max_tokens=settings.max_tokens,
    )
    return tally.add("criteria", outcome).value


async def _grade(
    client: LLMClient,
    query: str,
    criteria: Criteria,
    candidate: Candidate,
    lexical: float,
    settings: RerankSettings,
    seed: int,
    sample: int,
    tally: CallTally,
) -> Grade | None:
    sampled = settings.samples > 1
    outcome = await generate_structured(
        client,
        render(
            "rerank_pointwise",
            query=query,
            must_contain="; ".join(criteria.must_contain),
            only_topical="; ".join(criteria.only_topical) or "(none given)",
            passage=passage_block(None, candidate, settings.passage_chars, lexical=lexical),
        ),
        Grade,
        role="reranker",
        fallback=lambda: Grade(rationale="", score=0),
        max_tokens=min(settings.max_tokens, 256),
        temperature=settings.sample_temperature if sampled else None,
        seed=seed + sample if sampled else None,
    )
    tally.add(f"pointwise {candidate.id} sample {sample + 1}", outcome)
    return None if outcome.used_fallback else outcome.value


async def rank_pointwise(
    client: LLMClient,
    query: str,
    candidates: Sequence[Candidate],
    settings: RerankSettings,
    seed: int,
    tally: CallTally,
    on_step: OnStep | None = None,
) -> ModeResult:
    if on_step is not None:
        on_step("rerank criteria")
    criteria = await write_criteria(client, query, settings, tally)
    priors = normalised_priors(candidates)
    jobs = [
        _grade(client, query, criteria, c, priors[c.id], settings, seed, s, tally)
        for c in candidates
        for s in range(settings.samples)
    ]
    results = await gather_counted(jobs, "rerank grade", on_step)
    judged: dict[str, Judgement] = {}
    for i, c in enumerate(candidates):
        grades = [g for g in results[i * settings.samples : (i + 1) * settings.samples] if g is not None]
        if grades:
            mean = sum(g.score for g in grades) / len(grades)
            judged[c.id] = Judgement(
                score=round(mean / 10, 4),
                rationale=grades[0].rationale.strip(),
                grades=[float(g.score) for g in grades],
                judgements=len(grades),
            )
    fill_unjudged(judged, candidates, priors)
    order = sorted(judged, key=lambda cid: -judged[cid].score)  # stable: ties keep the input (fusion) order
    criteria_lines = [f"must contain: {x}" for x in criteria.must_contain]
    criteria_lines += [f"only topical: {x}" for x in criteria.only_topical]
    return ModeResult(order=order, judged=judged, criteria=criteria_lines)
