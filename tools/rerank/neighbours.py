"""Expand kept local chunks with their neighbours: when a neighbour was itself judged relevant (at or above
the floor, so it raises what the passage carries) the whole neighbour joins; when the chunk starts or ends
mid-sentence, just the fragment of the neighbour that completes the sentence joins."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from .models import Candidate

NeighbourLookup = Callable[[str], Awaitable[Candidate | None]]

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_FIRST_END = re.compile(r"[.!?][\"')\]]*(\s|$)")
_LAST_END = re.compile(r".*[.!?][\"')\]]*\s")


class Expanded(BaseModel):
    candidate: Candidate = Field(description="the kept candidate with neighbour text joined")
    merged_ids: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


def join_overlapping(first: str, second: str, *, min_overlap: int = 20) -> str:
    """first + second, without repeating text that ends `first` and starts `second` (chunk overlap)."""
    first, second = first.rstrip(), second.lstrip()
    for size in range(min(len(first), len(second)), min_overlap - 1, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    return f"{first} {second}"


def starts_mid_sentence(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0].islower()


def ends_mid_sentence(text: str) -> bool:
    return not _SENTENCE_END.search(text.rstrip())


def _head_fragment(text: str) -> str:
    """`text` up to and including its first sentence end."""
    m = _FIRST_END.search(text)
    return text[: m.end()].rstrip() if m else text


def _tail_fragment(text: str) -> str:
    """`text` after its last sentence end."""
    m = _LAST_END.match(text)
    return text[m.end() :] if m else text


async def expand(
    candidate: Candidate,
    *,
    pool: dict[str, Candidate],
    scores: dict[str, float],
    floor: float,
    lookup: NeighbourLookup | None,
) -> Expanded:
    """Join `candidate`'s prev/next chunk where it helps. `pool` and `scores` are the judged candidates."""
    result = Expanded(candidate=candidate)
    if candidate.kind != "local":
        return result

    async def neighbour(cid: str | None) -> Candidate | None:
        if cid is None:
            return None
        if cid in pool:
            return pool[cid]
        return await lookup(cid) if lookup else None

    text = candidate.text
    prev = await neighbour(candidate.prev_id)
    if prev is not None:
        if scores.get(prev.id, -1.0) >= floor:
            text = join_overlapping(prev.text, text)
            result.merged_ids.append(prev.id)
            result.reasons.append(f"{prev.id} judged relevant ({scores[prev.id]:.2f})")
        elif starts_mid_sentence(text):
            text = join_overlapping(_tail_fragment(prev.text), text)
            result.merged_ids.append(prev.id)
            result.reasons.append(f"{prev.id} completes the first sentence")
    nxt = await neighbour(candidate.next_id)
    if nxt is not None:
        if scores.get(nxt.id, -1.0) >= floor:
            text = join_overlapping(text, nxt.text)
            result.merged_ids.append(nxt.id)
            result.reasons.append(f"{nxt.id} judged relevant ({scores[nxt.id]:.2f})")
        elif ends_mid_sentence(text):
            text = join_overlapping(text, _head_fragment(nxt.text))
            result.merged_ids.append(nxt.id)
            result.reasons.append(f"{nxt.id} completes the last sentence")
    result.candidate = candidate.model_copy(update={"text": text})
    return result
