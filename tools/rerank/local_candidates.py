"""Candidates from the local index: search hits become `Candidate`s, and neighbours are read from the store."""

from __future__ import annotations

import asyncio

from ..local_search import LocalHit, LocalSearcher
from .models import Candidate
from .neighbours import NeighbourLookup


def candidates_from_hits(hits: list[LocalHit]) -> list[Candidate]:
    return [
        Candidate(
            id=h.chunk_id,
            text=h.text,
            title=h.title,
            source=h.source,
            kind="local",
            prior_score=h.score,
            prev_id=h.neighbours.prev,
            next_id=h.neighbours.next,
        )
        for h in hits
    ]


def neighbour_lookup(searcher: LocalSearcher) -> NeighbourLookup:
    """Reads a neighbour chunk's text from the index store, off the event loop."""

    async def lookup(chunk_id: str) -> Candidate | None:
        texts = await asyncio.to_thread(searcher.get_chunks, [chunk_id])
        text = texts.get(chunk_id)
        return None if text is None else Candidate(id=chunk_id, text=text, kind="local")

    return lookup
