"""Chunking: token bounds, sentence boundaries, overlap, offsets, neighbour links; RRF fusion."""

from __future__ import annotations

import pytest
from deepsearch.agent.tokens import count_tokens
from deepsearch.tools.chunking import ChunkingOptions, chunk_text, split_sentences
from deepsearch.tools.fusion import reciprocal_rank_fusion
from pydantic import ValidationError

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
TEXT = " ".join(SENTENCES)


def test_chunks_are_token_bounded_and_offsets_point_at_their_text():
    options = ChunkingOptions(max_tokens=50, overlap_tokens=20)
    chunks = chunk_text("doc", TEXT, options)
    assert len(chunks) > 5
    for c in chunks:
        assert TEXT[c.start : c.end] == c.text
        assert count_tokens(c.text) <= options.max_tokens + 2  # joining sentences may merge a token or two
        assert c.text.endswith(".")  # cut at a sentence end
    assert chunks[0].start == 0 and chunks[-1].end == len(TEXT)


def test_consecutive_chunks_overlap_by_whole_sentences_and_cover_everything():
    chunks = chunk_text("doc", TEXT, ChunkingOptions(max_tokens=50, overlap_tokens=20))
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "the next chunk repeats the tail of the previous one"
        assert b.start > a.start
        assert TEXT[b.start : a.end].strip().endswith(".")
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered or TEXT[i].isspace() for i in range(len(TEXT)))


def test_no_overlap_means_disjoint_chunks():
    chunks = chunk_text("doc", TEXT, ChunkingOptions(max_tokens=50, overlap_tokens=0))
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:], strict=False))


def test_ids_and_neighbour_links():
    chunks = chunk_text("a/b.md", TEXT, ChunkingOptions(max_tokens=60, overlap_tokens=0))
    assert [c.chunk_id for c in chunks] == [f"a/b.md#{i}" for i in range(len(chunks))]
    assert chunks[0].prev_id is None and chunks[-1].next_id is None
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.next_id == b.chunk_id and b.prev_id == a.chunk_id


def test_a_sentence_longer_than_the_limit_is_cut_not_dropped():
    long_sentence = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_text("d", long_sentence, ChunkingOptions(max_tokens=64, overlap_tokens=0))
    assert len(chunks) > 3
    assert all(c.tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == long_sentence.replace(" ", "")


def test_sentence_splitting_handles_quotes_and_paragraphs():
    text = 'He said "stop." Then left!\n\nA new paragraph without a stop\nWhy? Because.'
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans == ['He said "stop."', "Then left!", "A new paragraph without a stop\nWhy?", "Because."]


def test_empty_text_gives_no_chunks_and_bad_options_are_rejected():
    assert chunk_text("d", "   \n ") == []
    with pytest.raises(ValidationError):
        ChunkingOptions(max_tokens=32, overlap_tokens=32)


def test_rrf_rewards_agreement_and_respects_weights():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "d"]], k=10))
    assert fused["b"] > fused["a"] and fused["c"] > fused["a"]  # in both lists beats first in one
    assert fused["b"] == pytest.approx(1 / 12 + 1 / 12)
    weighted = reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 0.3], k=10)
    assert [key for key, _ in weighted] == ["a", "b"]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])
