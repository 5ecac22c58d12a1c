"""Lexical ranking is bm25s's BM25 (k1 1.5, b 0.75, exact lengths), not tantivy's (k1 1.2, 1-byte length norms)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from deepsearch.agent.config import IndexSettings
from deepsearch.tools import index_store as store
from deepsearch.tools.lexical import count_keys, decode_counts, encode_counts
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

# Words the English stemmer and stopword list leave alone, so the analysed tokens can be written by hand.
# The title is indexed too ("title. text"), so every title is a word of its own.
DOCS = {
    "a": "cat cat cat cat cat",  # one query word, often: wins under k1 = 1.5, loses under tantivy's k1 = 1.2
    "b": "cat dog emu emu emu emu emu",
    "c": "fox owl",
    "d": "owl elk",
    "e": "elk fox",
    "f": "dog owl",
    "g": "cat elk",
}


def _hand_bm25(query: list[str], k1: float = 1.5, b: float = 0.75) -> dict[str, float]:
    tokens = {doc: [f"t{doc}", *text.split()] for doc, text in DOCS.items()}
    n = len(tokens)
    avgdl = sum(len(t) for t in tokens.values()) / n
    scores = {}
    for doc, toks in tokens.items():
        score = 0.0
        for term in query:
            df = sum(term in t for t in tokens.values())
            tf = toks.count(term)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf / (tf + k1 * (1 - b + b * len(toks) / avgdl))
        if score:
            scores[doc] = score
    return scores


@pytest.fixture
def index(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d, "title": f"t{d}", "text": t}) + "\n" for d, t in DOCS.items()))
    update_index(tmp_path / "idx", [corpus], IndexOptions(dense=False))
    return tmp_path / "idx"


def test_scores_are_hand_computed_bm25_with_k1_1_5_and_exact_lengths(index: Path):
    searcher = LocalSearcher(index, IndexSettings(per_doc=1))
    hits = searcher.search("cat dog", k=10, mode="bm25")
    expected = _hand_bm25(["cat", "dog"])
    assert {h.doc_id: h.score for h in hits} == pytest.approx(expected, abs=1e-6)
    assert [h.doc_id for h in hits] == sorted(expected, key=expected.get, reverse=True)
    assert hits[0].doc_id == "a"
    searcher.close()


def test_the_crafted_case_orders_differently_under_tantivys_own_scores(index: Path):
    searcher = LocalSearcher(index, IndexSettings(per_doc=1))
    gen = searcher._current()
    raw = [row for row, _ in gen.lexical.search("cat dog", 10)]  # tantivy's BM25, no re-scoring
    rescored = [row for row, _ in searcher._bm25_ranking(gen, "cat dog", 10)]
    assert sorted(raw) == sorted(rescored)
    assert raw != rescored
    hand = _hand_bm25(["cat", "dog"], k1=1.2)  # what tantivy ranks by (lengths this short are exact there)
    doc_of = {row: searcher._chunk_row(gen, row)["doc_id"] for row in raw}
    assert [doc_of[r] for r in raw] == sorted(hand, key=hand.get, reverse=True)
    searcher.close()


def test_length_totals_follow_adds_and_deletes_without_a_rescan(index: Path, tmp_path: Path):
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "h", "title": "th", "text": "yak yak yak yak"}) + "\n")
    update_index(index, [tmp_path / "corpus.jsonl", more], IndexOptions(dense=False))
    meta = store.read_search_meta(index / store.SEARCH_DIR)
    assert (meta.lexical_docs, meta.lexical_tokens) == (8, sum(1 + len(t.split()) for t in DOCS.values()) + 5)
    (tmp_path / "corpus.jsonl").unlink()
    update_index(index, [more], IndexOptions(dense=False))  # corpus.jsonl is gone: its documents go
    meta = store.read_search_meta(index / store.SEARCH_DIR)
    assert (meta.lexical_docs, meta.lexical_tokens) == (1, 5)
    with sqlite3.connect(index / store.STORE) as conn:
        assert conn.execute("SELECT count(*), sum(length) FROM lexical_terms").fetchone() == (1, 5)
    hits = LocalSearcher(index).search("yak", k=5, mode="bm25")
    assert [h.doc_id for h in hits] == ["h"]


def test_search_files_from_before_the_term_counts_keep_tantivys_scores(index: Path):
    meta_path = index / store.SEARCH_DIR / store.SEARCH_META
    meta = json.loads(meta_path.read_text())
    meta.pop("lexical_docs"), meta.pop("lexical_tokens")
    meta_path.write_text(json.dumps(meta))
    searcher = LocalSearcher(index, IndexSettings(per_doc=1))
    gen = searcher._current()
    assert gen.avgdl is None
    raw = gen.lexical.search("cat dog", 10)
    assert [(h.score) for h in searcher.search("cat dog", k=10, mode="bm25")] == [round(s, 6) for _, s in raw]
    searcher.close()


def test_stored_counts_give_back_the_query_terms_alone():
    encoded = encode_counts({"xcat": 1, "cat": 3, "\u00e9t\u00e9": 12, "ca": 70})
    keys = count_keys(["cat", "ca", "\u00e9t\u00e9", "at", "zebra"])
    assert decode_counts(encoded, keys) == {"cat": 3, "ca": 70, "\u00e9t\u00e9": 12}
