"""The reasoning reranker: listwise / pointwise / yes-no / large-pool scoring, knee cut, neighbours, and
evidence passages verified against their source. Usable on its own and inside the research loop."""

from .knee import knee_cut
from .models import Candidate, DroppedCandidate, EvidencePassage, KneeCut, RerankOutcome, ScoredCandidate
from .neighbours import NeighbourLookup
from .pipeline import rerank

__all__ = [
    "Candidate",
    "DroppedCandidate",
    "EvidencePassage",
    "KneeCut",
    "NeighbourLookup",
    "RerankOutcome",
    "ScoredCandidate",
    "knee_cut",
    "rerank",
]
