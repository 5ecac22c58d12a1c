"""What the reranker takes and gives back: candidates in, a ranked, cut, evidence-bearing outcome out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["listwise", "pointwise", "yesno", "pool", "fusion"]


class Candidate(BaseModel):
    """A local chunk or an extracted web page, as the research loop hands it over."""

    id: str
    text: str
    title: str = ""
    source: str = Field("", description="URL or file path")
    kind: Literal["local", "web"] = "local"
    prior_score: float = Field(0.0, description="fusion/BM25 score; shown in pointwise prompts, the fallback order")
    prev_id: str | None = Field(None, description="the previous chunk of the same document (local only)")
    next_id: str | None = None


class ScoredCandidate(BaseModel):
    id: str
    rank: int = Field(description="0-based position after reranking")
    score: float = Field(description="0-1 relevance the knee cut reads")
    prior_rank: int = Field(description="0-based position in the input (fusion) order")
    prior_score: float = 0.0
    rationale: str = ""
    samples: list[float] = Field(default_factory=list, description="pointwise: every sampled grade (0-10)")
    spread: float | None = Field(None, description="pointwise: max - min of the sampled grades")
    judgements: int = Field(1, description="how many prompts judged this candidate")


class KneeCut(BaseModel):
    """Where the sorted score curve was cut, and why there."""

    keep: int = Field(description="candidates kept: the cut index")
    method: Literal["knee", "flat", "floor", "min_keep", "max_keep", "empty"]
    curve: list[float] = Field(description="scores in ranked order")
    min_keep: int
    max_keep: int
    floor: float
    cutoff: float | None = Field(None, description="the lowest kept score")


class EvidencePassage(BaseModel):
    """What goes forward to the planner and answerer: a verified excerpt with its source."""

    candidate_id: str
    source: str
    title: str = ""
    evidence: str
    contribution: str = ""
    score: float
    tokens: int
    verification: Literal["verified", "replaced", "source_excerpt"] = Field(
        description="verified = the model's excerpt matched the source; replaced = the best-matching source span "
        "stands in for it; source_excerpt = no usable excerpt from the model, the source's opening is used"
    )
    match_score: float | None = Field(None, description="fuzzy match (0-100) of the model's excerpt in the source")
    merged_ids: list[str] = Field(default_factory=list, description="neighbour chunks joined to this one")


class DroppedCandidate(BaseModel):
    id: str
    reason: str


class RerankUsage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0


class RerankOutcome(BaseModel):
    query: str
    mode: Mode = Field(description="the mode that produced the ranking; fusion = the model failed, input order kept")
    requested_mode: Mode
    ranked: list[ScoredCandidate]
    cut: KneeCut
    evidence: list[EvidencePassage]
    dropped: list[DroppedCandidate]
    criteria: list[str] = Field(default_factory=list, description="pointwise: what a relevant passage must contain")
    notes: list[str] = Field(default_factory=list, description="fallbacks, parse failures, repairs, in order")
    rounds: int = 1
    seed: int = 0
    usage: RerankUsage = Field(default_factory=RerankUsage)
    seconds: float = 0.0

    @property
    def evidence_tokens(self) -> int:
        return sum(p.tokens for p in self.evidence)

    def to_step_payload(self) -> dict[str, Any]:
        """Fields of the trajectory's `rerank` step: every candidate with score, rationale, kept and why."""
        forwarded = {p.candidate_id: p for p in self.evidence}
        dropped = {d.id: d.reason for d in self.dropped}
        dropped |= {m: f"joined to {p.candidate_id} as its neighbour" for p in self.evidence for m in p.merged_ids}
        candidates = []
        for c in self.ranked:
            passage = forwarded.get(c.id)
            if passage is not None:
                reason = f"kept (rank {c.rank + 1}, score {c.score:.2f}); evidence {passage.verification}"
                if passage.merged_ids:
                    reason += f"; joined neighbours {', '.join(passage.merged_ids)}"
            else:
                reason = dropped.get(c.id, "below the cut")
            candidates.append(
                {"id": c.id, "score": c.score, "rationale": c.rationale, "kept": passage is not None, "reason": reason}
            )
        method = f"{self.mode} scores; {self.cut.method} cut at {self.cut.keep} of {len(self.ranked)}"
        return {
            "query": self.query,
            "candidates": candidates,
            "cutoff": self.cut.cutoff,
            "method": method,
            "cut_index": self.cut.keep,
            "curve": self.cut.curve,
            "notes": self.notes,
        }


class Judgement(BaseModel):
    """One mode's verdict on one candidate (internal: the pipeline turns these into ScoredCandidates)."""

    score: float = Field(description="0-1")
    rationale: str = ""
    grades: list[float] = Field(default_factory=list, description="every grade (0-10) or probability given")
    judgements: int = Field(0, description="prompts whose verdict on it was used; 0 = a stand-in score")


class ModeResult(BaseModel):
    order: list[str] = Field(description="candidate ids, best first")
    judged: dict[str, Judgement] = Field(description="every candidate in `order`")
    rounds: int = 1
    criteria: list[str] = Field(default_factory=list)
