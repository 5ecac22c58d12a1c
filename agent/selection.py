"""Evidence selection inside a research round: the reasoning reranker, or fused order within a token budget."""

from __future__ import annotations

from collections.abc import Callable

from deepsearch.tools.rerank import rerank
from deepsearch.tools.rerank.models import Candidate

from .context import RunContext
from .evidence import evidence_id
from .injection import find_injection
from .state import Evidence
from .tokens import count_tokens


def _evidence(c: Candidate, subgoal_id: str, text: str, score: float, contribution: str = "") -> Evidence:
    return Evidence(
        id=evidence_id(c.source or c.id, text),
        subgoal_id=subgoal_id,
        kind=c.kind,
        source=c.source or c.id,
        title=c.title,
        text=text,
        contribution=contribution,
        score=score,
        injection_flagged=find_injection(text) is not None,
    )


def fused_order(candidates: list[Candidate], subgoal_id: str, max_tokens: int) -> tuple[list[Evidence], list[dict]]:
    """Keep candidates in fusion order until the token budget is spent."""
    kept, decisions, used = [], [], 0
    for c in candidates:
        cost = count_tokens(c.text)
        keep = not kept or used + cost <= max_tokens
        if keep:
            kept.append(_evidence(c, subgoal_id, c.text, c.prior_score))
            used += cost
        decisions.append(
            {"id": c.id, "score": c.prior_score, "kept": keep,
             "reason": "within the evidence token budget" if keep else "over the evidence token budget"}
        )  # fmt: skip
    return kept, decisions


async def select_evidence(
    ctx: RunContext,
    query: str,
    candidates: list[Candidate],
    subgoal_id: str,
    on_step: Callable[[str], None] | None = None,
) -> list[Evidence]:
    """The reranker's verified evidence passages (each decision recorded as a `rerank` step), or fused order
    (by choice, or because the run's budget leaves no LLM call for reranking)."""
    spent = ctx.budget.exhausted()
    if ctx.agent.selection == "fusion" or spent:
        kept, decisions = fused_order(candidates, subgoal_id, ctx.agent.evidence_tokens)
        method = "fusion order within token budget" + (f" ({spent}: no reranking)" if spent else "")
        ctx.record("rerank", query=query, candidates=decisions, cutoff=None, method=method)
        return kept
    settings = ctx.settings.rerank.model_copy(update={"evidence_token_budget": ctx.agent.evidence_tokens})
    outcome = await rerank(
        ctx.client, query, candidates, settings, neighbour_lookup=ctx.tools.neighbour, on_step=on_step
    )
    ctx.record("rerank", **outcome.to_step_payload())
    by_id = {c.id: c for c in candidates}
    return [
        _evidence(by_id.get(p.candidate_id) or Candidate(id=p.candidate_id, text=p.evidence, source=p.source),
                  subgoal_id, p.evidence, p.score, p.contribution)
        for p in outcome.evidence
    ]  # fmt: skip
