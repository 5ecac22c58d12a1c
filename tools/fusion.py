"""Reciprocal-rank fusion (Cormack et al., 2009): merge ranked lists by summing w / (k + rank).

Only ranks matter, so lists whose scores live on different scales (BM25, cosine, a web engine's
order) fuse without calibration. Used for local bm25 + dense, and by the graph for web + local.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[K, float]]:
    """Fused (key, score) pairs, best first. A key's score is sum over lists of weight / (k + rank), rank from 1.

    Ties keep the order in which keys were first seen (earlier lists first), so results are deterministic.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    if k < 1:
        raise ValueError("k must be at least 1")
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
