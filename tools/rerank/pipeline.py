"""`rerank`: score candidates in the configured mode, cut at the knee, expand neighbours, extract verified
evidence within a token budget. Graph-independent: the research loop and `deepsearch rerank` both call it.

If the model fails entirely (backend errors, or no reply usable for any candidate) the input (fusion)
order stands, recorded as mode `fusion`; a non-empty pool never yields an empty selection.

`on_step`, when given, is called (synchronously, on the event loop) with the label of each LLM call as it
starts: "rerank window 2/3" (listwise), "rerank criteria" and "rerank grade 4/12" (pointwise), "rerank
verdict 4/12" (yes/no), "rerank round 1 batch 2/6" (pool), then "evidence 1/4" (evidence extraction). For
calls that run concurrently, "k/n" is announced once k-1 of them have finished. It must not raise.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient, LLMError

from .evidence import extract_evidence, source_excerpt, within_budget
from .knee import knee_cut
from .listwise import OnStep, gather_counted, rank_listwise
from .models import (
    Candidate,
    DroppedCandidate,
    EvidencePassage,
    Judgement,
    Mode,
    ModeResult,
    RerankOutcome,
    ScoredCandidate,
)
from .neighbours import Expanded, NeighbourLookup, expand
from .pointwise import rank_pointwise
from .pool import rank_pool
from .prompting import CallTally, normalised_priors
from .yesno import rank_yesno

# (client, query, candidates, settings, seed, tally, on_step) -> the mode's order and judgements
Ranker = Callable[
    [LLMClient, str, Sequence[Candidate], RerankSettings, int, CallTally, OnStep | None], Awaitable[ModeResult]
]
RANKERS: dict[str, Ranker] = {
    "listwise": rank_listwise,
    "pointwise": rank_pointwise,
    "yesno": rank_yesno,
    "pool": rank_pool,
}


def fusion_order(candidates: Sequence[Candidate]) -> ModeResult:
    """The input order with scaled prior scores: what stands when the model gives nothing usable."""
    priors = normalised_priors(candidates)
    judged = {
        c.id: Judgement(score=round(priors[c.id], 4), rationale="fusion order (model unavailable)") for c in candidates
    }
    return ModeResult(order=[c.id for c in candidates], judged=judged)


def _ranked(result: ModeResult, candidates: Sequence[Candidate]) -> list[ScoredCandidate]:
    prior_rank = {c.id: i for i, c in enumerate(candidates)}
    by_id = {c.id: c for c in candidates}
    out = []
    for rank, cid in enumerate(result.order):
        j = result.judged[cid]
        out.append(
            ScoredCandidate(
                id=cid,
                rank=rank,
                score=j.score,
                prior_rank=prior_rank[cid],
                prior_score=by_id[cid].prior_score,
                rationale=j.rationale,
                samples=j.grades,
                spread=round(max(j.grades) - min(j.grades), 4) if len(j.grades) > 1 else None,
                judgements=j.judgements,
            )
        )
    return out


async def _score(
    client: LLMClient, query: str, pool: list[Candidate], settings: RerankSettings, seed: int, tally: CallTally,
    on_step: OnStep | None,
) -> tuple[Mode, ModeResult]:  # fmt: skip
    try:
        result = await RANKERS[settings.mode](client, query, pool, settings, seed, tally, on_step)
    except LLMError as e:
        tally.note(f"{settings.mode}: the model failed ({e}); fusion order kept")
        return "fusion", fusion_order(pool)
    if not any(j.judgements for j in result.judged.values()):
        tally.note(f"{settings.mode}: no usable reply for any candidate; fusion order kept")
        return "fusion", fusion_order(pool)
    return settings.mode, result


async def rerank(
    client: LLMClient,
    query: str,
    candidates: Sequence[Candidate],
    settings: RerankSettings,
    *,
    neighbour_lookup: NeighbourLookup | None = None,
    seed: int | None = None,
    on_step: OnStep | None = None,
) -> RerankOutcome:
    """Rerank `candidates` (in fusion order) for `query` and select evidence. See the module docstring."""
    started = time.perf_counter()
    seed = settings.seed if seed is None else seed
    query = query.strip()
    tally = CallTally()
    unique = {c.id: c for c in reversed(candidates)}  # the first of each id wins
    pool = [c for c in candidates if unique.pop(c.id, None) is c]
    dropped = [DroppedCandidate(id=c.id, reason="duplicate id") for c in candidates if c not in pool]
    mode: Mode = settings.mode
    result = ModeResult(order=[], judged={})
    if pool:
        mode, result = await _score(client, query, pool, settings, seed, tally, on_step)
    ranked = _ranked(result, pool)
    cut = knee_cut(
        [c.score for c in ranked],
        min_keep=settings.min_keep,
        max_keep=settings.max_keep,
        floor=settings.floor,
        min_gap=settings.knee_min_gap,
    )
    for c in ranked[cut.keep :]:
        dropped.append(
            DroppedCandidate(id=c.id, reason=f"below the {cut.method} cut (rank {c.rank + 1}, score {c.score:.2f})")
        )
    scores = {c.id: c.score for c in ranked}
    if mode == "fusion":  # the model already failed on every candidate: do not ask it for evidence
        settings = settings.model_copy(update={"evidence": False})
    passages = await _select(
        client, query, ranked[: cut.keep], pool, scores, settings, neighbour_lookup, tally, dropped, on_step
    )
    return RerankOutcome(
        query=query,
        mode=mode,
        requested_mode=settings.mode,
        ranked=ranked,
        cut=cut,
        evidence=passages,
        dropped=dropped,
        criteria=result.criteria,
        notes=tally.notes,
        rounds=result.rounds,
        seed=seed,
        usage=tally.usage,
        seconds=round(time.perf_counter() - started, 3),
    )


async def _select(
    client: LLMClient,
    query: str,
    kept: list[ScoredCandidate],
    pool: list[Candidate],
    scores: dict[str, float],
    settings: RerankSettings,
    lookup: NeighbourLookup | None,
    tally: CallTally,
    dropped: list[DroppedCandidate],
    on_step: OnStep | None,
) -> list[EvidencePassage]:
    """Neighbours, evidence and the token budget for the kept candidates, in rank order."""
    by_id = {c.id: c for c in pool}
    items: list[tuple[Expanded, ScoredCandidate]] = []
    absorbed: dict[str, str] = {}
    for s in kept:
        if s.id in absorbed:
            dropped.append(DroppedCandidate(id=s.id, reason=f"joined to {absorbed[s.id]} as its neighbour"))
            continue
        item = Expanded(candidate=by_id[s.id])
        if settings.neighbours:
            item = await expand(item.candidate, pool=by_id, scores=scores, floor=settings.floor, lookup=lookup)
        absorbed.update({m: s.id for m in item.merged_ids})
        items.append((item, s))
    jobs = [extract_evidence(client, query, i, s, settings, tally) for i, s in items]
    # Without evidence extraction no call is made: nothing to announce.
    results = await gather_counted(jobs, "evidence", on_step if settings.evidence else None)
    passages = [r for r in results if isinstance(r, EvidencePassage)]
    dropped += [r for r in results if isinstance(r, DroppedCandidate)]
    if items and not passages:
        # Never forward nothing: the best candidate's source text stands in.
        item, best = items[0]
        tally.note(f"no evidence survived; the source of {best.id} stands in")
        passages = [source_excerpt(item, best, settings)]
        dropped[:] = [d for d in dropped if d.id != best.id]
    kept_passages, over = within_budget(passages, settings.evidence_token_budget)
    dropped += over
    return kept_passages
