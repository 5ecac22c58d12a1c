"""Token-bounded, sentence-aware chunks with stable ids, character offsets and neighbour links.

Sentences are packed into a chunk until the next one would pass `max_tokens`; the next chunk starts
with the trailing sentences of the previous one that fit in `overlap_tokens`, so a fact that spans a
boundary is whole in at least one chunk. A single sentence longer than `max_tokens` is cut at token
boundaries (tiktoken), never dropped. Offsets index the document text, so `text[start:end]` is the
chunk exactly.
"""

from __future__ import annotations

import re

from deepsearch.agent.tokens import encoding
from pydantic import BaseModel, Field, model_validator

# A sentence ends at . ! ? (and one closing quote or bracket) before whitespace, or at a
# blank line. Abbreviations are sometimes cut; that costs a little overlap, never text.
_SENTENCE_END = re.compile(r"""(?:(?<=[.!?])|(?<=[.!?]["')\]]))\s+|\n\s*\n""")


class ChunkingOptions(BaseModel):
    max_tokens: int = Field(256, ge=16, description="upper bound on tokens per chunk")
    overlap_tokens: int = Field(32, ge=0, description="tokens of trailing sentences repeated in the next chunk")

    @model_validator(mode="after")
    def _overlap_below_max(self) -> ChunkingOptions:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class Chunk(BaseModel):
    chunk_id: str
    doc_id: str
    ordinal: int
    text: str
    start: int = Field(description="character offset of the chunk in the document text")
    end: int
    tokens: int
    prev_id: str | None = None
    next_id: str | None = None


def chunk_id_for(doc_id: str, ordinal: int) -> str:
    return f"{doc_id}#{ordinal}"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences in `text`, whitespace between them excluded."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        if text[pos : m.start()].strip():
            spans.append(_strip_span(text, pos, m.start()))
        pos = m.end()
    if text[pos:].strip():
        spans.append(_strip_span(text, pos, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long_sentence(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """Cut one over-long sentence into pieces of at most `max_tokens` tokens: (start, end, tokens)."""
    enc = encoding()
    ids = enc.encode(text[start:end], disallowed_special=())
    decoded, offsets = enc.decode_with_offsets(ids)
    if decoded != text[start:end]:  # cannot happen for valid str input; keep the text whole rather than guess
        return [(start, end, len(ids))]
    pieces = []
    for i in range(0, len(ids), max_tokens):
        piece_end = offsets[i + max_tokens] if i + max_tokens < len(ids) else len(decoded)
        pieces.append((start + offsets[i], start + piece_end, min(max_tokens, len(ids) - i)))
    return pieces


def chunk_text(doc_id: str, text: str, options: ChunkingOptions | None = None) -> list[Chunk]:
    """Split a document into chunks; ids are `<doc_id>#<ordinal>` and neighbours are linked."""
    options = options or ChunkingOptions()
    spans = split_sentences(text)
    if not spans:
        return []
    enc = encoding()  # one call per sentence: encode_ordinary_batch starts a thread pool per call (~2 ms a document)
    counts = [len(enc.encode_ordinary(text[s:e])) for s, e in spans]
    units: list[tuple[int, int, int]] = []  # sentences, or pieces of over-long ones
    for (s, e), n in zip(spans, counts, strict=True):
        units.extend(_cut_long_sentence(text, s, e, options.max_tokens) if n > options.max_tokens else [(s, e, n)])

    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    for unit in units:
        # Token counts of joined sentences are close to the sum (whitespace merges at most one token).
        if current and sum(u[2] for u in current) + unit[2] > options.max_tokens:
            groups.append(current)
            current = _overlap_tail(current, options.overlap_tokens, options.max_tokens - unit[2])
        current.append(unit)
    groups.append(current)

    chunks = []
    for ordinal, group in enumerate(groups):
        start, end = group[0][0], group[-1][1]
        chunks.append(
            Chunk(
                chunk_id=chunk_id_for(doc_id, ordinal),
                doc_id=doc_id,
                ordinal=ordinal,
                text=text[start:end],
                start=start,
                end=end,
                tokens=sum(u[2] for u in group),
                prev_id=chunk_id_for(doc_id, ordinal - 1) if ordinal else None,
                next_id=chunk_id_for(doc_id, ordinal + 1) if ordinal + 1 < len(groups) else None,
            )
        )
    return chunks


def _overlap_tail(group: list[tuple[int, int, int]], overlap: int, room: int) -> list[tuple[int, int, int]]:
    """The trailing units of `group` that fit in the overlap budget and leave room for the next unit."""
    tail: list[tuple[int, int, int]] = []
    budget = min(overlap, room)
    for unit in reversed(group):
        if unit[2] > budget:
            break
        tail.insert(0, unit)
        budget -= unit[2]
    return tail
