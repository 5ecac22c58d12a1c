"""Pointwise yes/no probability: one short structured verdict per candidate, scored by P("yes").

The reply is `{"relevant": "yes"|"no"}`; under guided decoding the value is the one free token. Its
top logprobs give P(yes) and P(no) at that position; the score is P(yes) / (P(yes) + P(no)) when both
appear among the alternatives, else P(yes) or 1 - P(no) from whichever does. Without logprobs the bare
verdict stands in (1 or 0), which is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient, LLMResponse, generate_structured
from pydantic import BaseModel

from .listwise import OnStep, gather_counted
from .models import Candidate, Judgement, ModeResult
from .prompting import CallTally, fill_unjudged, normalised_priors, passage_block, render


class Verdict(BaseModel):
    relevant: Literal["yes", "no"]


def _word(token: str) -> str:
    """A token without the JSON punctuation a tokenizer may glue to it: `"yes"}` → `yes`."""
    return token.strip().strip("\"'{}:, ").lower()


def yes_probability(response: LLMResponse) -> float | None:
    """P(yes) read from the top logprobs at the verdict token; None when the response has no usable logprobs."""
    for position in response.logprobs or []:
        if _word(position.token) not in ("yes", "no"):
            continue
        options = position.top or []
        p_yes = sum(math.exp(t.logprob) for t in options if _word(t.token) == "yes")
        p_no = sum(math.exp(t.logprob) for t in options if _word(t.token) == "no")
        if not options:  # only the chosen token's own logprob
            chosen = math.exp(position.logprob)
            return chosen if _word(position.token) == "yes" else 1 - chosen
        if p_yes and p_no:
            return p_yes / (p_yes + p_no)
        return p_yes if p_yes else 1 - p_no
    return None


async def _judge(
    client: LLMClient, query: str, candidate: Candidate, settings: RerankSettings, tally: CallTally
) -> Judgement | None:
    outcome = await generate_structured(
        client,
        render("rerank_yesno", query=query, passage=passage_block(None, candidate, settings.passage_chars)),
        Verdict,
        role="reranker",
        fallback=lambda: Verdict(relevant="no"),
        max_tokens=16,
        logprobs=True,
    )
    tally.add(f"yesno {candidate.id}", outcome)
    if outcome.used_fallback:
        return None
    verdict = outcome.value.relevant
    p_yes = yes_probability(outcome.responses[-1])
    if p_yes is None:
        tally.note(f"yesno {candidate.id}: no logprobs at the verdict, the bare '{verdict}' stands in")
        p_yes = 1.0 if verdict == "yes" else 0.0
    return Judgement(
        score=round(p_yes, 4), rationale=f"'{verdict}' with P(yes) = {p_yes:.2f}", grades=[p_yes], judgements=1
    )


async def rank_yesno(
    client: LLMClient,
    query: str,
    candidates: Sequence[Candidate],
    settings: RerankSettings,
    seed: int,
    tally: CallTally,
    on_step: OnStep | None = None,
) -> ModeResult:
    if not client.backend.supports_logprobs:
        tally.note(f"yesno: backend {client.backend.name} gives no logprobs; bare verdicts only")
    jobs = [_judge(client, query, c, settings, tally) for c in candidates]
    results = await gather_counted(jobs, "rerank verdict", on_step)
    priors = normalised_priors(candidates)
    judged = {c.id: j for c, j in zip(candidates, results, strict=True) if j is not None}
    fill_unjudged(judged, candidates, priors)
    order = sorted(judged, key=lambda cid: -judged[cid].score)
    return ModeResult(order=order, judged=judged)
